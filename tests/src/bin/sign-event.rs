//! Re-signs a webhook fixture for now, so a v3 request (valid 5 minutes)
//! can be sent with `cargo lambda invoke --data-file`.
//!
//! Usage: sign-event <in.json> <out.json> [v1|v2|v3|wrong]
//! The secret is HUBSPOT_CLIENT_SECRET (default: the local one), the URI is
//! rebuilt exactly as the receiver does (WEBHOOK_PUBLIC_URL respected).

use integration_tests::fixtures::{LOCAL_SECRET, Signing, sign_event};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, rest @ ..] = args.as_slice() else {
        return Err("usage: sign-event <in.json> <out.json> [v1|v2|v3|wrong]".into());
    };
    let now = hubwarp::time::now_ms();
    let signing = match rest.first().map(String::as_str).unwrap_or("v3") {
        "v1" => Signing::V1,
        "v2" => Signing::V2,
        "v3" => Signing::V3(now),
        "wrong" => Signing::Wrong(now),
        other => return Err(format!("unknown signing {other:?}")),
    };
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let mut event: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{input}: {e}"))?;
    let secret = std::env::var("HUBSPOT_CLIENT_SECRET").unwrap_or_else(|_| LOCAL_SECRET.into());
    let public_url = std::env::var("WEBHOOK_PUBLIC_URL")
        .ok()
        .filter(|u| !u.is_empty());
    sign_event(&mut event, &secret, signing, public_url.as_deref());
    let pretty = serde_json::to_string_pretty(&event).map_err(|e| e.to_string())?;
    if let Some(dir) = std::path::Path::new(output).parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(output, pretty + "\n").map_err(|e| format!("{output}: {e}"))?;
    eprintln!("signed {input} -> {output}");
    Ok(())
}
