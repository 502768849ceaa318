//! Runs the WARP sandbox standalone for the local demo, seeded with demo
//! customers, on loopback only, until killed; and beside it the HubSpot
//! sandbox on the next port, with one company per customer carrying its
//! `warp_ban`.
//!
//! Usage: warp-sandbox [--port P] [--hubspot-port Q] [--customers N]
//!                     [--drift F] [--hubspot-limit-per-10s L]
//!                     [--hubspot-search-per-s S] [--other-companies K]
//!                     [--hubspot-setup] [--shuffled] [--exit-with-stdin]
//! (defaults: 9100, P+1, 50, 0, none, none, 0)
//!
//! Each company carries the mapped properties the portal has with its
//! customer's values (the pairs agree), except that `--drift F` makes a
//! fraction F of the pairs differ: alternately a WARP-side edit of a
//! WARP-owned field and a HubSpot-side edit. `--hubspot-limit-per-10s`
//! makes the HubSpot sandbox enforce a rolling ten-secondly limit, and
//! `--hubspot-search-per-s` search's own secondly one. `--other-companies
//! K` adds K companies per customer that are no WARP customer's (no
//! `warp_ban`: prospects, partners), as real portals hold. `--shuffled`
//! gives the customers' companies ids in an order unlike WARP's (a fixed
//! permutation), as when companies were created in another order than
//! WARP lists its customers: the night's hardest join.
//!
//! The HubSpot portal starts as a new one does, without the bridge's
//! properties: each company holds only the values of HubSpot's own
//! properties the mapping uses (name, city, state, zip, country), and a
//! drifted pair's HubSpot edit is to its city. `make demo` then runs
//! `hubwarp setup`, and the first night fills the rest from WARP.
//! `--hubspot-setup` first creates them as `hubwarp setup` does (numbers,
//! enumerations with their options) and seeds every mapped value, as a
//! portal the bridge has run on for a while (reconcile-bench); a drifted
//! pair's HubSpot edit is then to its tier.
//! `--exit-with-stdin` makes it exit when its stdin closes: a parent that
//! holds the other end (reconcile-bench) cannot leave it running, even
//! when the parent is killed outright. Off by default, since a shell's
//! background job reads an already closed stdin (`make sandboxes`).
//!
//! Prints `WARP_API_URL=http://127.0.0.1:P` and
//! `HUBSPOT_API_URL=http://127.0.0.1:P+1` once both accept connections, so a
//! script can wait for them and source the settings.

use std::net::{Ipv4Addr, SocketAddr};

use hubwarp::mapping::MappingSet;
use integration_tests::hubspot_sandbox::HubspotSandbox;
use integration_tests::hubspot_setup::install_bridge_properties;
use integration_tests::seed;
use integration_tests::warp_sandbox::{WarpSandbox, demo_customer, shuffled_company_id};

const USAGE: &str = "usage: warp-sandbox [--port P] [--hubspot-port Q] [--customers N] [--drift F] \
     [--hubspot-limit-per-10s L] [--hubspot-search-per-s S] [--other-companies K] \
     [--hubspot-setup] [--shuffled] [--exit-with-stdin]   (defaults: 9100, P+1, 50, 0, none, none, 0)";

struct Args {
    port: u16,
    hubspot_port: Option<u16>,
    customers: usize,
    drift: f64,
    hubspot_limit: Option<u32>,
    search_per_s: Option<u32>,
    other_companies: usize,
    hubspot_setup: bool,
    shuffled: bool,
    exit_with_stdin: bool,
}

/// `--name value` or `--name=value`; anything else is a usage error. None
/// when help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        port: 9100,
        hubspot_port: None,
        customers: 50,
        drift: 0.0,
        hubspot_limit: None,
        search_per_s: None,
        other_companies: 0,
        hubspot_setup: false,
        shuffled: false,
        exit_with_stdin: false,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        if name == "--exit-with-stdin" && inline.is_none() {
            parsed.exit_with_stdin = true;
            continue;
        }
        if name == "--hubspot-setup" && inline.is_none() {
            parsed.hubspot_setup = true;
            continue;
        }
        if name == "--shuffled" && inline.is_none() {
            parsed.shuffled = true;
            continue;
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?;
        match name.as_str() {
            "--port" => parsed.port = number(&name, &value)?,
            "--hubspot-port" => parsed.hubspot_port = Some(number(&name, &value)?),
            "--customers" => parsed.customers = number(&name, &value)?,
            "--drift" => parsed.drift = number(&name, &value)?,
            "--hubspot-limit-per-10s" => parsed.hubspot_limit = Some(number(&name, &value)?),
            "--hubspot-search-per-s" => parsed.search_per_s = Some(number(&name, &value)?),
            "--other-companies" => parsed.other_companies = number(&name, &value)?,
            _ => return Err(format!("unknown argument {name}\n{USAGE}")),
        }
    }
    Ok(Some(parsed))
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: '{value}' is not a valid number\n{USAGE}"))
}

#[tokio::main]
async fn main() {
    // Plain messages on stderr, not the Debug form `main -> Result` prints.
    if let Err(message) = run().await {
        eprintln!("warp-sandbox: {message}");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), String> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    if args.exit_with_stdin {
        // Before seeding, which takes seconds at 100,000 customers: a
        // parent gone by then must not leave the sandbox behind.
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    // Loopback only: the sandbox accepts a well-known token.
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let sandbox = WarpSandbox::start_on(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let hubspot_port = args.hubspot_port.unwrap_or(args.port.saturating_add(1));
    let hubspot_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, hubspot_port));
    let hubspot = HubspotSandbox::start_on(hubspot_addr)
        .await
        .map_err(|e| format!("cannot listen on {hubspot_addr}: {e}"))?;
    let mappings = MappingSet::default_mapping().map_err(|e| e.to_string())?;
    if args.hubspot_setup {
        // Every tier and payment term the seeded customers hold (the first
        // eight hold them all).
        let book: Vec<serde_json::Value> = (1..=args.customers.max(8)).map(demo_customer).collect();
        install_bridge_properties(&hubspot, &book);
    }
    // The mapped properties the portal defines, looked up once rather than
    // once per company.
    let defined: std::collections::HashSet<&str> = mappings
        .properties()
        .into_iter()
        .filter(|name| hubspot.property(name).is_some())
        .collect();
    // Every 1/F-th pair drifts (deterministic, spread over the book).
    let every = (args.drift > 0.0).then(|| (1.0 / args.drift).round().max(1.0) as usize);
    let mut drifted = 0;
    for n in 1..=args.customers {
        let mut customer = demo_customer(n);
        if args.shuffled {
            customer["external_ids"]["hubspot_company_id"] =
                shuffled_company_id(n, 1, args.customers).into();
        }
        let customer = sandbox.insert(customer);
        let Some(id) = seed::company_id_of(&customer) else {
            continue;
        };
        let mut props = seed::company_properties(&customer, &mappings);
        // A new portal has no place for the bridge's values yet.
        props.retain(|name, _| defined.contains(name.as_str()));
        if every.is_some_and(|e| n % e == 0) {
            drifted += 1;
            if drifted % 2 == 0 {
                // A WARP-side edit no webhook announces.
                let cid = customer["id"].as_str().unwrap_or_default();
                let status = if customer["status"] == "CLOSED" {
                    "ACTIVE"
                } else {
                    "CLOSED"
                };
                sandbox.edit(cid, serde_json::json!({ "status": status }));
            } else {
                // A HubSpot edit whose webhook was lost.
                if args.hubspot_setup {
                    let tier = if customer["tier"] == "PLATINUM" {
                        "BRONZE"
                    } else {
                        "PLATINUM"
                    };
                    props.insert("warp_tier".into(), tier.into());
                } else {
                    props.insert("city".into(), "Springfield".into());
                }
            }
        }
        hubspot.upsert_company(&id, props);
    }
    // Prospects and partners: HubSpot's own properties only, ids apart
    // from the customers' companies.
    for k in 0..args.customers * args.other_companies {
        let mut props = serde_json::Map::new();
        props.insert("name".into(), format!("Prospect {k}").into());
        props.insert("domain".into(), format!("prospect{k}.example").into());
        props.insert("city".into(), "Springfield".into());
        hubspot.upsert_company(&(30_000_000_000u64 + k as u64).to_string(), props);
    }
    hubspot.set_ten_secondly_limit(args.hubspot_limit);
    hubspot.set_search_per_second(args.search_per_s);
    // One write for both lines, and no panic if the reader has gone: a
    // reader that stops after the first line must not kill the sandbox.
    let lines = format!(
        "WARP_API_URL={}\nHUBSPOT_API_URL={}\n",
        sandbox.base_url, hubspot.base_url
    );
    let mut out = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut out, lines.as_bytes());
    let _ = std::io::Write::flush(&mut out);
    drop(out);
    std::future::pending::<()>().await;
    Ok(())
}
