//! The reference model: per customer field, WARP's value, HubSpot's value
//! and the baseline (the value both last agreed on, and the HubSpot time of
//! the change applied last), and what the rules of docs/design.md ("How a
//! change is applied", "The nightly run") say must happen to them. Written
//! from those rules, never by calling the library's decision:
//!
//! - values compare in canonical form (`"5000"` = `"5000.00"`, services as
//!   a set, `""` = absent); equal values write nothing;
//! - a HubSpot change as old as the last one applied to the field is stale;
//! - a side changed when it moved away from the baseline (a webhook is
//!   itself a HubSpot change); only one changed: it flows if the direction
//!   lets it, else the owner's value stands (and is written back);
//! - both changed, or no baseline says which: a one-way field goes by its
//!   owner; a bidirectional one by its strategy (LATEST_WINS: HubSpot's
//!   time against WARP's `updated_at`, WARP keeps a tie; MANUAL: neither
//!   side is written, a review record is);
//! - the consumer writes only WARP, a batch's changes per customer oldest
//!   first; the nightly run writes whichever side the decision says, with
//!   the company's `hs_lastmodifieddate` as HubSpot's time;
//! - links ("How a change is applied", after its steps): a change is
//!   applied through its company's link, made on its first change when
//!   WARP names the company; a deleted or merged-away company's changes
//!   are skipped; a merge moves the link to the survivor and points WARP
//!   there; the nightly run pairs each customer with the company WARP
//!   names, when it exists and its link is not deleted or merged away.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::fields::{Dir, Field, Strategy};

#[derive(Debug, Clone, PartialEq)]
pub struct Base {
    pub value: String,
    pub hub_at: Option<i64>,
}

/// A row of the links table (a company with none has no row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkModel {
    Active,
    Deleted,
    Merged,
}

#[derive(Debug, Clone)]
pub struct Cust {
    pub id: String,
    pub ban: String,
    /// The HubSpot company that holds the customer's values (a merge's
    /// survivor after a merge).
    pub company: String,
    /// The company WARP's `external_ids.hubspot_company_id` names.
    pub external: String,
    /// Canonical values, one per field of the history's mapping.
    pub warp: Vec<String>,
    /// WARP's `updated_at`: the last write of any field.
    pub warp_at: i64,
    pub hub: Vec<String>,
    /// The company's `hs_lastmodifieddate`.
    pub hub_at: i64,
    pub base: Vec<Option<Base>>,
    /// `company` exists (it was not deleted).
    pub company_exists: bool,
}

/// A HubSpot change as the model knows it.
#[derive(Debug, Clone)]
pub enum Change {
    Property {
        field: usize,
        canon: String,
    },
    Deletion,
    /// The event's company survived a merge, absorbing `merged`.
    Merge {
        merged: String,
    },
}

#[derive(Debug, Clone)]
pub struct Ev {
    pub company: String,
    pub at: i64,
    pub change: Change,
}

/// A write the consumer makes for a lifecycle event, in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// The links table's row of a company: (company, customer, state).
    Link(String, usize, LinkModel),
    /// WARP's `external_ids.hubspot_company_id` of a customer.
    External(usize, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hub<'a> {
    Event { value: &'a str, at: i64 },
    Current { value: &'a str, modified: i64 },
}

impl Hub<'_> {
    fn value(&self) -> &str {
        match self {
            Self::Event { value, .. } | Self::Current { value, .. } => value,
        }
    }

    fn at(&self) -> i64 {
        match self {
            Self::Event { at, .. } => *at,
            Self::Current { modified, .. } => *modified,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    InSync,
    ToWarp,
    ToHub,
    Keep,
    Manual,
}

fn decide(f: &Field, base: Option<&Base>, warp: &str, warp_at: i64, hub: Hub<'_>) -> Out {
    if let Hub::Event { at, .. } = hub
        && base.and_then(|b| b.hub_at).is_some_and(|last| at <= last)
    {
        return Out::Keep;
    }
    let hv = hub.value();
    if warp == hv {
        return Out::InSync;
    }
    // A property HubSpot has never held a value in decided nothing: WARP's
    // value stands, seeding HubSpot where it flows there.
    if base.is_none() && matches!(hub, Hub::Current { .. }) && hv.is_empty() {
        return if matches!(f.dir, Dir::WarpToHubspot | Dir::Both) {
            Out::ToHub
        } else {
            Out::Keep
        };
    }
    let warp_moved = base.map(|b| b.value != warp);
    let hub_moved = match hub {
        Hub::Event { .. } => Some(true),
        Hub::Current { .. } => base.map(|b| b.value != hv),
    };
    let into_warp = matches!(f.dir, Dir::HubspotToWarp | Dir::Both);
    let into_hub = matches!(f.dir, Dir::WarpToHubspot | Dir::Both);
    let owner = || if into_warp { Out::ToWarp } else { Out::ToHub };
    // Only HubSpot moved. A webhook proves HubSpot changed and, with no
    // baseline, nothing says WARP did: it flows (the consumer's rule,
    // "How a change is applied"; the nightly read, with no baseline, has
    // neither side known to have moved and goes by the strategy below).
    if hub_moved == Some(true) && warp_moved != Some(true) {
        return if into_warp { Out::ToWarp } else { owner() };
    }
    if warp_moved == Some(true) && hub_moved != Some(true) {
        return if into_hub { Out::ToHub } else { owner() };
    }
    if warp_moved.is_none() && f.dir != Dir::Both {
        return owner();
    }
    let hub_wins = match f.strategy {
        Strategy::HubspotWins => true,
        Strategy::WarpWins => false,
        Strategy::Latest => hub.at() > warp_at,
        Strategy::Manual => return Out::Manual,
    };
    match (hub_wins, into_warp, into_hub) {
        (true, true, _) => Out::ToWarp,
        (false, _, true) => Out::ToHub,
        _ => Out::Keep,
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    pub fields: Vec<Field>,
    pub custs: Vec<Cust>,
    /// Every company a customer's values were ever in.
    pub by_company: HashMap<String, usize>,
    pub by_id: HashMap<String, usize>,
    /// The links table: company → (customer, state).
    pub links: HashMap<String, (usize, LinkModel)>,
    /// (customer index, field index) with a MANUAL review record.
    pub manual: BTreeSet<(usize, usize)>,
    /// Events the consumer has settled (a redelivery is a no-op).
    pub settled: HashSet<String>,
}

impl Model {
    pub fn new(fields: Vec<Field>, custs: Vec<Cust>) -> Self {
        let by_company = custs
            .iter()
            .enumerate()
            .map(|(i, c)| (c.company.clone(), i))
            .collect();
        let by_id = custs
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        Self {
            fields,
            custs,
            by_company,
            by_id,
            links: HashMap::new(),
            manual: BTreeSet::new(),
            settled: HashSet::new(),
        }
    }

    pub fn field_index(&self, path: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.warp == path)
    }

    /// The customer whose values `company` holds, when it exists in HubSpot
    /// (a read of its `warp_ban` finds that customer's BAN).
    fn holder(&self, company: &str) -> Option<usize> {
        let &c = self.by_company.get(company)?;
        (self.custs[c].company == company && self.custs[c].company_exists).then_some(c)
    }

    /// The customer a change of `company` is applied to, linking it on
    /// its first change: its link's, or, with none, the one whose BAN the
    /// company carries if WARP names this company.
    fn linked(&mut self, company: &str) -> Option<usize> {
        match self.links.get(company) {
            Some(&(c, LinkModel::Active)) => Some(c),
            Some(_) => None,
            None => {
                let c = self.holder(company)?;
                (self.custs[c].external == company).then(|| {
                    self.links
                        .insert(company.to_string(), (c, LinkModel::Active));
                    c
                })
            }
        }
    }

    /// The writes the consumer makes for lifecycle event `e`, in order,
    /// as the state stands (nothing for a property change). A deletion
    /// marks the company's link deleted (never the customer), unless a
    /// merge moved it. A merge marks `merged`'s link (if any) merged away
    /// and links the survivor to its customer (the survivor's own active
    /// link's, else the merged one's, else the customer whose BAN the
    /// survivor carries when WARP names one of the two), then points WARP
    /// at the survivor when it names another company.
    pub fn lifecycle_writes(&self, e: &Ev) -> Vec<Write> {
        match &e.change {
            Change::Property { .. } => Vec::new(),
            Change::Deletion => match self.links.get(&e.company) {
                Some(&(c, state)) if state != LinkModel::Merged => {
                    vec![Write::Link(e.company.clone(), c, LinkModel::Deleted)]
                }
                _ => Vec::new(),
            },
            Change::Merge { merged } => {
                let survivor = &e.company;
                let mut writes = Vec::new();
                let mut moved = None;
                if let Some(&(c, _)) = self.links.get(merged) {
                    writes.push(Write::Link(merged.clone(), c, LinkModel::Merged));
                    moved = Some(c);
                }
                let target = match self.links.get(survivor) {
                    Some(&(c, LinkModel::Active)) => Some(c),
                    _ => moved.or_else(|| {
                        let c = self.holder(survivor)?;
                        let names = &self.custs[c].external;
                        (names == survivor || names == merged).then_some(c)
                    }),
                };
                if let Some(t) = target {
                    writes.push(Write::Link(survivor.clone(), t, LinkModel::Active));
                    if &self.custs[t].external != survivor {
                        writes.push(Write::External(t, survivor.clone()));
                    }
                }
                writes
            }
        }
    }

    /// Applies a write (a WARP write moves WARP's `updated_at`).
    pub fn apply(&mut self, write: &Write, now: i64) {
        match write {
            Write::Link(company, c, state) => {
                self.links.insert(company.clone(), (*c, *state));
            }
            Write::External(c, company) => {
                self.custs[*c].external = company.clone();
                self.custs[*c].warp_at = now;
            }
        }
    }

    /// The property changes of one consumer invocation's acknowledged
    /// messages `(dedup key, event)`, at `now`, after its lifecycle events
    /// (see `lifecycle_writes`). Returns the customers whose changes it
    /// decided.
    pub fn consumer_batch(&mut self, acked: &[(String, Ev)], now: i64) -> HashSet<usize> {
        let mut fresh: Vec<&(String, Ev)> = acked
            .iter()
            .filter(|(k, _)| !self.settled.contains(k))
            .collect();
        fresh.sort_by_key(|(_, e)| e.at);
        let mut decided = HashSet::new();
        // Property changes, per company's customer, oldest first.
        let mut groups: HashMap<usize, Vec<&Ev>> = HashMap::new();
        for (_, e) in &fresh {
            if let Change::Property { .. } = &e.change
                && let Some(c) = self.linked(&e.company)
            {
                groups.entry(c).or_default().push(e);
            }
        }
        for (c, events) in groups {
            let cust = &mut self.custs[c];
            decided.insert(c);
            let mut pending = cust.warp.clone();
            let mut wrote = false;
            for e in events {
                let Change::Property { field, canon } = &e.change else {
                    continue;
                };
                let f = &self.fields[*field];
                let out = decide(
                    f,
                    cust.base[*field].as_ref(),
                    &pending[*field],
                    cust.warp_at,
                    Hub::Event {
                        value: canon,
                        at: e.at,
                    },
                );
                match out {
                    Out::ToWarp | Out::InSync => {
                        wrote |= out == Out::ToWarp;
                        pending[*field] = canon.clone();
                        cust.base[*field] = Some(Base {
                            value: canon.clone(),
                            hub_at: Some(e.at),
                        });
                    }
                    Out::Manual => {
                        self.manual.insert((c, *field));
                    }
                    Out::ToHub | Out::Keep => {}
                }
            }
            if wrote {
                cust.warp = pending;
                cust.warp_at = now;
            }
        }
        self.settled.extend(acked.iter().map(|(k, _)| k.clone()));
        decided
    }

    /// The nightly run at `now`: every linked pair whose company exists,
    /// every field decided on both sides' current values. Returns the
    /// agreements it found, `(customer, field, time)`: each baseline must
    /// be dated at least that late, or an older webhook of the field could
    /// still take back what both sides hold.
    pub fn nightly(&mut self, now: i64) -> Vec<(usize, usize, i64)> {
        let mut agreed = Vec::new();
        for (c, cust) in self.custs.iter_mut().enumerate() {
            // Paired with the company WARP names: unmatched when it is
            // gone (deleted, merged away) or its link is not active.
            let linked = self.links.get(&cust.external).copied();
            let paired = cust.company == cust.external
                && cust.company_exists
                && linked.is_none_or(|l| l == (c, LinkModel::Active));
            if !paired {
                continue;
            }
            self.links
                .insert(cust.external.clone(), (c, LinkModel::Active));
            let (mut to_warp, mut to_hub) = (false, false);
            let modified = cust.hub_at;
            for (i, f) in self.fields.iter().enumerate() {
                let out = decide(
                    f,
                    cust.base[i].as_ref(),
                    &cust.warp[i],
                    cust.warp_at,
                    Hub::Current {
                        value: &cust.hub[i],
                        modified,
                    },
                );
                match out {
                    Out::InSync => {
                        // An agreement is remembered, as of the company's
                        // last change: a new one, the first, or one the
                        // company changed after (the field may have moved
                        // and come back): no webhook of the field older
                        // than what both sides hold now may win
                        // (docs/design.md, "The nightly run": "a field
                        // found equal on both sides").
                        let prev = cust.base[i].as_ref().and_then(|b| b.hub_at);
                        agreed.push((c, i, prev.unwrap_or(modified).max(modified)));
                        if cust.base[i]
                            .as_ref()
                            .is_none_or(|b| b.value != cust.warp[i])
                            || prev.is_none_or(|p| p < modified)
                        {
                            cust.base[i] = Some(Base {
                                value: cust.warp[i].clone(),
                                hub_at: prev.max(Some(modified)),
                            });
                        }
                    }
                    Out::ToWarp => {
                        to_warp = true;
                        cust.warp[i] = cust.hub[i].clone();
                        let prev = cust.base[i].as_ref().and_then(|b| b.hub_at);
                        cust.base[i] = Some(Base {
                            value: cust.hub[i].clone(),
                            hub_at: prev.max(Some(modified)),
                        });
                    }
                    Out::ToHub => {
                        to_hub = true;
                        cust.hub[i] = cust.warp[i].clone();
                        cust.base[i] = Some(Base {
                            value: cust.warp[i].clone(),
                            hub_at: Some(now),
                        });
                    }
                    Out::Manual => {
                        self.manual.insert((c, i));
                    }
                    Out::Keep => {}
                }
            }
            if to_warp {
                cust.warp_at = now;
            }
            if to_hub {
                cust.hub_at = now;
            }
        }
        agreed
    }
}

#[cfg(test)]
mod tests {
    use super::super::fields::FIELDS;
    use super::*;

    fn field(name: &str) -> Field {
        FIELDS.iter().copied().find(|f| f.warp == name).unwrap()
    }

    #[test]
    fn the_rules_as_the_readme_states_them() {
        let base = Base {
            value: "a".into(),
            hub_at: Some(10),
        };
        let city = field("address.city");
        let ev = |v, at| Hub::Event { value: v, at };
        // Only HubSpot moved: it flows; an older event is stale.
        assert_eq!(decide(&city, Some(&base), "a", 5, ev("b", 20)), Out::ToWarp);
        assert_eq!(decide(&city, Some(&base), "a", 5, ev("b", 10)), Out::Keep);
        // Both moved, LATEST_WINS: WARP keeps a tie.
        assert_eq!(decide(&city, Some(&base), "c", 20, ev("b", 20)), Out::ToHub);
        assert_eq!(
            decide(&city, Some(&base), "c", 19, ev("b", 20)),
            Out::ToWarp
        );
        // A WARP-owned field edited in HubSpot: the owner's value stands.
        let status = field("status");
        let cur = |v| Hub::Current {
            value: v,
            modified: 30,
        };
        assert_eq!(decide(&status, Some(&base), "a", 5, cur("b")), Out::ToHub);
        assert_eq!(decide(&status, None, "a", 5, cur("b")), Out::ToHub);
        let tier = field("tier");
        assert_eq!(decide(&tier, None, "a", 50, cur("b")), Out::ToWarp);
        assert_eq!(decide(&tier, Some(&base), "c", 50, cur("a")), Out::ToWarp);
        // Equal in canonical form: nothing.
        assert_eq!(decide(&city, None, "b", 5, cur("b")), Out::InSync);
        // Never set in HubSpot (a property just created): WARP's stands.
        assert_eq!(decide(&tier, None, "a", 50, cur("")), Out::Keep);
        let limit = field("credit_limit");
        assert_eq!(decide(&limit, None, "a", 50, cur("")), Out::ToHub);
        // Cleared by a person (a baseline says it held one): it flows.
        assert_eq!(decide(&tier, Some(&base), "a", 50, cur("")), Out::ToWarp);
    }
}
