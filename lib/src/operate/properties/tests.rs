use serde_json::json;

use super::*;

fn mapping() -> MappingSet {
    MappingSet::default_mapping().expect("the shipped mapping parses")
}

fn held() -> BTreeMap<String, BTreeSet<String>> {
    held_values(
        &mapping(),
        &[
            json!({"tier": "GOLD", "payment_terms": "NET30"}),
            json!({"tier": "SILVER", "payment_terms": null}),
            json!({"tier": "GOLD", "payment_terms": ""}),
        ],
    )
}

/// HubSpot's own company properties the default mapping uses.
fn standard() -> Vec<PropertyDef> {
    ["name", "city", "state", "zip", "country"]
        .into_iter()
        .map(|n| PropertyDef {
            name: n.into(),
            label: n.into(),
            value_type: "string".into(),
            field_type: "text".into(),
            group_name: "companyinformation".into(),
            description: String::new(),
            options: vec![],
            hubspot_defined: true,
        })
        .collect()
}

fn created(findings: &[Finding]) -> Vec<PropertyDef> {
    findings
        .iter()
        .filter_map(|f| match f {
            Finding::Missing { create } => Some(create.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_empty_portal_gets_every_custom_property_with_the_type_its_values_need() {
    let findings = survey(&mapping(), &standard(), &held());
    let defs = created(&findings);
    let kinds: Vec<(&str, &str, &str)> = defs
        .iter()
        .map(|d| {
            (
                d.name.as_str(),
                d.value_type.as_str(),
                d.field_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("warp_ban", "string", "text"),
            ("warp_contact_email", "string", "text"),
            ("warp_credit_limit", "number", "number"),
            ("warp_current_balance", "number", "number"),
            ("warp_payment_terms", "enumeration", "select"),
            ("warp_services", "enumeration", "checkbox"),
            ("warp_status", "enumeration", "select"),
            ("warp_tier", "enumeration", "select"),
        ]
    );
    let options = |name: &str| -> Vec<String> {
        defs.iter()
            .find(|d| d.name == name)
            .map(|d| d.options.iter().map(|o| o.value.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        options("warp_status"),
        ["ACTIVE", "SUSPENDED", "PENDING", "CLOSED"]
    );
    assert_eq!(options("warp_services"), ["voice", "messaging", "data"]);
    assert_eq!(
        options("warp_tier"),
        ["GOLD", "SILVER"],
        "the values WARP holds"
    );
    assert_eq!(
        options("warp_payment_terms"),
        ["NET30"],
        "empty and null are no option"
    );
    assert!(defs.iter().all(|d| d.group_name == GROUP));
    let status = defs.iter().find(|d| d.name == "warp_status").unwrap();
    assert!(
        status.description.contains("WARP overwrites"),
        "{}",
        status.description
    );
    let tier = defs.iter().find(|d| d.name == "warp_tier").unwrap();
    assert!(
        !tier.description.contains("overwrites"),
        "HubSpot owns tier"
    );
    assert_eq!(defs[0].label, "WARP BAN");
    assert_eq!(
        group_needed(&findings, &[]).map(|g| (g.name, g.label)),
        Some(("warp".to_string(), "WARP".to_string()))
    );
    let standard_ready: Vec<&str> = findings
        .iter()
        .filter(|f| f.is_ready())
        .map(Finding::property)
        .collect();
    assert_eq!(standard_ready, ["city", "country", "name", "state", "zip"]);
}

#[test]
fn a_portal_that_has_everything_needs_nothing_not_even_the_group() {
    let mut portal = standard();
    portal.extend(created(&survey(&mapping(), &standard(), &held())));
    let findings = survey(&mapping(), &portal, &held());
    assert!(findings.iter().all(Finding::is_ready), "{findings:?}");
    assert_eq!(group_needed(&findings, &[]), None);
}

#[test]
fn a_wrong_type_or_a_missing_option_is_reported_never_planned_as_a_change() {
    let mut portal = standard();
    portal.extend(created(&survey(&mapping(), &standard(), &held())));
    for p in &mut portal {
        match p.name.as_str() {
            // A person made it a text field before the bridge came.
            "warp_credit_limit" => {
                p.value_type = "string".into();
                p.field_type = "text".into();
            }
            // A single select cannot hold `voice;data`.
            "warp_services" => p.field_type = "select".into(),
            "warp_status" => p.options.retain(|o| o.value != "CLOSED"),
            // A textarea holds a string as well as a text field.
            "warp_contact_email" => p.field_type = "textarea".into(),
            _ => {}
        }
    }
    let mut more = held();
    more.entry("tier".into())
        .or_default()
        .insert("PLATINUM".into());
    let findings = survey(&mapping(), &portal, &more);
    let not_ready: Vec<String> = findings
        .iter()
        .filter(|f| !f.is_ready())
        .map(Finding::describe)
        .collect();
    assert_eq!(not_ready.len(), 4, "{not_ready:#?}");
    assert!(
        not_ready[0]
            .starts_with("warp_credit_limit: is string/text where the mapping needs number/number")
    );
    assert!(not_ready[1].starts_with("warp_services: is enumeration/select"));
    assert!(not_ready[2].starts_with("warp_status: lacks the option(s) CLOSED"));
    assert!(not_ready[3].starts_with("warp_tier: lacks the option(s) PLATINUM"));
    assert!(created(&findings).is_empty());
}

#[test]
fn an_open_enumeration_no_customer_holds_yet_is_reported_not_created_without_options() {
    let findings = survey(&mapping(), &standard(), &BTreeMap::new());
    let not_created: Vec<String> = findings
        .iter()
        .filter(|f| matches!(f, Finding::NoKnownOptions { .. }))
        .map(Finding::describe)
        .collect();
    assert_eq!(not_created.len(), 2, "{not_created:#?}");
    assert!(
        not_created[0].starts_with(
            "warp_payment_terms: missing, and no WARP customer holds a `payment_terms`"
        )
    );
    assert!(not_created[1].starts_with("warp_tier: missing"));
    // status and services have the contract's values: created as usual.
    let created: Vec<String> = created(&findings).into_iter().map(|d| d.name).collect();
    assert!(
        created.contains(&"warp_status".to_string())
            && created.contains(&"warp_services".to_string())
    );
}
