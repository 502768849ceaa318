//! What people do while a history runs: edits in HubSpot (each owing a
//! webhook) and in WARP (sending nothing), company deletions and merges.

use hubwarp::time::now_ms;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};

use super::{PORTAL, SUBSCRIPTION, World, company_id};
use crate::model::backend::Backend;
use crate::model::fields;
use crate::model::reference::{Change, Ev};

impl<B: Backend> World<B> {
    fn live_company(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.model.custs.len())
            .filter(|&c| self.model.custs[c].company_exists)
            .collect();
        live.choose(&mut self.rng).copied()
    }

    /// A person edits a company in HubSpot; HubSpot owes a webhook.
    pub(super) fn hubspot_edit(&mut self) {
        let Some(c) = self.live_company() else {
            return;
        };
        let editable: Vec<usize> = (0..self.model.fields.len())
            .filter(|&i| self.model.fields[i].editable)
            .collect();
        let Some(&i) = editable.choose(&mut self.rng) else {
            return;
        };
        let f = self.model.fields[i];
        let current = self.model.custs[c].hub[i].clone();
        let w = match f.reform(&current, &mut self.rng) {
            Some(same) if self.rng.random_bool(0.2) => same,
            _ => f.random(&mut self.rng),
        };
        let company = self.model.custs[c].company.clone();
        let mut props = Map::new();
        props.insert(
            f.hubspot.into(),
            if w.hubspot.is_empty() {
                Value::Null
            } else {
                json!(w.hubspot)
            },
        );
        self.hub.upsert_company(&company, props);
        let at = now_ms();
        let cust = &mut self.model.custs[c];
        cust.hub[i] = w.canon.clone();
        cust.hub_at = at;
        let json = json!({"eventId": self.rng.random_range(1..200u64), "subscriptionId": SUBSCRIPTION,
            "portalId": PORTAL, "appId": 1160452, "occurredAt": at,
            "subscriptionType": "company.propertyChange", "attemptNumber": 0,
            "objectId": company.parse::<u64>().unwrap_or_default(), "changeSource": "CRM_UI",
            "propertyName": f.hubspot, "propertyValue": w.hubspot});
        self.owe(
            Ev {
                company,
                at,
                change: Change::Property {
                    field: i,
                    canon: w.canon,
                },
            },
            json,
        );
    }

    /// A person edits a customer in WARP: no webhook, the nightly run sees it.
    pub(super) fn warp_edit(&mut self) {
        let c = self.rng.random_range(0..self.model.custs.len());
        let editable: Vec<usize> = (0..self.model.fields.len())
            .filter(|&i| self.model.fields[i].editable)
            .collect();
        let Some(&i) = editable.choose(&mut self.rng) else {
            return;
        };
        let f = self.model.fields[i];
        let w = f.random(&mut self.rng);
        let id = self.model.custs[c].id.clone();
        if self
            .warp
            .edit(&id, fields::warp_patch(f.warp, w.warp))
            .is_none()
        {
            self.fail(format!("WARP customer {id} vanished"));
        }
        let cust = &mut self.model.custs[c];
        cust.warp[i] = w.canon;
        cust.warp_at = now_ms();
        self.figures.warp_edits += 1;
    }

    pub(super) fn delete_company(&mut self) {
        let deleted = self
            .model
            .custs
            .iter()
            .filter(|c| !c.company_exists)
            .count();
        if deleted * 8 >= self.model.custs.len() {
            return;
        }
        let Some(c) = self.live_company() else {
            return;
        };
        let company = self.model.custs[c].company.clone();
        self.hub.delete_company(&company);
        self.model.custs[c].company_exists = false;
        let at = now_ms();
        let json = json!({"eventId": self.rng.random_range(1..200u64), "subscriptionId": SUBSCRIPTION + 1,
            "portalId": PORTAL, "appId": 1160452, "occurredAt": at,
            "subscriptionType": "company.deletion", "attemptNumber": 0,
            "objectId": company.parse::<u64>().unwrap_or_default(), "changeSource": "CRM_UI"});
        self.owe(
            Ev {
                company,
                at,
                change: Change::Deletion,
            },
            json,
        );
    }

    /// A person makes a duplicate of a customer's company (a name and a
    /// few values, no BAN) and merges the two, the duplicate surviving or
    /// absorbed. HubSpot owes a deletion of the merged-away company and a
    /// merge; the survivor's values (its own, the other's where it had
    /// none) change without a property webhook, as HubSpot's merge does.
    pub(super) fn merge_company(&mut self) {
        if self.merges * 4 >= self.model.custs.len() {
            return;
        }
        let Some(c) = self.live_company() else {
            return;
        };
        self.merges += 1;
        let company = self.model.custs[c].company.clone();
        let duplicate = company_id(1_000 + self.merges);
        let mut props = Map::new();
        for f in &self.model.fields {
            if f.warp != "ban" && self.rng.random_bool(0.4) {
                let w = f.random(&mut self.rng);
                if !w.hubspot.is_empty() {
                    props.insert(f.hubspot.into(), json!(w.hubspot));
                }
            }
        }
        self.hub.upsert_company(&duplicate, props);
        let (survivor, merged) = if self.rng.random_bool(0.6) {
            (duplicate.clone(), company)
        } else {
            (company, duplicate.clone())
        };
        if !self.hub.merge_companies(&survivor, &merged) {
            self.fail(format!("HubSpot would not merge {merged} into {survivor}"));
            return;
        }
        // What the survivor holds now, as HubSpot's merge left it.
        let Some(props) = self.hub.company(&survivor) else {
            self.fail(format!("the survivor {survivor} of a merge is gone"));
            return;
        };
        let modified = props
            .get("hs_lastmodifieddate")
            .and_then(Value::as_str)
            .and_then(hubwarp::reconcile::plan::hubspot_time);
        let cust = &mut self.model.custs[c];
        for (i, f) in self.model.fields.iter().enumerate() {
            cust.hub[i] = f.canon_hubspot(props.get(f.hubspot).and_then(Value::as_str));
        }
        cust.hub_at = modified.unwrap_or_else(now_ms);
        cust.company = survivor.clone();
        self.model.by_company.insert(duplicate, c);
        let at = now_ms();
        let id = |c: &str| c.parse::<u64>().unwrap_or_default();
        let deletion = json!({"eventId": self.rng.random_range(1..200u64), "subscriptionId": SUBSCRIPTION + 1,
            "portalId": PORTAL, "appId": 1160452, "occurredAt": at,
            "subscriptionType": "company.deletion", "attemptNumber": 0,
            "objectId": id(&merged), "changeSource": "CRM_UI"});
        self.owe(
            Ev {
                company: merged.clone(),
                at,
                change: Change::Deletion,
            },
            deletion,
        );
        let merge = json!({"eventId": self.rng.random_range(1..200u64), "subscriptionId": SUBSCRIPTION + 2,
            "portalId": PORTAL, "appId": 1160452, "occurredAt": at,
            "subscriptionType": "company.merge", "attemptNumber": 0,
            "objectId": id(&survivor), "changeSource": "CRM_UI",
            "primaryObjectId": id(&survivor), "mergedObjectIds": [id(&merged)],
            "numberOfPropertiesMoved": props.len()});
        self.owe(
            Ev {
                company: survivor,
                at,
                change: Change::Merge { merged },
            },
            merge,
        );
    }
}
