//! HubSpot's side of a night, read once: every company that carries
//! `warp_ban`, with the mapped properties, kept compact in memory and
//! spilled to the report store a search page at a time.
//!
//! Why in memory, and which part: WARP lists its customers by page number
//! in an order of its own, and HubSpot's search orders by one property, so
//! neither side can be walked in the other's order for a merge-join. The
//! smaller side is kept instead: only the companies the bridge marks
//! (prospects, partners and the rest of the portal, often several times
//! as many, are never read), each as its id and the values of the
//! properties asked for, in one slice per company with the property names
//! held once for all (about 0.3 KiB a company: some 30 MiB at 100,000; the
//! client's `Company`, a map of names to values, would take three times
//! that). A search page is also written to the report store's scratch as
//! it is read, so an invocation that takes over a run loads the index
//! again from there instead of searching HubSpot again. Each row also
//! says whether phase 1 paired the company, so phase 2 finds the others
//! without reading phase 1's pieces back.

use std::collections::HashMap;

use crate::hubspot::crm::Company;

/// One company's values, in the order of the index's names.
type Values = Box<[Option<Box<str>>]>;

#[derive(Debug)]
struct Row {
    values: Values,
    /// A customer was paired with the company this run: phase 2 leaves it.
    paired: bool,
}

/// The marked companies by id.
#[derive(Debug, Default)]
pub struct CompanyIndex {
    /// The properties kept, in the order of each row's values.
    names: Vec<String>,
    rows: HashMap<Box<str>, Row>,
}

impl CompanyIndex {
    /// An empty index keeping `properties` of each company.
    pub fn new(properties: &[&str]) -> Self {
        Self {
            names: properties.iter().map(|p| p.to_string()).collect(),
            rows: HashMap::new(),
        }
    }

    /// Keeps `company` (its properties outside the index's are dropped; an
    /// archived company is not kept: the night leaves it alone).
    pub fn insert(&mut self, company: Company) {
        if company.archived {
            return;
        }
        let mut properties = company.properties;
        let values: Values = self
            .names
            .iter()
            .map(|n| properties.remove(n).flatten().map(String::into_boxed_str))
            .collect();
        let paired = self.is_paired(&company.id);
        self.rows
            .insert(company.id.into_boxed_str(), Row { values, paired });
    }

    /// Notes that a customer was paired with company `id` (when the index
    /// has it).
    pub fn mark_paired(&mut self, id: &str) {
        if let Some(row) = self.rows.get_mut(id) {
            row.paired = true;
        }
    }

    pub fn is_paired(&self, id: &str) -> bool {
        self.rows.get(id).is_some_and(|r| r.paired)
    }

    /// The company as the client would have read it with these properties.
    pub fn get(&self, id: &str) -> Option<Company> {
        let values = &self.rows.get(id)?.values;
        Some(Company {
            id: id.to_string(),
            properties: self
                .names
                .iter()
                .zip(values.iter())
                .map(|(n, v)| (n.clone(), v.as_deref().map(str::to_string)))
                .collect(),
            archived: false,
            updated_at: None,
        })
    }

    pub fn contains(&self, id: &str) -> bool {
        self.rows.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every id no customer was paired with, in HubSpot's order (numeric;
    /// ids that are not numbers after them, by text), so every invocation
    /// walks them alike.
    pub fn unpaired_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .rows
            .iter()
            .filter(|(_, r)| !r.paired)
            .map(|(k, _)| &**k)
            .collect();
        ids.sort_unstable_by_key(|id| (id.parse::<u64>().map_err(|_| *id), *id));
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company(id: &str, pairs: &[(&str, Option<&str>)]) -> Company {
        Company {
            id: id.into(),
            properties: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
            archived: false,
            updated_at: Some("2026-12-01T00:00:00Z".into()),
        }
    }

    #[test]
    fn a_company_comes_back_with_the_kept_properties_only() {
        let mut index = CompanyIndex::new(&["warp_ban", "warp_tier"]);
        index.insert(company(
            "12",
            &[
                ("warp_ban", Some("ZT-1")),
                ("warp_tier", None),
                ("name", Some("Acme")),
            ],
        ));
        let got = index.get("12").unwrap();
        assert_eq!(got.property("warp_ban"), Some("ZT-1"));
        assert_eq!(got.property("warp_tier"), None);
        assert!(got.properties.contains_key("warp_tier"), "asked, empty");
        assert!(!got.properties.contains_key("name"), "not kept");
        assert!(index.get("13").is_none());
        let mut archived = company("14", &[("warp_ban", Some("ZT-2"))]);
        archived.archived = true;
        index.insert(archived);
        assert!(!index.contains("14"));
    }

    #[test]
    fn unpaired_ids_come_in_hubspots_numeric_order() {
        let mut index = CompanyIndex::new(&["warp_ban"]);
        for id in ["100", "9", "18476215994", "20"] {
            index.insert(company(id, &[("warp_ban", Some("x"))]));
        }
        assert_eq!(index.unpaired_ids(), ["9", "20", "100", "18476215994"]);
        assert_eq!(index.len(), 4);
        index.mark_paired("20");
        index.mark_paired("21");
        assert_eq!(index.unpaired_ids(), ["9", "100", "18476215994"]);
        assert!(index.is_paired("20") && !index.is_paired("21"));
        // Read again (a later search page), it stays paired.
        index.insert(company("20", &[("warp_ban", Some("y"))]));
        assert!(index.is_paired("20"));
    }
}
