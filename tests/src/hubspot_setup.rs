//! The bridge's company properties installed in a HubSpot sandbox before a
//! test writes them, by the plan `hubwarp setup` carries out: the findings
//! of `hubwarp::operate::properties::survey` over the shipped default
//! mapping and the sandbox's current definitions, the `warp` group when a
//! property is to be created, and each missing property's definition,
//! created through the sandbox's in-process door (no HTTP call, so call
//! counts stay the test's own). No second table of types: a change of the
//! mapping or of the library's plan shows here as in `hubwarp setup`.

use hubwarp::hubspot::crm::{PropertyDef, PropertyGroup};
use hubwarp::mapping::MappingSet;
use hubwarp::operate::properties::{Finding, group_needed, held_values, survey};
use serde_json::Value;

use crate::hubspot_sandbox::HubspotSandbox;

/// Creates what the default mapping needs and `sandbox` lacks: the
/// enumerations offer WARP's contract values (`status`, `services`) and
/// the values `warp_customers` hold (`tier`, `payment_terms`), so pass the
/// customers the test's WARP side holds (or will hold). A property that
/// exists is left as it is, as setup leaves it (one `upsert_company` seeded
/// earlier defined it as text). Panics when the sandbox refuses a
/// definition: the plan and the sandbox disagree, which is the test's news.
pub fn install_bridge_properties(sandbox: &HubspotSandbox, warp_customers: &[Value]) {
    let mapping = match MappingSet::default_mapping() {
        Ok(mapping) => mapping,
        Err(e) => panic!("the shipped default mapping: {e:?}"),
    };
    let existing: Vec<PropertyDef> = sandbox
        .properties()
        .into_iter()
        .map(|p| serde_json::from_value(p).unwrap_or_else(|e| panic!("a sandbox Property: {e}")))
        .collect();
    let groups: Vec<PropertyGroup> = sandbox
        .property_groups()
        .into_iter()
        .map(|g| {
            serde_json::from_value(g).unwrap_or_else(|e| panic!("a sandbox PropertyGroup: {e}"))
        })
        .collect();
    let held = held_values(&mapping, warp_customers);
    let findings = survey(&mapping, &existing, &held);
    if let Some(group) = group_needed(&findings, &groups) {
        let group = serde_json::to_value(&group).unwrap_or_default();
        if let Err(e) = sandbox.create_property_group(group) {
            panic!("the sandbox refused the bridge's property group: {e}");
        }
    }
    for finding in &findings {
        if let Finding::Missing { create } = finding {
            let def = serde_json::to_value(create).unwrap_or_default();
            if let Err(e) = sandbox.create_property(def) {
                panic!("the sandbox refused {}: {e}", create.name);
            }
        }
    }
}
