//! `hubwarp setup`: creates in HubSpot what the mapping needs and a new
//! portal lacks, the `warp` property group and each mapped company
//! property, with the type its values need ([`super::properties`]). What
//! exists is left alone, and what exists with the wrong type or without an
//! option WARP can send is reported with its fix (exit non-zero). A second
//! run finds everything and changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tracing::info;

use super::OperateError;
use super::properties::{self, Finding};
use crate::hubspot::crm::{HubspotClient, PropertyDef};
use crate::mapping::MappingSet;
use crate::warp::{Customer, WarpClient};

/// WARP's largest page.
const WARP_PAGE: u32 = 100;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetupReport {
    pub dry_run: bool,
    /// The group created (or, dry, to be created).
    pub group_created: Option<String>,
    /// The properties created (or, dry, to be created), in name order.
    pub created: Vec<PropertyDef>,
    /// Mapped properties already present and compatible.
    pub present: Vec<String>,
    /// Present but unfit, each with its fix; never changed.
    pub problems: Vec<String>,
    /// WARP customers read for the enumeration options.
    pub warp_customers_read: u64,
}

impl SetupReport {
    pub fn changes(&self) -> usize {
        self.created.len() + usize::from(self.group_created.is_some())
    }

    /// Everything the mapping needs is (or, dry, would be) in place.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Calls `each` with every WARP customer, a page at a time (memory stays a
/// page whatever the number of customers).
pub async fn each_warp_customer(
    warp: &WarpClient,
    mut each: impl FnMut(&Customer),
) -> Result<u64, OperateError> {
    let (mut page, mut seen) = (1, 0u64);
    loop {
        let p = warp.list_page(page, WARP_PAGE).await?;
        for c in &p.items {
            each(c);
        }
        seen += p.items.len() as u64;
        if p.items.is_empty() || page >= p.total_pages {
            return Ok(seen);
        }
        page += 1;
    }
}

/// Per WARP enumeration field whose values WARP's contract leaves open,
/// the values its customers hold now (read only when the mapping has such
/// a field).
pub async fn held_values(
    warp: &WarpClient,
    mapping: &MappingSet,
) -> Result<(BTreeMap<String, BTreeSet<String>>, u64), OperateError> {
    let mut held = properties::HeldValues::new(mapping);
    if held.is_empty() {
        return Ok((held.into_map(), 0));
    }
    let read = each_warp_customer(warp, |c| held.note(&c.raw)).await?;
    Ok((held.into_map(), read))
}

pub async fn setup(
    hubspot: &HubspotClient,
    warp: &WarpClient,
    mapping: &MappingSet,
    dry_run: bool,
) -> Result<SetupReport, OperateError> {
    let (held, warp_customers_read) = held_values(warp, mapping).await?;
    let existing = hubspot.company_properties().await?;
    let findings = properties::survey(mapping, &existing, &held);
    let groups = hubspot.company_property_groups().await?;
    let group = properties::group_needed(&findings, &groups);

    let mut report = SetupReport {
        dry_run,
        group_created: group.as_ref().map(|g| g.name.clone()),
        created: Vec::new(),
        present: Vec::new(),
        problems: Vec::new(),
        warp_customers_read,
    };
    if let (Some(group), false) = (&group, dry_run) {
        hubspot.create_property_group(group).await?;
        info!(group = %group.name, "created the HubSpot property group");
    }
    for finding in findings {
        match finding {
            Finding::Ready { property } => report.present.push(property),
            Finding::Missing { create } => {
                if !dry_run {
                    hubspot.create_property(&create).await?;
                    info!(property = %create.name, r#type = %create.value_type, field_type = %create.field_type, "created the HubSpot property");
                }
                report.created.push(create);
            }
            other => report.problems.push(other.describe()),
        }
    }
    Ok(report)
}
