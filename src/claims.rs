//! The claims of an access token, read in one pass (`jwt.rs`): the members that validation
//! and [`ResourceOwner`](crate::ResourceOwner) use are borrowed from the decoded JSON; every
//! other member is checked exactly as `serde_json::Value` would check it (string escapes,
//! numbers in range, nesting depth) but never built; a repeated member name is refused. The
//! full claims object is built only if an application asks for it.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

use crate::json::{Repeats, Text, skip_scalars};

/// One claim that validation or the owner reads, as the token gives it.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) enum Claim<'a> {
    /// Not in the token.
    #[default]
    Absent,
    Str(Cow<'a, str>),
    /// An array: its string elements, and whether there was nothing else in it.
    Array {
        strings: Vec<Cow<'a, str>>,
        only_strings: bool,
    },
    Number(f64),
    /// `true`, `false`, `null` or an object.
    Other,
}

impl<'a> Claim<'a> {
    /// The string, when the claim is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string, when the claim is a non-empty one.
    pub(crate) fn non_empty(&self) -> Option<&str> {
        self.as_str().filter(|s| !s.is_empty())
    }

    /// The claim with its strings copied out of the JSON it was read from.
    pub(crate) fn detached(&self) -> Claim<'static> {
        match self {
            Self::Absent => Claim::Absent,
            Self::Str(s) => Claim::Str(owned(s)),
            Self::Array {
                strings,
                only_strings,
            } => Claim::Array {
                strings: strings.iter().map(|s| owned(s)).collect(),
                only_strings: *only_strings,
            },
            Self::Number(n) => Claim::Number(*n),
            Self::Other => Claim::Other,
        }
    }
}

fn owned(s: &str) -> Cow<'static, str> {
    Cow::Owned(String::from(s))
}

/// The members of a claims object that the crate reads; see the module docs.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Claims<'a> {
    pub(crate) iss: Claim<'a>,
    pub(crate) sub: Claim<'a>,
    pub(crate) aud: Claim<'a>,
    pub(crate) exp: Claim<'a>,
    pub(crate) nbf: Claim<'a>,
    pub(crate) iat: Claim<'a>,
    pub(crate) client_id: Claim<'a>,
    pub(crate) azp: Claim<'a>,
    pub(crate) cid: Claim<'a>,
    pub(crate) appid: Claim<'a>,
    pub(crate) scope: Claim<'a>,
    pub(crate) scp: Claim<'a>,
    /// The confirmation (RFC 7800): the token is sender-constrained when present.
    pub(crate) cnf: Cnf<'a>,
    /// `nonce`, `at_hash` or `c_hash` is present: an OpenID Connect ID token's claims.
    pub(crate) id_token_claims: bool,
}

impl<'a> Claims<'a> {
    /// Reads a claims object. `None` when `json` is not one JSON object, repeats a member
    /// name, or holds anything `serde_json::Value` would refuse.
    pub(crate) fn parse(json: &'a str) -> Option<Self> {
        let mut claims = Self::default();
        claims.read(json).then_some(claims)
    }

    /// The claims with their strings copied out of the JSON they were read from.
    pub(crate) fn detached(&self) -> Claims<'static> {
        Claims {
            iss: self.iss.detached(),
            sub: self.sub.detached(),
            aud: self.aud.detached(),
            exp: self.exp.detached(),
            nbf: self.nbf.detached(),
            iat: self.iat.detached(),
            client_id: self.client_id.detached(),
            azp: self.azp.detached(),
            cid: self.cid.detached(),
            appid: self.appid.detached(),
            scope: self.scope.detached(),
            scp: self.scp.detached(),
            cnf: match &self.cnf {
                Cnf::Absent => Cnf::Absent,
                Cnf::Jkt(jkt) => Cnf::Jkt(owned(jkt)),
                Cnf::Other => Cnf::Other,
            },
            id_token_claims: self.id_token_claims,
        }
    }

    /// [`parse`](Self::parse) into `self`, a fresh [`Claims::default`]: in place, so that the
    /// struct is not moved through every layer of the deserializer on the hot path. `false`
    /// (and `self` partly filled) when `parse` would answer `None`.
    pub(crate) fn read(&mut self, json: &'a str) -> bool {
        let mut de = serde_json::Deserializer::from_str(json);
        de.deserialize_map(Fill(self)).is_ok() && de.end().is_ok()
    }
}

/// Reads a claims object into the claims it holds.
struct Fill<'c, 'de>(&'c mut Claims<'de>);

impl<'de> Visitor<'de> for Fill<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        let c = self.0;
        // A name read into a slot came before when its slot is filled (a value read is never
        // `Absent`); only the other names are kept to be compared (access tokens carry a
        // few: 16 in place).
        let mut others = Repeats::<16>::new();
        let repeated = || serde::de::Error::custom("duplicate claim");
        while let Some(Text(name)) = a.next_key()? {
            let slot = match &*name {
                "iss" => Some(&mut c.iss),
                "sub" => Some(&mut c.sub),
                "aud" => Some(&mut c.aud),
                "exp" => Some(&mut c.exp),
                "nbf" => Some(&mut c.nbf),
                "iat" => Some(&mut c.iat),
                "client_id" => Some(&mut c.client_id),
                "azp" => Some(&mut c.azp),
                "cid" => Some(&mut c.cid),
                "appid" => Some(&mut c.appid),
                "scope" => Some(&mut c.scope),
                "scp" => Some(&mut c.scp),
                _ => None,
            };
            match slot {
                Some(slot) if matches!(*slot, Claim::Absent) => *slot = a.next_value()?,
                Some(_) => return Err(repeated()),
                None if name == "cnf" => {
                    if !matches!(c.cnf, Cnf::Absent) {
                        return Err(repeated());
                    }
                    c.cnf = a.next_value()?;
                }
                None => {
                    a.next_value::<Checked>()?;
                    if matches!(&*name, "nonce" | "at_hash" | "c_hash") {
                        c.id_token_claims = true;
                    }
                    others.add(name);
                }
            }
        }
        if others.any() {
            return Err(repeated());
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Claim<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Claim<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Claim<'de>, E> {
                Ok(Claim::Number(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Claim<'de>, E> {
                Ok(Claim::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Claim<'de>, E> {
                Ok(Claim::Number(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Claim<'de>, E> {
                Ok(Claim::Other)
            }
            fn visit_unit<E>(self) -> Result<Claim<'de>, E> {
                Ok(Claim::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Claim<'de>, A::Error> {
                let mut strings = Vec::new();
                let mut only_strings = true;
                while let Some(e) = a.next_element::<Element<'de>>()? {
                    match e.0 {
                        Some(s) => strings.push(s),
                        None => only_strings = false,
                    }
                }
                Ok(Claim::Array {
                    strings,
                    only_strings,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Claim<'de>, A::Error> {
                CheckedVisitor.visit_map(a).map(|_| Claim::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The `cnf` claim (RFC 7800 §3.1).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) enum Cnf<'a> {
    /// Not in the token: a bearer token.
    #[default]
    Absent,
    /// `{"jkt": "<thumbprint>"}` and nothing else: bound to a DPoP key (RFC 9449 §6.1).
    Jkt(Cow<'a, str>),
    /// Any other value: another confirmation method (mutual TLS, RFC 8705), several, or a
    /// malformed one. Nothing here can prove it, so such a token is never accepted.
    Other,
}

impl<'de> Deserialize<'de> for Cnf<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cnf<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            skip_scalars!(Cnf<'de>, Cnf::Other);
            fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<Cnf<'de>, A::Error> {
                CheckedVisitor.visit_seq(a).map(|_| Cnf::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Cnf<'de>, A::Error> {
                let mut jkt = None;
                let mut other = false;
                while let Some(Text(name)) = a.next_key()? {
                    if name == "jkt" && jkt.is_none() && !other {
                        match a.next_value()? {
                            Claim::Str(s) => jkt = Some(s),
                            _ => other = true,
                        }
                    } else {
                        // A second member (or a repeated `jkt`): not a plain DPoP binding.
                        a.next_value::<Checked>()?;
                        other = true;
                    }
                }
                Ok(match jkt {
                    Some(jkt) if !other => Cnf::Jkt(jkt),
                    _ => Cnf::Other,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// An array element: a string, or (`None`) any other value, checked.
struct Element<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Element<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Claim::deserialize(d)? {
            Claim::Str(s) => Ok(Element(Some(s))),
            _ => Ok(Element(None)),
        }
    }
}

/// Any JSON value, checked as `serde_json::Value` checks it but not built: serde_json
/// parses every number and string it hands to a visitor (`IgnoredAny` would skip numbers
/// unparsed, so a claim like `1e999` would pass here and fail when the application reads
/// the claims).
struct Checked;

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    skip_scalars!(Checked, Checked);
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Checked, A::Error> {
        while a.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Checked, A::Error> {
        while a.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    /// Whatever `serde_json::Value` accepts as an object (without repeated top-level names)
    /// is accepted here, and nothing else.
    #[test]
    fn accepts_exactly_what_a_value_accepts() {
        let cases = [
            r#"{"sub":"a","iss":"b"}"#,
            r#"{"sub":"a","sub":"b"}"#,
            r#"{"x":1e999}"#,
            r#"{"x":[1,{"y":-1e999}]}"#,
            r#"{"x":"\ud800"}"#,
            r#"{"x":"\u00e9\n"}"#,
            r#"{"a\u0062":1,"ab":2}"#,
            r#"{"x":{"y":1,"y":2}}"#,
            r#"{"aud":["a",1,null],"scp":"s t","exp":1.5e9}"#,
            "[1]",
            "{} x",
            r#"{"x":18446744073709551616}"#,
            &format!("{{\"x\":{}1{}}}", "[".repeat(200), "]".repeat(200)),
            &format!("{{\"x\":{}1{}}}", "[".repeat(100), "]".repeat(100)),
        ];
        for json in cases {
            let value: Option<Map<String, Value>> = serde_json::from_str::<Value>(json)
                .ok()
                .and_then(|v| v.as_object().cloned());
            let repeated = json.contains(r#""sub":"a","sub""#) || json.contains(r#""ab":2"#);
            let expected = value.is_some() && !repeated;
            assert_eq!(Claims::parse(json).is_some(), expected, "{json}");
        }
    }

    #[test]
    fn a_repeated_name_is_refused_whether_read_or_not() {
        let many: String = (0..20).map(|i| format!(r#""n{i}":{i},"#)).collect();
        for (json, ok) in [
            (
                r#"{"iss":"a","sub":"b","cnf":{"jkt":"c"}}"#.to_owned(),
                true,
            ),
            (r#"{"cnf":{"jkt":"c"},"cnf":{"jkt":"c"}}"#.to_owned(), false),
            (r#"{"scope":"a","sc\u006fpe":"b"}"#.to_owned(), false),
            (r#"{"scp":["a"],"scope":"a","scp":"b"}"#.to_owned(), false),
            (r#"{"jti":1,"j\u0074i":2}"#.to_owned(), false),
            (r#"{"nonce":1,"nonce":1}"#.to_owned(), false),
            (r#"{"sub":null,"sub":null}"#.to_owned(), false),
            (r#"{"aud":[],"aud":[]}"#.to_owned(), false),
            (r#"{"cnf":null,"cnf":1}"#.to_owned(), false),
            (r#"{"sub":"a","Sub":"a","SUB":"a"}"#.to_owned(), true),
            (format!(r#"{{{many}"sub":"a"}}"#), true),
            (format!(r#"{{{many}"n3":1}}"#), false),
            (format!(r#"{{{many}"exp":1,"exp":1}}"#), false),
        ] {
            assert_eq!(Claims::parse(&json).is_some(), ok, "{json}");
            let value = serde_json::from_str::<Map<String, Value>>(&json);
            assert!(value.is_ok(), "{json} is JSON: only the repeat refuses it");
        }
    }

    #[test]
    fn reads_the_members_it_needs() {
        let c = Claims::parse(
            r#"{"iss":"i","sub":"s","aud":["a",1],"exp":10,"nbf":true,"scope":"x y",
                "client_id":"","cnf":{"jkt":"t"},"nonce":null,"other":{"sub":"no"}}"#,
        )
        .unwrap();
        assert_eq!(c.iss.as_str(), Some("i"));
        assert_eq!(c.sub.as_str(), Some("s"));
        assert_eq!(
            c.aud,
            Claim::Array {
                strings: vec![Cow::Borrowed("a")],
                only_strings: false
            }
        );
        assert_eq!(c.exp, Claim::Number(10.0));
        assert_eq!(c.nbf, Claim::Other);
        assert_eq!(c.iat, Claim::Absent);
        assert_eq!(c.client_id.non_empty(), None);
        assert_eq!(c.cnf, Cnf::Jkt(Cow::Borrowed("t")));
        assert!(c.id_token_claims);
        for (json, expected) in [
            (r#"{"cnf":{"x5t#S256":"a"}}"#, Cnf::Other),
            (r#"{"cnf":{"jkt":"a","x5t#S256":"b"}}"#, Cnf::Other),
            (r#"{"cnf":{"x5t#S256":"b","jkt":"a"}}"#, Cnf::Other),
            (r#"{"cnf":{"jkt":"a","jkt":"a"}}"#, Cnf::Other),
            (r#"{"cnf":{"jkt":7}}"#, Cnf::Other),
            (r#"{"cnf":{}}"#, Cnf::Other),
            (r#"{"cnf":"jkt"}"#, Cnf::Other),
            (r#"{"cnf":null}"#, Cnf::Other),
            (r#"{"cnf":["a"]}"#, Cnf::Other),
            (r#"{"cnf":{"jkt":"\u0061"}}"#, Cnf::Jkt(Cow::Borrowed("a"))),
            (r#"{}"#, Cnf::Absent),
        ] {
            assert_eq!(Claims::parse(json).unwrap().cnf, expected, "{json}");
        }
        // Escaped strings are unescaped.
        let c = Claims::parse(r#"{"s\u0075b":"\u0061lice"}"#).unwrap();
        assert_eq!(c.sub.as_str(), Some("alice"));
    }
}
