//! Runs the WARP sandbox standalone for the local demo, seeded with demo
//! customers, on loopback only, until killed; and beside it the HubSpot
//! sandbox on the next port, with one company per customer carrying its
//! `warp_ban`.
//!
//! Usage: warp-sandbox [--port P] [--hubspot-port Q] [--customers N]
//! (defaults: 9100, P+1, 50)
//!
//! Prints `WARP_API_URL=http://127.0.0.1:P` and
//! `HUBSPOT_API_URL=http://127.0.0.1:P+1` once both accept connections, so a
//! script can wait for them and source the settings.

use std::net::{Ipv4Addr, SocketAddr};

use integration_tests::hubspot_sandbox::HubspotSandbox;
use integration_tests::warp_sandbox::{WarpSandbox, demo_customer};

const USAGE: &str =
    "usage: warp-sandbox [--port P] [--hubspot-port Q] [--customers N]   (defaults: 9100, P+1, 50)";

struct Args {
    port: u16,
    hubspot_port: Option<u16>,
    customers: usize,
}

/// `--name value` or `--name=value`; anything else is a usage error. None
/// when help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        port: 9100,
        hubspot_port: None,
        customers: 50,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?;
        match name.as_str() {
            "--port" => parsed.port = number(&name, &value)?,
            "--hubspot-port" => parsed.hubspot_port = Some(number(&name, &value)?),
            "--customers" => parsed.customers = number(&name, &value)?,
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
    for n in 1..=args.customers {
        let customer = sandbox.insert(demo_customer(n));
        let mut props = serde_json::Map::new();
        props.insert("warp_ban".into(), customer["ban"].clone());
        props.insert("name".into(), customer["company_name"].clone());
        if let Some(id) = customer
            .pointer("/external_ids/hubspot_company_id")
            .and_then(|v| v.as_str())
        {
            hubspot.upsert_company(id, props);
        }
    }
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
