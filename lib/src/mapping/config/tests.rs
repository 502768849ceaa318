use super::*;

#[test]
fn the_default_mapping_is_the_documented_table() {
    let set = MappingSet::default_mapping().unwrap();
    let m = set.lookup("warp_credit_limit", "any", "any").unwrap();
    assert_eq!(m.warp.as_str(), "credit_limit");
    assert_eq!(m.direction, Direction::Bidirectional);
    assert_eq!(m.conflict, ConflictStrategy::HubspotWins);
    assert_eq!(m.value_type, ValueType::Decimal);
    assert_eq!(
        set.lookup("zip", "x", "y").unwrap().warp.as_str(),
        "address.postal_code"
    );
    assert_eq!(
        set.lookup("warp_ban", "x", "y").unwrap().direction,
        Direction::WarpToHubspot
    );
    assert_eq!(set.fields_for("x", "y").len(), 13);
    assert!(set.lookup("hs_lastmodifieddate", "x", "y").is_none());
    assert!(set.properties().contains(&"warp_services"));
}

const BASE: &str = r#"
[[field]]
warp = "credit_limit"
hubspot = "warp_credit_limit"
direction = "BIDIRECTIONAL"
conflict = "HUBSPOT_WINS"
type = "decimal"

[[field]]
warp = "tier"
hubspot = "warp_tier"
direction = "HUBSPOT_TO_WARP"
conflict = "HUBSPOT_WINS"
type = "enumeration"
"#;

#[test]
fn overrides_replace_the_global_mapping_of_their_field() {
    let text = format!(
        "{BASE}\n[[customer]]\nmatch = \"ZT-1\"\n[[customer.field]]\nwarp = \"credit_limit\"\nhubspot = \"credit_line\"\ndirection = \"NONE\"\nconflict = \"MANUAL\"\ntype = \"decimal\"\n"
    );
    let set = MappingSet::parse(&text).unwrap();
    // By BAN or by id.
    assert_eq!(
        set.lookup("credit_line", "uuid-1", "ZT-1")
            .unwrap()
            .direction,
        Direction::None
    );
    assert!(
        set.lookup("warp_credit_limit", "uuid-1", "ZT-1").is_none(),
        "shadowed by the override"
    );
    assert_eq!(
        set.lookup("warp_credit_limit", "uuid-2", "ZT-2")
            .unwrap()
            .direction,
        Direction::Bidirectional
    );
    assert_eq!(
        set.lookup("warp_tier", "uuid-1", "ZT-1")
            .unwrap()
            .warp
            .as_str(),
        "tier"
    );
    assert_eq!(set.fields_for("uuid-1", "ZT-1").len(), 2);
}

fn error(text: &str) -> MappingError {
    MappingSet::parse(text).unwrap_err()
}

#[test]
fn errors_name_the_line() {
    let unknown = BASE.replace("warp = \"tier\"", "warp = \"tiers\"");
    let e = error(&unknown);
    assert_eq!(e.line, 9, "{e}");
    assert!(
        e.to_string()
            .starts_with("mapping file line 9: unknown WARP field `tiers`"),
        "{e}"
    );

    let dup = BASE.replace("hubspot = \"warp_tier\"", "hubspot = \"warp_credit_limit\"");
    let e = error(&dup);
    assert_eq!(e.line, 9);
    assert!(e.message.contains("mapped twice"), "{e}");

    let immutable = BASE
        .replace("warp = \"tier\"", "warp = \"ban\"")
        .replace("enumeration", "string");
    let e = error(&immutable);
    assert_eq!(e.line, 9);
    assert!(e.message.contains("never changes"), "{e}");

    let created = BASE
        .replace("warp = \"tier\"", "warp = \"created_at\"")
        .replace("enumeration", "datetime");
    assert!(error(&created).message.contains("never changes"));
    // Immutable fields may still flow out to HubSpot.
    let outbound = created.replace("HUBSPOT_TO_WARP", "WARP_TO_HUBSPOT");
    assert!(MappingSet::parse(&outbound).is_ok());

    let wrong_type = BASE.replace("type = \"decimal\"", "type = \"integer\"");
    let e = error(&wrong_type);
    assert_eq!(e.line, 2);
    assert!(e.message.contains("holds decimal values"), "{e}");

    let bad_direction = BASE.replace("\"HUBSPOT_TO_WARP\"", "\"SIDEWAYS\"");
    let e = error(&bad_direction);
    assert_eq!(e.line, 12, "{e}");

    let syntax = BASE.replace(
        "conflict = \"HUBSPOT_WINS\"\ntype = \"enumeration\"",
        "conflict = HUBSPOT_WINS",
    );
    assert!(error(&syntax).line >= 9);

    let extra = BASE.replace(
        "type = \"enumeration\"",
        "type = \"enumeration\"\ncolour = \"red\"",
    );
    assert!(error(&extra).message.contains("colour"));

    let property = BASE.replace("warp_tier", "Warp Tier");
    assert!(error(&property).message.contains("internal name"));
}
