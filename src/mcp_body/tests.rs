//! The reading of MCP bodies: what each message names, batches, and what is unreadable.

use super::*;

/// The body's UTF-8 check (simdutf8) refuses exactly what the standard library refuses,
/// wherever the bad sequence sits in the vector blocks of an ignored member.
#[test]
fn utf8_is_checked_as_the_standard_library_does() {
    let sequences: [&[u8]; 12] = [
        b"\xc3\xa9",
        b"\xe2\x9c\x93",
        b"\xf0\x9f\x98\x80",
        b"\xc3",
        b"\xe2\x9c",
        b"\xf0\x9f\x98",
        b"\xc0\x80",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\x80",
        b"\xff",
    ];
    for seq in sequences {
        for at in [0, 1, 15, 16, 31, 32, 33, 63, 64, 65, 100] {
            let mut body = br#"{"jsonrpc":"2.0","x":""#.to_vec();
            let mut text = vec![b'a'; 130];
            text.splice(at..at + seq.len(), seq.iter().copied());
            body.extend(&text);
            body.extend(br#""}"#);
            assert_eq!(
                messages(&body).is_ok(),
                std::str::from_utf8(&body).is_ok(),
                "{seq:?} at {at}"
            );
        }
    }
}

/// The tools the body's `tools/call` messages call.
fn calls(s: &str) -> Result<Vec<String>, Unreadable> {
    tool_calls(s.as_bytes())
}

fn tool_calls(body: &[u8]) -> Result<Vec<String>, Unreadable> {
    Ok(messages(body)?
        .list()
        .iter()
        .filter(|m| m.method.as_deref() == Some("tools/call"))
        .filter_map(|m| m.name.as_deref().map(str::to_owned))
        .collect())
}

#[test]
fn batches_are_bounded() {
    let batch = |n: usize| format!("[{}]", vec!["0"; n].join(","));
    assert_eq!(
        messages(batch(MAX_BATCH).as_bytes()).unwrap().list().len(),
        MAX_BATCH
    );
    assert_eq!(messages(batch(MAX_BATCH + 1).as_bytes()), Err(Unreadable));
}

/// Messages are handed on one by one, in order, with where they sit; a batch is not
/// kept, and one over the limit is refused before its extra element is handed on.
#[test]
fn messages_are_handed_on_as_they_are_read() {
    let mut seen = Vec::new();
    let shape = read(
        br#"[{"id":1,"method":"ping"},7,{"method":"tools/list"}]"#,
        |at, m| seen.push((at, m.method.clone())),
    );
    assert_eq!(shape, Ok(Shape::Batch));
    let at = |index| At {
        index,
        in_batch: true,
    };
    assert_eq!(
        seen,
        [
            (at(0), Some("ping".into())),
            (at(1), None),
            (at(2), Some("tools/list".into()))
        ]
    );
    let mut seen = Vec::new();
    let shape = read(br#"{"id":1,"method":"ping"}"#, |at, _| seen.push(at));
    assert!(matches!(shape, Ok(Shape::One(ref m)) if m.id == Some(1.into())));
    let one = At {
        index: 0,
        in_batch: false,
    };
    assert_eq!(seen, [one]);
    let mut count = 0;
    assert_eq!(read(b" 3 ", |_, _| count += 1), Ok(Shape::None));
    assert_eq!(read(b"[]", |_, _| count += 1), Ok(Shape::Batch));
    assert_eq!(count, 0);
    let long = format!("[{}]", vec!["{}"; MAX_BATCH + 1].join(","));
    assert_eq!(read(long.as_bytes(), |_, _| count += 1), Err(Unreadable));
    assert_eq!(count, MAX_BATCH);
    // A body found unreadable after a message was handed on is unreadable all the same
    // (the caller drops what it made of that message).
    let mut count = 0;
    let late = br#"[{"method":"ping"},{"a":1,"a":2}]"#;
    assert_eq!(read(late, |_, _| count += 1), Err(Unreadable));
    assert_eq!(count, 1);
}

#[test]
fn completions_and_subscriptions_name_what_they_act_on() {
    let read = messages(
        br#"[{"id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"admin_brief"},"argument":{"name":"a","value":"b"}}},
            {"id":2,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"admin://reports/{id}"}}},
            {"id":3,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["admin://report",7,"public://readme"]}}},
            {"id":4,"method":"completion/complete","params":{"ref":{"type":"ref/other","name":"x"}}}]"#,
    )
    .unwrap();
    let ops: Vec<Vec<_>> = read
        .list()
        .iter()
        .map(|m| m.operations().collect())
        .collect();
    assert_eq!(ops[0], [(McpOperationKind::Prompt, "admin_brief")]);
    assert_eq!(
        ops[1],
        [(McpOperationKind::Resource, "admin://reports/{id}")]
    );
    assert_eq!(
        ops[2],
        [
            (McpOperationKind::Resource, "admin://report"),
            (McpOperationKind::Resource, "public://readme")
        ]
    );
    assert!(ops[3].is_empty());
    // Repeats and case variants inside the nested objects are refused too.
    for bad in [
        r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","name":"b"}}}"#,
        r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","Name":"b","name":"a"}}}"#,
        r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["a"],"ResourceSubscriptions":["b"]}}}"#,
    ] {
        assert_eq!(messages(bad.as_bytes()), Err(Unreadable), "{bad}");
    }
}

#[test]
fn every_message_is_read_with_its_target() {
    let read = messages(
        br#"[{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"admin://report","name":"n"}},
            {"id":7,"method":"prompts/get","params":{"name":"brief","arguments":{"uri":"x"}}},
            {"method":"tools/list","id":null},
            5]"#,
    )
    .unwrap();
    assert!(read.is_batch());
    let targets: Vec<_> = read.list().iter().map(Message::target).collect();
    assert_eq!(targets, [Some("admin://report"), Some("brief"), None, None]);
    assert_eq!(read.list()[0].id, Some("a".into()));
    assert_eq!(read.list()[1].id, Some(7.into()));
    assert_eq!(read.list()[2].id, None);
    assert_eq!(read.list()[3], Message::default());
    let one = messages(br#"{"method":"resources/subscribe","params":{"uri":"u"}}"#).unwrap();
    assert!(!one.is_batch());
    assert_eq!(one.list()[0].target(), Some("u"));
    assert_eq!(messages(b"null").unwrap(), Messages::default());
    // A case variant of `uri` is refused like one of `name`.
    assert_eq!(
        messages(br#"{"method":"resources/read","params":{"uri":"a","URI":"b"}}"#),
        Err(Unreadable)
    );
}

#[test]
fn tools_calls_are_found_in_messages_and_batches() {
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":[1,{"y":"\ud83d\ude00"}]}}}"#;
    assert_eq!(calls(call), Ok(vec!["a".to_owned()]));
    let batch = format!(
        r#"[{call}, {{"jsonrpc":"2.0","method":"tools/list"}}, 7, {{"method":"tools/call","params":{{"name":"b"}}}}]"#
    );
    assert_eq!(calls(&batch), Ok(vec!["a".to_owned(), "b".to_owned()]));
    assert_eq!(
        calls(r#"{"method":"tools/call","params":{"name":42}}"#),
        Ok(vec![])
    );
    assert_eq!(
        calls(r#"{"meth\u006fd":"tools/call","params":{"n\u0061me":"c"}}"#),
        Ok(vec!["c".to_owned()])
    );
    assert_eq!(calls("  3  "), Ok(vec![]));
}

#[test]
fn what_can_not_be_read_strictly_is_unreadable() {
    for bad in [
        "",
        "not json",
        r#"{"method":"tools/call"} trailing"#,
        r#"{"a":1}{"method":"tools/call","params":{"name":"x"}}"#,
        "\u{feff}{}",
        r#"{"method":"tools/call","params":{"name":"\ud800"}}"#,
        r#"{"method":"\udc00","params":{"name":"x"}}"#,
        r#"{"method":"tools/call","method":"ping"}"#,
        r#"{"params":{"name":"a","name":"b"},"method":"tools/call"}"#,
        r#"{"$serde_json::private::RawValue":"{}"}"#,
        r#"{"method":"tools/call","params":{"$serde_json::private::Number":"1"}}"#,
        r#"{"method":"ping","Method":"tools/call","Params":{"Name":"x"}}"#,
        r#"{"method":"tools/call","params":{"name":"a","NAME":"b"}}"#,
        "{\"method\":\"tools/call\",\"params\":{\"name\":\"a\"},\"PARAMS\":{}}",
        "{\"method\":\"ping\",\"Method\":\"tools/call\"}",
        "{\"method\":\"ping\",\"param\u{17F}\":{\"name\":\"x\"}}",
    ] {
        assert_eq!(calls(bad), Err(Unreadable), "{bad:?}");
    }
    assert_eq!(tool_calls(b"{\"a\":\"\xff\"}"), Err(Unreadable));
}

#[test]
fn deep_nesting_in_ignored_members_is_skipped_not_built() {
    // serde_json skips ignored values with a stack of its own (no recursion limit), so
    // what the gate reads stays exact however deep the arguments go.
    let deep = format!(
        r#"{{"method":"tools/call","params":{{"arguments":{}{},"name":"x"}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(calls(&deep), Ok(vec!["x".to_owned()]));
    let unbalanced = format!(
        r#"{{"method":"tools/call","params":{{"arguments":{},"name":"x"}}}}"#,
        "[".repeat(1000)
    );
    assert_eq!(calls(&unbalanced), Err(Unreadable));
}
