use super::*;

fn customer(id: &str, ban: &str, name: &str, email: &str, company: Option<&str>) -> WarpSide {
    WarpSide {
        id: id.into(),
        ban: ban.into(),
        name: Some(name.into()),
        domain: email
            .rsplit_once('@')
            .and_then(|(_, d)| domain(d))
            .filter(|d| !FREE_MAIL.contains(&d.as_str())),
        hubspot_company_id: company.map(str::to_string),
    }
}

fn company(id: &str, ban: Option<&str>, name: &str, web: &str) -> HubspotSide {
    HubspotSide {
        id: id.into(),
        warp_ban: ban.map(str::to_string),
        name: Some(name.into()),
        domain: domain(web),
    }
}

#[test]
fn names_and_domains_compare_as_a_person_reads_them() {
    assert_eq!(normalised_name("ACME Corp.").as_deref(), Some("acme"));
    assert_eq!(normalised_name("Acme, Inc").as_deref(), Some("acme"));
    assert_eq!(
        normalised_name("Acme Rockets Ltd").as_deref(),
        Some("acme rockets")
    );
    assert_eq!(
        normalised_name("Co").as_deref(),
        Some("co"),
        "a name that is only a form stays"
    );
    assert_eq!(normalised_name(" - ").as_deref(), None);
    assert_eq!(
        domain("https://www.Acme.example:8443/about?x").as_deref(),
        Some("acme.example")
    );
    assert_eq!(domain("acme.example").as_deref(), Some("acme.example"));
    assert_eq!(domain("localhost").as_deref(), None);
}

#[test]
fn exact_matches_link_name_and_domain_only_suggest_and_contradictions_stay_alone() {
    let customers = [
        // warp_ban set by a person in HubSpot: exact.
        customer("c1", "B1", "One", "a@one.example", None),
        // external id set in WARP, company lacks warp_ban: exact.
        customer("c2", "B2", "Two", "a@two.example", Some("h2")),
        // linked on every side.
        customer("c3", "B3", "Three", "a@three.example", Some("h3")),
        // two companies carry B4.
        customer("c4", "B4", "Four", "a@four.example", None),
        // nothing but a name and a mail domain.
        customer("c5", "B5", "Acme, Inc.", "ada@acme.example", None),
        // a free-mail contact gives no domain evidence.
        customer("c6", "B6", "Nobody Alike", "x@gmail.com", None),
        // external id and warp_ban disagree.
        customer("c7", "B7", "Seven", "a@seven.example", Some("h7a")),
    ];
    let companies = [
        company("h1", Some("B1"), "One", "one.example"),
        company("h2", None, "Two", "two.example"),
        company("h3", Some("B3"), "Three", "three.example"),
        company("h4a", Some("B4"), "Four", ""),
        company("h4b", Some("B4"), "Four again", ""),
        company("h5a", None, "ACME Corp", ""),
        company("h5b", None, "Rockets", "https://www.acme.example/"),
        company("h6", None, "Gmail Fan Club", "gmail.com"),
        company("h7a", None, "Seven", ""),
        company("h7b", Some("B7"), "Seven too", ""),
    ];
    let linked: HashMap<String, String> = [("c3".to_string(), "h3".to_string())].into();
    let pairings = pair_up(&customers, &companies, &linked);
    let find = |customer: &str| -> Vec<&Pairing> {
        pairings
            .iter()
            .filter(|p| match p {
                Pairing::Link { customer_id, .. }
                | Pairing::Linked { customer_id, .. }
                | Pairing::Suggestion { customer_id, .. }
                | Pairing::Conflict { customer_id, .. } => customer_id == customer,
            })
            .collect()
    };
    assert!(matches!(
        find("c1")[..],
        [Pairing::Link {
            set_external_id: true,
            set_warp_ban: false,
            record_link: true,
            ..
        }]
    ));
    assert!(matches!(
        find("c2")[..],
        [Pairing::Link {
            set_external_id: false,
            set_warp_ban: true,
            ..
        }]
    ));
    assert!(matches!(find("c3")[..], [Pairing::Linked { .. }]));
    assert!(
        matches!(&find("c4")[..], [Pairing::Conflict { company_ids, .. }] if company_ids.len() == 2)
    );
    let c5 = find("c5");
    assert_eq!(c5.len(), 2, "{c5:#?}");
    assert!(
        matches!(c5[0], Pairing::Suggestion { company_id, evidence, .. }
        if company_id == "h5a" && evidence.contains("name"))
    );
    assert!(
        matches!(c5[1], Pairing::Suggestion { company_id, evidence, .. }
        if company_id == "h5b" && evidence.contains("domain acme.example"))
    );
    assert!(find("c6").is_empty(), "{:#?}", find("c6"));
    assert!(matches!(find("c7")[..], [Pairing::Conflict { .. }]));
    assert_eq!(
        pairings
            .iter()
            .filter(|p| matches!(p, Pairing::Link { .. }))
            .count(),
        2,
        "only the two exact matches are links"
    );
}

#[test]
fn a_company_named_by_two_customers_or_holding_another_ban_is_left_alone() {
    let customers = [
        customer("c1", "B1", "One", "", Some("h1")),
        customer("c2", "B2", "Two", "", Some("h1")),
        customer("c3", "B3", "Three", "", Some("h3")),
    ];
    let companies = [
        company("h1", None, "One", ""),
        company("h3", Some("B9"), "Three", ""),
    ];
    let pairings = pair_up(&customers, &companies, &HashMap::new());
    assert_eq!(pairings.len(), 3);
    assert!(
        pairings
            .iter()
            .all(|p| matches!(p, Pairing::Conflict { .. })),
        "{pairings:#?}"
    );
}
