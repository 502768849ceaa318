use proptest::prelude::*;
use serde_json::json;

use super::*;

#[test]
fn cleared_values() {
    for ty in [
        ValueType::String,
        ValueType::Decimal,
        ValueType::Date,
        ValueType::Boolean,
    ] {
        assert_eq!(ty.hubspot_to_warp(""), Ok(Value::Null));
        assert_eq!(ty.warp_to_hubspot(&Value::Null), Ok(String::new()));
    }
    assert_eq!(
        ValueType::Services.hubspot_to_warp(""),
        Ok(json!({"voice": false, "messaging": false, "data": false}))
    );
}

#[test]
fn decimals_are_exact() {
    let d = ValueType::Decimal;
    assert_eq!(d.hubspot_to_warp("7500.00"), Ok(json!("7500.00")));
    assert_eq!(d.hubspot_to_warp("7.5e3"), Ok(json!("7500")));
    assert_eq!(d.hubspot_to_warp("0.1"), Ok(json!("0.1")));
    assert_eq!(d.warp_to_hubspot(&json!("1234.56")), Ok("1234.56".into()));
    assert!(d.same_warp_value(&json!("5000"), &json!("5000.00")));
    assert!(!d.same_warp_value(&json!("5000"), &json!("5000.01")));
    for bad in ["abc", "1,000", "NaN", "inf", "0x10", "1.2.3", "--1"] {
        assert!(d.hubspot_to_warp(bad).is_err(), "{bad}");
    }
    let e = d.hubspot_to_warp("12 USD").unwrap_err().to_string();
    assert!(!e.contains("USD"), "values are not echoed: {e}");
}

#[test]
fn integers_booleans_and_enumerations() {
    assert_eq!(ValueType::Integer.hubspot_to_warp("42"), Ok(json!(42)));
    assert_eq!(ValueType::Integer.hubspot_to_warp("4.2e1"), Ok(json!(42)));
    assert!(ValueType::Integer.hubspot_to_warp("4.5").is_err());
    assert_eq!(ValueType::Boolean.hubspot_to_warp("TRUE"), Ok(json!(true)));
    assert!(ValueType::Boolean.hubspot_to_warp("yes").is_err());
    assert_eq!(
        ValueType::Enumeration.hubspot_to_warp("GOLD"),
        Ok(json!("GOLD"))
    );
    assert!(ValueType::String.warp_to_hubspot(&json!(5)).is_err());
}

#[test]
fn dates_and_datetimes() {
    let date = ValueType::Date;
    assert_eq!(date.hubspot_to_warp("2025-10-14"), Ok(json!("2025-10-14")));
    assert_eq!(
        date.hubspot_to_warp("1760400000000"),
        Ok(json!("2025-10-14"))
    );
    assert!(
        date.hubspot_to_warp("1760400000001").is_err(),
        "not midnight UTC"
    );
    assert!(date.hubspot_to_warp("14/10/2025").is_err());
    let dt = ValueType::Datetime;
    assert_eq!(
        dt.hubspot_to_warp("2025-10-14T09:00:00Z"),
        Ok(json!("2025-10-14T09:00:00Z"))
    );
    assert_eq!(
        dt.hubspot_to_warp("2025-10-14T11:00:00+02:00"),
        Ok(json!("2025-10-14T09:00:00Z"))
    );
    assert_eq!(
        dt.hubspot_to_warp("1760432400123"),
        Ok(json!("2025-10-14T09:00:00.123Z"))
    );
    assert!(dt.hubspot_to_warp("2025-10-14 09:00").is_err());
}

#[test]
fn services_multi_checkbox() {
    let s = ValueType::Services;
    assert_eq!(
        s.hubspot_to_warp("voice;data"),
        Ok(json!({"voice": true, "messaging": false, "data": true}))
    );
    assert_eq!(
        s.warp_to_hubspot(&json!({"voice": true, "messaging": false, "data": true})),
        Ok("voice;data".into())
    );
    assert_eq!(
        s.warp_to_hubspot(&json!({"data": true, "voice": true})),
        Ok("voice;data".into())
    );
    assert_eq!(
        s.warp_to_hubspot(&json!({"voice": false})),
        Ok(String::new())
    );
    assert!(s.hubspot_to_warp("voice;fax").is_err());
    assert!(s.warp_to_hubspot(&json!({"fax": true})).is_err());
    assert!(s.warp_to_hubspot(&json!({"voice": "yes"})).is_err());
}

fn decimal_text() -> impl Strategy<Value = String> {
    (any::<i64>(), 0u32..=6).prop_map(|(m, scale)| Decimal::new(m, scale).to_string())
}

proptest! {
    #[test]
    fn decimals_round_trip(text in decimal_text()) {
        let warp = ValueType::Decimal.hubspot_to_warp(&text).unwrap();
        prop_assert_eq!(&warp, &Value::String(text.clone()));
        prop_assert_eq!(ValueType::Decimal.warp_to_hubspot(&warp).unwrap(), text);
    }

    #[test]
    fn integers_round_trip(i in any::<i64>()) {
        let hs = ValueType::Integer.warp_to_hubspot(&json!(i)).unwrap();
        prop_assert_eq!(ValueType::Integer.hubspot_to_warp(&hs).unwrap(), json!(i));
    }

    #[test]
    fn booleans_round_trip(b in any::<bool>()) {
        let hs = ValueType::Boolean.warp_to_hubspot(&json!(b)).unwrap();
        prop_assert_eq!(ValueType::Boolean.hubspot_to_warp(&hs).unwrap(), json!(b));
    }

    #[test]
    fn strings_round_trip(s in "\\PC*") {
        // A string of only spaces is HubSpot's cleared value.
        prop_assume!(!s.trim().is_empty() && s.trim() == s);
        let warp = ValueType::String.hubspot_to_warp(&s).unwrap();
        prop_assert_eq!(ValueType::String.warp_to_hubspot(&warp).unwrap(), s);
    }

    #[test]
    fn dates_round_trip(days in -100_000i64..100_000) {
        let date = DateTime::from_timestamp_millis(days * MS_PER_DAY).unwrap().date_naive();
        let text = date.format("%Y-%m-%d").to_string();
        let warp = ValueType::Date.hubspot_to_warp(&text).unwrap();
        prop_assert_eq!(ValueType::Date.warp_to_hubspot(&warp).unwrap(), text.clone());
        let from_ms = ValueType::Date.hubspot_to_warp(&(days * MS_PER_DAY).to_string());
        if days >= 0 {
            prop_assert_eq!(from_ms.unwrap(), json!(text));
        }
    }

    #[test]
    fn datetimes_round_trip(ms in 0i64..4_102_444_800_000) {
        let warp = ValueType::Datetime.hubspot_to_warp(&ms.to_string()).unwrap();
        let hs = ValueType::Datetime.warp_to_hubspot(&warp).unwrap();
        let back = ValueType::Datetime.hubspot_to_warp(&hs).unwrap();
        prop_assert_eq!(&back, &warp);
        let parsed = DateTime::parse_from_rfc3339(back.as_str().unwrap()).unwrap();
        prop_assert_eq!(parsed.timestamp_millis(), ms);
    }

    #[test]
    fn services_round_trip(flags in proptest::array::uniform3(any::<bool>())) {
        let obj: serde_json::Map<String, Value> =
            SERVICES.iter().zip(flags).map(|(s, f)| (s.to_string(), Value::Bool(f))).collect();
        let obj = Value::Object(obj);
        let hs = ValueType::Services.warp_to_hubspot(&obj).unwrap();
        prop_assert!(!hs.starts_with(';'));
        prop_assert_eq!(ValueType::Services.hubspot_to_warp(&hs).unwrap(), obj);
    }

    #[test]
    fn conversion_never_panics(raw in "\\PC{0,40}") {
        for ty in [ValueType::String, ValueType::Decimal, ValueType::Integer, ValueType::Boolean,
                   ValueType::Date, ValueType::Datetime, ValueType::Enumeration, ValueType::Services] {
            let _ = ty.hubspot_to_warp(&raw);
        }
    }
}
