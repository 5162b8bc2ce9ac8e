//! What the gate reads of a message's `params`, strictly: `name`, `uri`, the `ref` of
//! `completion/complete`, and the `resourceSubscriptions` of `subscriptions/listen`
//! (MCP 2026-07-28). Everything else is skipped without being built.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::json::{Text, skip_scalars};
use crate::mcp_json::{MaybeString, Names, drain_seq};

/// A `completion/complete` reference: `ref/prompt` by name, `ref/resource` by URI (template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    Prompt(String),
    Resource(String),
}

/// `params`, when it is an object (`name` and `uri` borrowed from the body where they can be).
#[derive(Debug, Default)]
pub(crate) struct Params<'a> {
    pub(crate) name: Option<Cow<'a, str>>,
    pub(crate) uri: Option<Cow<'a, str>>,
    pub(crate) reference: Option<Reference>,
    pub(crate) subscriptions: Vec<String>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Params<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Params<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON-RPC params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params<'a>, A::Error> {
                let mut names = Names::new();
                let mut params = Params::default();
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    names.check(key.clone())?;
                    match &*key {
                        "name" => params.name = map.next_value::<MaybeString<'a>>()?.0,
                        "uri" => params.uri = map.next_value::<MaybeString<'a>>()?.0,
                        "ref" => params.reference = map.next_value::<MaybeReference>()?.0,
                        "notifications" => {
                            params.subscriptions = map.next_value::<Notifications>()?.0;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                names.finish()?;
                Ok(params)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params<'a>, A::Error> {
                drain_seq(seq).map(|()| Params::default())
            }
            skip_scalars!(Params<'a>, Params::default());
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `ref`: a reference when it is an object with a known `type` and its string member.
struct MaybeReference(Option<Reference>);

impl<'de> Deserialize<'de> for MaybeReference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeReference;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a completion reference")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeReference, A::Error> {
                let mut names = Names::new();
                let (mut kind, mut name, mut uri) = (None, None, None);
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    names.check(key.clone())?;
                    match &*key {
                        "type" => kind = map.next_value::<MaybeString<'de>>()?.0,
                        "name" => name = map.next_value::<MaybeString<'de>>()?.0,
                        "uri" => uri = map.next_value::<MaybeString<'de>>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                names.finish()?;
                Ok(MaybeReference(match kind.as_deref() {
                    Some("ref/prompt") => name.map(|n| Reference::Prompt(n.into_owned())),
                    Some("ref/resource") => uri.map(|u| Reference::Resource(u.into_owned())),
                    _ => None,
                }))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeReference, A::Error> {
                drain_seq(seq).map(|()| MaybeReference(None))
            }
            skip_scalars!(MaybeReference, MaybeReference(None));
        }
        d.deserialize_any(V)
    }
}

/// `notifications`: the URIs of its `resourceSubscriptions` (string entries; a server reading
/// the list refuses any other).
struct Notifications(Vec<String>);

impl<'de> Deserialize<'de> for Notifications {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Notifications;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a notification filter")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Notifications, A::Error> {
                let mut names = Names::new();
                let mut uris = Vec::new();
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    names.check(key.clone())?;
                    if key == "resourceSubscriptions" {
                        uris = map.next_value::<Uris>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                names.finish()?;
                Ok(Notifications(uris))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Notifications, A::Error> {
                drain_seq(seq).map(|()| Notifications(Vec::new()))
            }
            skip_scalars!(Notifications, Notifications(Vec::new()));
        }
        d.deserialize_any(V)
    }
}

/// The string entries of an array.
struct Uris(Vec<String>);

impl<'de> Deserialize<'de> for Uris {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Uris;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of URIs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Uris, A::Error> {
                let mut out = Vec::new();
                while let Some(MaybeString(s)) = seq.next_element::<MaybeString<'de>>()? {
                    out.extend(s.map(Cow::into_owned));
                }
                Ok(Uris(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Uris, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Uris(Vec::new()))
            }
            skip_scalars!(Uris, Uris(Vec::new()));
        }
        d.deserialize_any(V)
    }
}
