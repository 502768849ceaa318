//! `hubwarp link [--apply]`: joins the records that already exist on both
//! sides. An exact match, a company whose `warp_ban` is the customer's BAN
//! or a customer whose `external_ids.hubspot_company_id` names a company
//! that carries no other BAN, is linked with `--apply`: the links table,
//! WARP's `external_ids.hubspot_company_id` and HubSpot's `warp_ban`,
//! whichever of them is missing. A match by normalised name or web domain
//! is only a suggestion, listed with its evidence and never linked: two
//! "Acme" companies are common, and a wrong link sends one customer's
//! credit limit to another's company. Two candidates for one BAN are listed
//! and left alone. A dry run (the default) writes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use tracing::info;

use super::OperateError;
use super::setup::each_warp_customer;
use crate::hubspot::crm::{
    Company, CompanyUpdate, HubspotClient, MAX_BATCH_INPUTS, MAX_LIST_LIMIT,
};
use crate::store::sync::{Link, LinkState, LinkStore};
use crate::warp::{Customer, WarpClient, update_if_match};

/// The HubSpot property that carries the BAN, and the ones suggestions
/// compare.
const BAN: &str = "warp_ban";
const COMPANY_PROPERTIES: [&str; 4] = [BAN, "name", "domain", "website"];

/// A WARP customer as matching sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarpSide {
    pub id: String,
    pub ban: String,
    pub name: Option<String>,
    /// The contact e-mail's domain, unless a free mail provider's.
    pub domain: Option<String>,
    pub hubspot_company_id: Option<String>,
}

impl WarpSide {
    pub fn of(c: &Customer) -> Self {
        let text = |p: &str| {
            c.raw
                .pointer(p)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        Self {
            id: c.id.clone(),
            ban: c.ban.clone(),
            name: text("/company_name"),
            domain: text("/contact/email")
                .and_then(|e| e.rsplit_once('@').map(|(_, d)| d.to_string()))
                .and_then(|d| domain(&d))
                .filter(|d| !FREE_MAIL.contains(&d.as_str())),
            hubspot_company_id: c.hubspot_company_id.clone(),
        }
    }
}

/// A HubSpot company as matching sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubspotSide {
    pub id: String,
    pub warp_ban: Option<String>,
    pub name: Option<String>,
    pub domain: Option<String>,
}

impl HubspotSide {
    pub fn of(c: &Company) -> Self {
        Self {
            id: c.id.clone(),
            warp_ban: c.property(BAN).map(str::to_string),
            name: c.property("name").map(str::to_string),
            domain: c
                .property("domain")
                .or_else(|| c.property("website"))
                .and_then(domain),
        }
    }
}

/// Mail providers whose domain says nothing of the company.
const FREE_MAIL: [&str; 14] = [
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "mail.com",
];

/// Legal forms dropped from the end of a name before comparing.
const LEGAL_FORMS: [&str; 16] = [
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "corp",
    "corporation",
    "co",
    "company",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "plc",
    "bv",
    "srl",
];

/// Lower case, letters and digits only, legal forms at the end dropped:
/// "ACME Corp." and "Acme, Inc" are both "acme".
pub fn normalised_name(name: &str) -> Option<String> {
    let lower = name.to_lowercase();
    let mut words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    while words.len() > 1 && words.last().is_some_and(|w| LEGAL_FORMS.contains(w)) {
        words.pop();
    }
    (!words.is_empty()).then(|| words.join(" "))
}

/// A web domain from a domain, a URL or an e-mail's host: lower case,
/// without scheme, `www.`, port or path.
pub fn domain(text: &str) -> Option<String> {
    let t = text.trim().to_lowercase();
    let t = t.split_once("://").map_or(t.as_str(), |(_, rest)| rest);
    let host = t.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next().unwrap_or("");
    let host = host
        .strip_prefix("www.")
        .unwrap_or(host)
        .trim_end_matches('.');
    (host.contains('.') && !host.starts_with('.')).then(|| host.to_string())
}

/// What to do about one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pairing {
    /// An exact match with something missing; `--apply` writes it.
    Link {
        customer_id: String,
        ban: String,
        company_id: String,
        /// Why it is exact.
        evidence: String,
        set_external_id: bool,
        set_warp_ban: bool,
        record_link: bool,
    },
    /// Linked on every side already.
    Linked {
        customer_id: String,
        company_id: String,
    },
    /// A likely match for a person to confirm; never linked by `link`.
    Suggestion {
        customer_id: String,
        ban: String,
        company_id: String,
        evidence: String,
    },
    /// Candidates that contradict each other; left alone.
    Conflict {
        customer_id: String,
        ban: String,
        company_ids: Vec<String>,
        reason: String,
    },
}

/// Pairs customers with companies. `linked`: the company ids the links
/// table already holds for each customer id.
pub fn pair_up(
    customers: &[WarpSide],
    companies: &[HubspotSide],
    linked: &HashMap<String, String>,
) -> Vec<Pairing> {
    let by_id: HashMap<&str, &HubspotSide> = companies.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut by_ban: HashMap<&str, Vec<&HubspotSide>> = HashMap::new();
    for c in companies {
        if let Some(ban) = &c.warp_ban {
            by_ban.entry(ban.as_str()).or_default().push(c);
        }
    }
    // A company some customer's external id names is spoken for.
    let mut claimed: HashMap<&str, Vec<&str>> = HashMap::new();
    for w in customers {
        if let Some(id) = &w.hubspot_company_id {
            claimed.entry(id.as_str()).or_default().push(w.id.as_str());
        }
    }
    let mut out = Vec::new();
    let mut unmatched = Vec::new();
    for w in customers {
        let bans: Vec<&HubspotSide> = by_ban.get(w.ban.as_str()).cloned().unwrap_or_default();
        let named = w.hubspot_company_id.as_deref();
        let conflict = |company_ids: Vec<String>, reason: String| Pairing::Conflict {
            customer_id: w.id.clone(),
            ban: w.ban.clone(),
            company_ids,
            reason,
        };
        if bans.len() > 1 {
            let ids = bans.iter().map(|c| c.id.clone()).collect();
            out.push(conflict(
                ids,
                format!("{} companies carry warp_ban {}", bans.len(), w.ban),
            ));
            continue;
        }
        let target = match (named, bans.first()) {
            (Some(named), Some(with_ban)) if named != with_ban.id => {
                out.push(conflict(
                    vec![named.to_string(), with_ban.id.clone()],
                    format!(
                        "external_ids names company {named}, but company {} carries the BAN",
                        with_ban.id
                    ),
                ));
                continue;
            }
            (Some(named), _) => match by_id.get(named) {
                Some(c) => *c,
                None => {
                    out.push(conflict(
                        vec![named.to_string()],
                        format!(
                            "external_ids names company {named}, which HubSpot does not have \
                             (deleted, or merged into another)"
                        ),
                    ));
                    continue;
                }
            },
            (None, Some(with_ban)) => *with_ban,
            (None, None) => {
                unmatched.push(w);
                continue;
            }
        };
        if let Some(other) = target.warp_ban.as_deref().filter(|b| *b != w.ban) {
            out.push(conflict(
                vec![target.id.clone()],
                format!(
                    "external_ids names company {}, which carries another BAN ({other})",
                    target.id
                ),
            ));
            continue;
        }
        let others: Vec<&str> = claimed
            .get(target.id.as_str())
            .map(|v| v.iter().copied().filter(|id| *id != w.id).collect())
            .unwrap_or_default();
        if !others.is_empty() {
            out.push(conflict(
                vec![target.id.clone()],
                format!(
                    "company {} is named by other customers' external_ids too ({})",
                    target.id,
                    others.join(", ")
                ),
            ));
            continue;
        }
        let set_external_id = named.is_none();
        let set_warp_ban = target.warp_ban.is_none();
        let record_link = linked.get(&w.id).map(String::as_str) != Some(target.id.as_str());
        if set_external_id || set_warp_ban || record_link {
            out.push(Pairing::Link {
                customer_id: w.id.clone(),
                ban: w.ban.clone(),
                company_id: target.id.clone(),
                evidence: if named.is_some() {
                    format!("external_ids.hubspot_company_id = {}", target.id)
                } else {
                    format!("warp_ban = {}", w.ban)
                },
                set_external_id,
                set_warp_ban,
                record_link,
            });
        } else {
            out.push(Pairing::Linked {
                customer_id: w.id.clone(),
                company_id: target.id.clone(),
            });
        }
    }
    out.extend(suggestions(&unmatched, companies, &claimed));
    out
}

/// Companies no customer has for the unmatched customers: same normalised
/// name, or the contact's mail domain is the company's web domain.
fn suggestions(
    unmatched: &[&WarpSide],
    companies: &[HubspotSide],
    claimed: &HashMap<&str, Vec<&str>>,
) -> Vec<Pairing> {
    let free: Vec<&HubspotSide> = companies
        .iter()
        .filter(|c| c.warp_ban.is_none() && !claimed.contains_key(c.id.as_str()))
        .collect();
    let mut by_name: HashMap<String, Vec<&HubspotSide>> = HashMap::new();
    let mut by_domain: HashMap<&str, Vec<&HubspotSide>> = HashMap::new();
    for c in &free {
        if let Some(n) = c.name.as_deref().and_then(normalised_name) {
            by_name.entry(n).or_default().push(c);
        }
        if let Some(d) = c.domain.as_deref() {
            by_domain.entry(d).or_default().push(c);
        }
    }
    let mut out = Vec::new();
    for w in unmatched {
        let mut evidence: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        if let Some(name) = w.name.as_deref()
            && let Some(key) = normalised_name(name)
        {
            for c in by_name.get(&key).into_iter().flatten() {
                evidence.entry(&c.id).or_default().push(format!(
                    "name {:?} ~ {:?}",
                    name,
                    c.name.as_deref().unwrap_or("")
                ));
            }
        }
        if let Some(d) = w.domain.as_deref() {
            for c in by_domain.get(d).into_iter().flatten() {
                evidence
                    .entry(&c.id)
                    .or_default()
                    .push(format!("contact e-mail domain {d} = company domain"));
            }
        }
        for (company_id, why) in evidence {
            out.push(Pairing::Suggestion {
                customer_id: w.id.clone(),
                ban: w.ban.clone(),
                company_id: company_id.to_string(),
                evidence: why.join("; "),
            });
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkReport {
    pub applied: bool,
    pub customers: u64,
    pub companies: u64,
    pub pairings: Vec<Pairing>,
    /// Links written (with `--apply`).
    pub linked: u64,
    /// Links that failed, with why (with `--apply`).
    pub failed: Vec<String>,
}

impl LinkReport {
    pub fn count(&self, kind: &str) -> usize {
        self.pairings
            .iter()
            .filter(|p| {
                matches!(
                    (kind, p),
                    ("link", Pairing::Link { .. })
                        | ("linked", Pairing::Linked { .. })
                        | ("suggestion", Pairing::Suggestion { .. })
                        | ("conflict", Pairing::Conflict { .. })
                )
            })
            .count()
    }
}

async fn every_company(hubspot: &HubspotClient) -> Result<Vec<HubspotSide>, OperateError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = hubspot
            .list_page(&COMPANY_PROPERTIES, after.as_deref(), MAX_LIST_LIMIT)
            .await?;
        out.extend(page.results.iter().map(HubspotSide::of));
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

pub async fn link<S: LinkStore>(
    warp: &WarpClient,
    hubspot: &HubspotClient,
    store: &S,
    apply: bool,
) -> Result<LinkReport, OperateError> {
    let mut customers = Vec::new();
    each_warp_customer(warp, |c| customers.push(WarpSide::of(c))).await?;
    let companies = every_company(hubspot).await?;
    // The links table, for the companies an exact match can reach.
    let named: HashSet<&str> = customers
        .iter()
        .filter_map(|c| c.hubspot_company_id.as_deref())
        .collect();
    let mut linked = HashMap::new();
    for c in companies
        .iter()
        .filter(|c| c.warp_ban.is_some() || named.contains(c.id.as_str()))
    {
        if let Some(l) = store
            .link(&c.id)
            .await?
            .filter(|l| l.state == LinkState::Active)
        {
            linked.insert(l.customer_id, l.company_id);
        }
    }
    let pairings = pair_up(&customers, &companies, &linked);
    let mut report = LinkReport {
        applied: apply,
        customers: customers.len() as u64,
        companies: companies.len() as u64,
        pairings,
        linked: 0,
        failed: Vec::new(),
    };
    if !apply {
        return Ok(report);
    }
    apply_links(warp, hubspot, store, &mut report).await;
    Ok(report)
}

/// One exact link to write, and which of its sides are missing.
struct ToLink {
    customer_id: String,
    ban: String,
    company_id: String,
    set_external_id: bool,
    set_warp_ban: bool,
    record_link: bool,
}

/// Writes the missing sides of each exact link: WARP's `external_ids`
/// first (a `PUT` with `If-Match` per customer, never over another company
/// a person set meanwhile), then HubSpot's `warp_ban` (100 companies per
/// batch update), then the links table; a link that failed on one side is
/// not written on the next, and the next run finishes what one left.
async fn apply_links<S: LinkStore>(
    warp: &WarpClient,
    hubspot: &HubspotClient,
    store: &S,
    report: &mut LinkReport,
) {
    let mut seen = HashSet::new();
    let mut todo: Vec<ToLink> = Vec::new();
    for p in &report.pairings {
        if let Pairing::Link {
            customer_id,
            ban,
            company_id,
            set_external_id,
            set_warp_ban,
            record_link,
            ..
        } = p
            && seen.insert(company_id.clone())
        {
            todo.push(ToLink {
                customer_id: customer_id.clone(),
                ban: ban.clone(),
                company_id: company_id.clone(),
                set_external_id: *set_external_id,
                set_warp_ban: *set_warp_ban,
                record_link: *record_link,
            });
        }
    }
    let mut failed: HashMap<String, String> = HashMap::new();
    for l in todo.iter().filter(|l| l.set_external_id) {
        if let Err(why) = set_external_id(warp, &l.customer_id, &l.company_id).await {
            failed.insert(l.company_id.clone(), why);
        }
    }
    let bans: Vec<&ToLink> = todo
        .iter()
        .filter(|l| l.set_warp_ban && !failed.contains_key(&l.company_id))
        .collect();
    for chunk in bans.chunks(MAX_BATCH_INPUTS) {
        let updates: Vec<CompanyUpdate> = chunk
            .iter()
            .map(|l| CompanyUpdate {
                id: l.company_id.clone(),
                properties: [(BAN.to_string(), l.ban.clone())].into(),
            })
            .collect();
        match hubspot.batch_update(&updates).await {
            Ok(answer) => {
                for f in answer.failed {
                    for id in f.ids {
                        failed.insert(
                            id,
                            format!("HubSpot refused warp_ban: {} {}", f.category, f.message),
                        );
                    }
                }
            }
            Err(e) => {
                for l in chunk {
                    failed.insert(l.company_id.clone(), e.to_string());
                }
            }
        }
    }
    for l in &todo {
        if let Some(why) = failed.get(&l.company_id) {
            report
                .failed
                .push(format!("{} ↔ {}: {why}", l.customer_id, l.company_id));
            continue;
        }
        if l.record_link
            && let Err(e) = store
                .put_link(&Link::active(&l.company_id, &l.customer_id, &l.ban))
                .await
        {
            report
                .failed
                .push(format!("{} ↔ {}: {e}", l.customer_id, l.company_id));
            continue;
        }
        info!(customer_id = %l.customer_id, company_id = %l.company_id, "linked");
        report.linked += 1;
    }
}

/// Points WARP's `external_ids.hubspot_company_id` at `company_id`, unless
/// a person pointed it elsewhere since the read.
async fn set_external_id(
    warp: &WarpClient,
    customer_id: &str,
    company_id: &str,
) -> Result<(), String> {
    let customer = warp.get(customer_id).await.map_err(|e| e.to_string())?;
    let w = update_if_match(warp, customer, |c| {
        let mut body = serde_json::Map::new();
        match c.hubspot_company_id.as_deref() {
            None => {
                body.insert(
                    "external_ids".into(),
                    serde_json::json!({ "hubspot_company_id": company_id }),
                );
                (body, Ok(()))
            }
            Some(id) if id == company_id => (body, Ok(())),
            Some(other) => (
                body,
                Err(format!(
                    "external_ids now names company {other}; left alone"
                )),
            ),
        }
    })
    .await;
    w.decision?;
    w.written.map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
