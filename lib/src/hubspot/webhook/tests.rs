use super::*;

const PROPERTY_CHANGE: &str = r#"[{"eventId":1,"subscriptionId":2,"portalId":3,"appId":4,"occurredAt":1700000000000,
 "subscriptionType":"company.propertyChange","attemptNumber":0,"objectId":42,"changeSource":"CRM_UI",
 "propertyName":"warp_credit_limit","propertyValue":"7500.00"}]"#;

#[test]
fn parses_a_property_change() {
    let events = parse_delivery(PROPERTY_CHANGE.as_bytes()).unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.object_id, 42);
    assert_eq!(e.object_type(), "company");
    assert_eq!(e.action(), "propertyChange");
    assert_eq!(e.property_name.as_deref(), Some("warp_credit_limit"));
    assert_eq!(e.property_value.as_deref(), Some("7500.00"));
    assert!(matches!(e.property_name, Some(Cow::Borrowed(_))), "no copy");
}

#[test]
fn accepts_event_type_ids_as_strings_and_unknown_fields() {
    let body = r#"[{"eventId":"1","subscriptionId":2,"portalId":3,"occurredAt":1700000000000,
      "eventType":"company.creation","objectId":"42","somethingNew":{"x":[1,2]}}]"#;
    let events = parse_delivery(body.as_bytes()).unwrap();
    assert_eq!(events[0].subscription_type, "company.creation");
    assert_eq!(events[0].event_id, 1);
    assert_eq!(events[0].object_id, 42);
}

#[test]
fn parses_merge_and_association_events() {
    let body = r#"[
      {"eventId":5,"subscriptionId":2,"portalId":3,"occurredAt":1700000000000,"subscriptionType":"company.merge",
       "objectId":10,"primaryObjectId":10,"mergedObjectIds":[11,12],"newObjectId":13,"numberOfPropertiesMoved":4},
      {"eventId":6,"subscriptionId":2,"portalId":3,"occurredAt":1700000000000,"subscriptionType":"company.associationChange",
       "objectId":10,"associationType":"COMPANY_TO_CONTACT","fromObjectId":10,"toObjectId":99,
       "associationRemoved":false,"isPrimaryAssociation":true}]"#;
    let events = parse_delivery(body.as_bytes()).unwrap();
    assert_eq!(
        events[0].merged_object_ids.as_deref(),
        Some(&[11u64, 12][..])
    );
    assert_eq!(events[0].new_object_id, Some(13));
    assert_eq!(events[1].to_object_id, Some(99));
    assert_eq!(
        events[0].dedup_key(),
        "3:10:company.merge:1700000000000:11/12"
    );
    assert_eq!(
        events[1].dedup_key(),
        "3:10:company.associationChange:1700000000000:COMPANY_TO_CONTACT/10/99/added"
    );
}

#[test]
fn escaped_strings_are_decoded() {
    let body = r#"[{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":1700000000000,
      "subscriptionType":"company.propertyChange","objectId":42,"propertyName":"name","propertyValue":"Yll\u00e4 \"Oy\""}]"#;
    let events = parse_delivery(body.as_bytes()).unwrap();
    assert_eq!(events[0].property_value.as_deref(), Some("Yllä \"Oy\""));
}

#[test]
fn dedup_key_ignores_attempt_number_and_is_readable() {
    let a = parse_delivery(PROPERTY_CHANGE.as_bytes()).unwrap();
    let retried = PROPERTY_CHANGE.replace(r#""attemptNumber":0"#, r#""attemptNumber":3"#);
    let b = parse_delivery(retried.as_bytes()).unwrap();
    assert_eq!(a[0].dedup_key(), b[0].dedup_key());
    assert_eq!(
        a[0].dedup_key(),
        "3:42:company.propertyChange:1700000000000:warp_credit_limit"
    );
}

#[test]
fn dedup_key_names_the_change_not_the_notification() {
    let base = parse_delivery(PROPERTY_CHANGE.as_bytes())
        .unwrap()
        .remove(0);
    let variants = [
        WebhookEvent {
            property_name: Some("name".into()),
            ..base.clone()
        },
        WebhookEvent {
            occurred_at: base.occurred_at + 1,
            ..base.clone()
        },
        WebhookEvent {
            object_id: 43,
            ..base.clone()
        },
        WebhookEvent {
            portal_id: 4,
            ..base.clone()
        },
        WebhookEvent {
            subscription_type: "contact.propertyChange".into(),
            ..base.clone()
        },
        WebhookEvent {
            subscription_type: "object.propertyChange".into(),
            object_type_id: Some("0-1".into()),
            ..base.clone()
        },
        WebhookEvent {
            subscription_type: "object.propertyChange".into(),
            object_type_id: Some("0-3".into()),
            ..base.clone()
        },
    ];
    let mut keys: Vec<String> = variants.iter().map(WebhookEvent::dedup_key).collect();
    keys.push(base.dedup_key());
    let unique: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len());
    // What only tells notifications apart is not part of the identity: the
    // same change under another subscription (the other format's) or event
    // id, with the value it has in both, is the same key.
    for same in [
        WebhookEvent {
            property_value: Some("1".into()),
            ..base.clone()
        },
        WebhookEvent {
            subscription_id: 9,
            event_id: 77,
            app_id: None,
            ..base.clone()
        },
    ] {
        assert_eq!(same.dedup_key(), base.dedup_key());
    }
}

#[test]
fn dedup_key_escapes_separators() {
    let base = parse_delivery(PROPERTY_CHANGE.as_bytes())
        .unwrap()
        .remove(0);
    let tricky = WebhookEvent {
        property_name: Some("a:b%c/d".into()),
        ..base
    };
    assert!(tricky.dedup_key().ends_with(":a%3Ab%25c%2Fd"));
}

#[test]
fn serialises_back_for_the_queue_message() {
    let events = parse_delivery(PROPERTY_CHANGE.as_bytes()).unwrap();
    let json = serde_json::to_string(&events[0]).unwrap();
    let back: WebhookEvent<'_> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, events[0]);
    assert_eq!(back.into_owned(), events[0].clone().into_owned());
}

fn err(body: &str) -> PayloadError {
    parse_delivery(body.as_bytes()).unwrap_err()
}

#[test]
fn rejections_say_what_is_wrong() {
    assert!(matches!(err("not json"), PayloadError::Syntax(_)));
    assert!(matches!(err(""), PayloadError::Syntax(_)));
    assert!(matches!(err(r#"[{"eventId":1"#), PayloadError::Syntax(_)));
    assert_eq!(err(r#"{"eventId":1}"#), PayloadError::NotAnArray);
    assert_eq!(err(r#""hello""#), PayloadError::NotAnArray);
    assert_eq!(
        err(r#"[1]"#),
        PayloadError::Event {
            index: 0,
            reason: "not a JSON object".into()
        }
    );

    let missing = PROPERTY_CHANGE.replace(r#""occurredAt":1700000000000,"#, "");
    let two = format!(
        "[{},{}]",
        &PROPERTY_CHANGE[1..PROPERTY_CHANGE.len() - 1],
        &missing[1..missing.len() - 1]
    );
    match err(&two) {
        PayloadError::Event { index: 1, reason } => {
            assert!(reason.contains("occurredAt"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    let bad_type = PROPERTY_CHANGE.replace(r#""objectId":42"#, r#""objectId":"forty-two""#);
    match err(&bad_type) {
        PayloadError::Event { index: 0, reason } => {
            assert!(reason.contains("objectId"), "{reason}");
            assert!(
                !reason.contains("forty-two"),
                "values are not echoed: {reason}"
            );
        }
        other => panic!("{other:?}"),
    }

    let no_prop = PROPERTY_CHANGE.replace(r#""propertyName":"warp_credit_limit","#, "");
    assert_eq!(
        err(&no_prop),
        PayloadError::Event {
            index: 0,
            reason: "propertyChange event without propertyName".into()
        }
    );
    let bad_sub = PROPERTY_CHANGE.replace("company.propertyChange", "nonsense");
    assert!(matches!(
        err(&bad_sub),
        PayloadError::Event { index: 0, .. }
    ));
    let negative = PROPERTY_CHANGE.replace(r#""objectId":42"#, r#""objectId":-42"#);
    assert!(matches!(
        err(&negative),
        PayloadError::Event { index: 0, .. }
    ));
}

#[test]
fn empty_array_is_an_empty_delivery() {
    assert!(parse_delivery(b"[]").unwrap().is_empty());
}

#[test]
fn invalid_utf8_is_a_syntax_error() {
    let mut body = PROPERTY_CHANGE.as_bytes().to_vec();
    let i = body.iter().position(|b| *b == b'7').unwrap();
    body[i] = 0xff;
    assert!(matches!(
        parse_delivery(&body),
        Err(PayloadError::Syntax(_))
    ));
}

proptest::proptest! {
    #[test]
    fn parsing_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = parse_delivery(&body);
    }

    #[test]
    fn parsing_json_like_text_never_panics(body in r#"\[?\{?("[a-zA-Z]{1,12}":(-?[0-9]{1,20}|"[^"]{0,8}"|true|null|\[\])[,}]?){0,12}\]?"#) {
        let _ = parse_delivery(body.as_bytes());
    }

    #[test]
    fn dedup_keys_are_injective_over_property_names(a in "[a-z:%/_]{1,12}", b in "[a-z:%/_]{1,12}") {
        let base = parse_delivery(PROPERTY_CHANGE.as_bytes()).unwrap().remove(0);
        let ka = WebhookEvent { property_name: Some(a.clone().into()), ..base.clone() }.dedup_key();
        let kb = WebhookEvent { property_name: Some(b.clone().into()), ..base }.dedup_key();
        proptest::prop_assert_eq!(a == b, ka == kb);
    }
}

/// A delivery of every kind HubSpot batches together: a property change, an
/// association change (no objectId), a contact change, a type HubSpot may
/// add later, a property change without objectId, one with a bad value.
const MIXED: &str = r#"[
 {"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":1700000000000,"subscriptionType":"company.propertyChange",
  "attemptNumber":0,"objectId":42,"propertyName":"name","propertyValue":"Acme"},
 {"eventId":2,"subscriptionId":5,"portalId":3,"occurredAt":1700000000001,"subscriptionType":"company.associationChange",
  "attemptNumber":0,"associationType":"COMPANY_TO_CONTACT","fromObjectId":42,"toObjectId":99,
  "associationRemoved":true,"isPrimaryAssociation":false},
 {"eventId":3,"subscriptionId":6,"portalId":3,"occurredAt":1700000000002,"subscriptionType":"contact.propertyChange",
  "attemptNumber":0,"objectId":7,"propertyName":"email","propertyValue":"a@b.c"},
 {"eventId":4,"subscriptionId":7,"portalId":3,"occurredAt":1700000000003,"subscriptionType":"company.teleport",
  "attemptNumber":0,"objectId":42},
 {"eventId":5,"subscriptionId":2,"portalId":3,"occurredAt":1700000000004,"subscriptionType":"company.propertyChange",
  "attemptNumber":0,"propertyName":"name","propertyValue":"secret-ish"},
 {"eventId":6,"subscriptionId":2,"portalId":3,"occurredAt":"soon","subscriptionType":"company.propertyChange",
  "attemptNumber":0,"objectId":43,"propertyName":"name","propertyValue":"x"}
]"#;

#[test]
fn a_mixed_delivery_is_sorted_not_refused() {
    let d = read_delivery(MIXED.as_bytes()).unwrap();
    assert_eq!(d.len(), 6);
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].event_id, 1);
    // Same key as the strict parser gives: keys stay stable.
    let strict = parse_delivery(PROPERTY_CHANGE.as_bytes()).unwrap();
    let fast = read_delivery(PROPERTY_CHANGE.as_bytes()).unwrap();
    assert_eq!(fast.events[0].dedup_key(), strict[0].dedup_key());
    assert!(matches!(
        fast.events[0].property_name,
        Some(Cow::Borrowed(_))
    ));

    let by_index = |i: usize| d.unhandled.iter().find(|u| u.index == i).unwrap();
    let assoc = by_index(1);
    assert_eq!(assoc.disposition, Disposition::Ignored);
    assert_eq!(
        assoc.dedup_key,
        "3:42:company.associationChange:1700000000001:COMPANY_TO_CONTACT/42/99/removed"
    );
    assert!(assoc.reason.contains("association"), "{}", assoc.reason);
    assert_eq!(assoc.raw, None);

    let contact = by_index(2);
    assert_eq!(contact.disposition, Disposition::Ignored);
    assert_eq!(
        contact.reason,
        "subscription type contact.propertyChange is not synced"
    );
    assert!(
        contact
            .dedup_key
            .starts_with("3:7:contact.propertyChange:1700000000002:email")
    );
    let unknown = by_index(3);
    assert_eq!(unknown.disposition, Disposition::Ignored);
    assert!(unknown.reason.contains("company.teleport"));

    let missing = by_index(4);
    assert_eq!(missing.disposition, Disposition::Unreadable);
    assert!(missing.reason.contains("objectId"), "{}", missing.reason);
    assert!(missing.dedup_key.starts_with("unreadable:3:2:"));
    assert_eq!(missing.dedup_key.len(), "unreadable:3:2:".len() + 64);
    assert!(missing.raw.as_deref().unwrap().contains("secret-ish"));
    assert_eq!(missing.summary.event_id, Some(5));

    let bad_value = by_index(5);
    assert_eq!(bad_value.disposition, Disposition::Unreadable);
    assert!(
        bad_value.reason.contains("occurredAt"),
        "{}",
        bad_value.reason
    );
    for u in &d.unhandled {
        assert!(
            !u.reason.contains("soon") && !u.reason.contains("secret-ish"),
            "values are not echoed: {}",
            u.reason
        );
    }
}

#[test]
fn an_unreadable_event_keeps_its_key_across_retries() {
    let first = read_delivery(MIXED.as_bytes()).unwrap();
    let retry = MIXED.replace(r#""attemptNumber":0"#, r#""attemptNumber":3"#);
    let again = read_delivery(retry.as_bytes()).unwrap();
    let keys = |d: &Delivery<'_>| {
        d.unhandled
            .iter()
            .map(|u| u.dedup_key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&first), keys(&again));
    // Different content, different key.
    let other = MIXED.replace("secret-ish", "other");
    assert_ne!(
        keys(&first),
        keys(&read_delivery(other.as_bytes()).unwrap())
    );
}

#[test]
fn validation_failures_are_unreadable_events_not_refusals() {
    let no_prop = PROPERTY_CHANGE.replace(r#""propertyName":"warp_credit_limit","#, "");
    let d = read_delivery(no_prop.as_bytes()).unwrap();
    assert!(d.events.is_empty());
    assert_eq!(d.unhandled[0].disposition, Disposition::Unreadable);
    assert_eq!(
        d.unhandled[0].reason,
        "propertyChange event without propertyName"
    );
    assert_eq!(
        d.unhandled[0].dedup_key,
        "3:42:company.propertyChange:1700000000000:-"
    );
}

#[test]
fn only_a_body_that_is_not_an_array_of_objects_is_refused() {
    let refused = |b: &str| read_delivery(b.as_bytes()).unwrap_err();
    assert!(matches!(refused("not json"), PayloadError::Syntax(_)));
    assert!(matches!(refused(""), PayloadError::Syntax(_)));
    assert!(matches!(
        refused(r#"[{"eventId":1"#),
        PayloadError::Syntax(_)
    ));
    assert_eq!(refused(r#"{"eventId":1}"#), PayloadError::NotAnArray);
    assert_eq!(
        refused(r#"[{"eventId":1},"x"]"#),
        PayloadError::Event {
            index: 1,
            reason: "not a JSON object".into()
        }
    );
    assert!(read_delivery(b"[]").unwrap().is_empty());
    let d = read_delivery(br#"[{}]"#).unwrap();
    assert_eq!(d.unhandled[0].dedup_key.split(':').nth(1), Some("-"));
}

#[test]
fn a_huge_unreadable_event_is_kept_bounded() {
    let big = format!(r#"[{{"portalId":3,"junk":"{}é"}}]"#, "x".repeat(10_000));
    let d = read_delivery(big.as_bytes()).unwrap();
    let raw = d.unhandled[0].raw.as_deref().unwrap();
    assert!(raw.len() <= RAW_EVENT_LIMIT);
}

proptest::proptest! {
    #[test]
    fn reading_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = read_delivery(&body);
    }

    #[test]
    fn reading_an_array_of_arbitrary_objects_never_refuses(
        objects in proptest::collection::vec(
            proptest::collection::btree_map("[a-zA-Z]{1,12}", proptest::num::i64::ANY, 0..6), 0..8)
    ) {
        let body = serde_json::to_string(&objects).unwrap();
        let d = read_delivery(body.as_bytes()).unwrap();
        proptest::prop_assert_eq!(d.len(), objects.len());
    }
}

#[test]
fn nesting_is_counted_outside_strings_only() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(matches!(
        read_delivery(deep(MAX_DEPTH + 1).as_bytes()),
        Err(PayloadError::Syntax(m)) if m.contains("nested deeper")
    ));
    assert!(matches!(
        parse_delivery(deep(MAX_DEPTH + 1).as_bytes()),
        Err(PayloadError::Syntax(m)) if m.contains("nested deeper")
    ));
    // Brackets and escaped quotes inside a value are text, not nesting.
    let body = format!(
        r#"[{{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":4,"subscriptionType":"company.propertyChange","objectId":5,"propertyName":"name","propertyValue":"\"{}"}}]"#,
        "[{".repeat(1000)
    );
    let delivery = read_delivery(body.as_bytes()).unwrap();
    assert_eq!(delivery.events.len(), 1);
    assert!(
        read_delivery(deep(MAX_DEPTH).as_bytes()).is_err_and(|e| !e.to_string().contains("nested"))
    );
}

/// One change of company 42 as a generic (`object.*`) subscription sends
/// it: its own subscription and event id, the object type in
/// `objectTypeId`.
fn generic(action: &str, type_id: &str, extra: &str) -> String {
    format!(
        r#"{{"eventId":901,"subscriptionId":8,"portalId":3,"appId":4,"occurredAt":1700000000000,
        "subscriptionType":"object.{action}","attemptNumber":0,"objectId":42,"objectTypeId":"{type_id}",
        "changeSource":"CRM_UI","sourceId":"userId:5","isSensitive":false{extra}}}"#
    )
}

/// The events of a delivery of `events` that are not queued.
fn unhandled(events: &[String]) -> Vec<Unhandled> {
    let body = format!("[{}]", events.join(","));
    read_delivery(body.as_bytes()).unwrap().unhandled
}

/// The same change as a legacy `company.*` subscription sends it.
fn legacy(action: &str, extra: &str) -> String {
    format!(
        r#"{{"eventId":1,"subscriptionId":2,"portalId":3,"appId":4,"occurredAt":1700000000000,
        "subscriptionType":"company.{action}","attemptNumber":0,"objectId":42,"changeSource":"CRM_UI"{extra}}}"#
    )
}

const EXTRAS: [(&str, &str); 5] = [
    (
        "propertyChange",
        r#","propertyName":"warp_credit_limit","propertyValue":"7500.00""#,
    ),
    ("creation", ""),
    ("deletion", ""),
    ("restore", ""),
    (
        "merge",
        r#","primaryObjectId":42,"mergedObjectIds":[12,11],"newObjectId":42,"numberOfPropertiesMoved":4"#,
    ),
];

#[test]
fn a_generic_company_event_reads_as_its_company_counterpart() {
    for (action, extra) in EXTRAS {
        let body = format!(
            "[{},{}]",
            generic(action, "0-2", extra),
            legacy(action, extra)
        );
        for events in [
            parse_delivery(body.as_bytes()).unwrap(),
            read_delivery(body.as_bytes()).unwrap().events,
        ] {
            assert_eq!(events.len(), 2, "{action}: both queued");
            let (g, l) = (&events[0], &events[1]);
            assert_eq!(g.subscription_type, format!("company.{action}"));
            assert_eq!(g.object_type(), "company");
            assert_eq!(g.action(), action);
            assert!(is_synced(g), "{action}");
            assert!(g.is_generic() && !l.is_generic());
            assert_eq!(g.object_type_id.as_deref(), Some("0-2"));
            // Renamed to a static string, never a copy.
            assert!(matches!(g.subscription_type, Cow::Borrowed(_)));
            // One change, two notifications: one key.
            assert_ne!(g.event_id, l.event_id);
            assert_ne!(g.subscription_id, l.subscription_id);
            assert_eq!(g.dedup_key(), l.dedup_key(), "{action}");
            assert_eq!(
                WebhookEvent {
                    object_type_id: None,
                    event_id: l.event_id,
                    subscription_id: l.subscription_id,
                    ..g.clone()
                },
                WebhookEvent {
                    source_id: g.source_id.clone(),
                    ..l.clone()
                },
                "{action}: the same meaning, field for field"
            );
        }
    }
    let body = format!("[{}]", generic("propertyChange", "0-2", EXTRAS[0].1));
    let change = parse_delivery(body.as_bytes()).unwrap().remove(0);
    assert_eq!(
        change.dedup_key(),
        "3:42:company.propertyChange:1700000000000:warp_credit_limit"
    );
    assert!(matches!(change.property_name, Some(Cow::Borrowed(_))));
    // Renaming again changes nothing.
    let mut again = change.clone();
    again.normalise();
    assert_eq!(again, change);
}

#[test]
fn a_generic_company_event_goes_on_the_queue_with_its_type_id() {
    let body = format!("[{}]", generic("propertyChange", "0-2", EXTRAS[0].1));
    let event = read_delivery(body.as_bytes()).unwrap().events.remove(0);
    let json = serde_json::to_string(&event).unwrap();
    // What a consumer of the release before reads: a company type it
    // knows, and one field more that it ignores.
    assert!(
        json.contains(r#""subscriptionType":"company.propertyChange""#),
        "{json}"
    );
    assert!(json.contains(r#""objectTypeId":"0-2""#), "{json}");
    let back: WebhookEvent<'_> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, event);
    assert_eq!(back.dedup_key(), event.dedup_key());
}

#[test]
fn a_generic_contact_event_is_ignored_with_its_reason() {
    let contact = generic(
        "propertyChange",
        "0-1",
        r#","propertyName":"email","propertyValue":"a@b.c""#,
    );
    let body = format!("[{contact},{}]", generic("creation", "0-3", ""));
    let d = read_delivery(body.as_bytes()).unwrap();
    assert!(d.events.is_empty());
    assert_eq!(d.unhandled.len(), 2);
    let u = &d.unhandled[0];
    assert_eq!(u.disposition, Disposition::Ignored);
    assert_eq!(
        u.reason,
        "object.propertyChange events of object type 0-1 are not synced (only companies, 0-2)"
    );
    assert_eq!(
        u.summary.subscription_type.as_deref(),
        Some("object.propertyChange"),
        "recorded as it came"
    );
    assert_eq!(
        u.dedup_key,
        "3:42:object.propertyChange/0-1:1700000000000:email"
    );
    assert_eq!(u.raw, None);
    assert!(!u.reason.contains("a@b.c"));
    let deal = &d.unhandled[1];
    assert_eq!(deal.disposition, Disposition::Ignored);
    assert!(deal.reason.contains("object type 0-3"), "{}", deal.reason);
    assert_eq!(deal.dedup_key, "3:42:object.creation/0-3:1700000000000:-");

    // A company action the project does not know stays generic and is
    // named as any unknown type is.
    let teleport = unhandled(&[generic("teleport", "0-2", "")]);
    assert_eq!(teleport[0].disposition, Disposition::Ignored);
    assert_eq!(
        teleport[0].reason,
        "subscription type object.teleport is not synced"
    );
    // A type id that is not plain text is not echoed.
    let odd = unhandled(&[generic("creation", "0-1\\u0000x", "")]);
    assert!(odd[0].reason.contains("(not shown)"), "{}", odd[0].reason);
}

#[test]
fn a_generic_event_without_its_object_type_is_unreadable() {
    let missing =
        generic("propertyChange", "0-2", EXTRAS[0].1).replace(r#""objectTypeId":"0-2","#, "");
    let body = format!("[{missing}]");
    let d = read_delivery(body.as_bytes()).unwrap();
    assert!(d.events.is_empty());
    let u = &d.unhandled[0];
    assert_eq!(u.disposition, Disposition::Unreadable);
    assert_eq!(u.reason, "object.propertyChange event without objectTypeId");
    // Keyed as it came (nothing says which object), kept for a person.
    assert_eq!(
        u.dedup_key,
        "3:42:object.propertyChange:1700000000000:warp_credit_limit"
    );
    assert!(u.raw.as_deref().unwrap().contains("object.propertyChange"));
    assert_eq!(
        err(&body),
        PayloadError::Event {
            index: 0,
            reason: "object.propertyChange event without objectTypeId".into()
        }
    );
    let empty = generic("creation", "", "");
    let empty = unhandled(&[empty]);
    assert_eq!(empty[0].disposition, Disposition::Unreadable);
    assert_eq!(
        empty[0].reason,
        "object.creation event without objectTypeId"
    );

    // Of the wrong type: the field is named, the value is not echoed.
    let number = generic("propertyChange", "0-2", EXTRAS[0].1).replace(
        r#""objectTypeId":"0-2""#,
        r#""objectTypeId":{"id":"secret"}"#,
    );
    let number = unhandled(&[number]);
    let u = &number[0];
    assert_eq!(u.disposition, Disposition::Unreadable);
    assert!(u.reason.contains("objectTypeId"), "{}", u.reason);
    assert!(!u.reason.contains("secret"), "{}", u.reason);
    assert!(
        u.dedup_key.starts_with("unreadable:3:8:"),
        "{}",
        u.dedup_key
    );
}

#[test]
fn a_generic_association_change_is_ignored_as_an_association() {
    // The generic format names the association by category and id, and
    // the objects' types beside their ids; no objectId.
    let body = r#"[{"eventId":7,"subscriptionId":8,"portalId":3,"appId":4,"occurredAt":1700000000000,
        "subscriptionType":"object.associationChange","attemptNumber":0,"changeSource":"CRM_UI",
        "associationCategory":"HUBSPOT_DEFINED","associationTypeId":280,"fromObjectTypeId":"0-2",
        "fromObjectId":42,"toObjectTypeId":"0-1","toObjectId":99,"associationRemoved":true,
        "isPrimaryAssociation":false}]"#;
    let d = read_delivery(body.as_bytes()).unwrap();
    let u = &d.unhandled[0];
    assert_eq!(u.disposition, Disposition::Ignored);
    assert_eq!(
        u.reason,
        "association changes are not synced (WARP has no associations)"
    );
    assert_eq!(
        u.dedup_key,
        "3:42:company.associationChange:1700000000000:HUBSPOT_DEFINED.280/42/99/removed"
    );
    assert_eq!(u.summary.object_id, Some(42));
}
