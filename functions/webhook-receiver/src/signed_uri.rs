//! The URI HubSpot signed, rebuilt from what the function receives.
//!
//! HubSpot signs the full URL it called. Behind a Function URL or an HTTP API
//! that is the scheme, the `Host` header, the raw path and the raw query. A
//! REST API (payload 1.0) gives the path as called in
//! `requestContext.path` (stage included on the execute-api host), but no
//! raw query: its parameters arrive decoded and unordered, so a REST API URL
//! with a query string needs `WEBHOOK_PUBLIC_URL`. So does any proxy or
//! custom domain that changes the host or path on the way.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// Rebuilds the signed URI. `public_url`, when configured, replaces scheme,
/// host and path; the request's query is appended unless the configured URL
/// carries its own.
pub fn signed_uri(req: &Request, public_url: Option<&str>) -> String {
    let query = req.uri().query().filter(|q| !q.is_empty());
    if let Some(base) = public_url {
        return match query {
            Some(q) if !base.contains('?') => format!("{base}?{q}"),
            _ => base.to_string(),
        };
    }

    let headers = req.headers();
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("https");
    let context = req.request_context_ref();
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| match context {
            Some(RequestContext::ApiGatewayV2(c)) => c.domain_name.clone(),
            Some(RequestContext::ApiGatewayV1(c)) => c.domain_name.clone(),
            _ => None,
        })
        .or_else(|| req.uri().host().map(str::to_string))
        .unwrap_or_default();
    let path = match context {
        Some(RequestContext::ApiGatewayV1(c)) => c.path.clone().unwrap_or_else(|| {
            let raw = req.raw_http_path();
            match c.stage.as_deref() {
                Some(stage) if !stage.is_empty() && stage != "$default" => format!("/{stage}{raw}"),
                _ => raw.to_string(),
            }
        }),
        Some(RequestContext::ApiGatewayV2(_)) => req.raw_http_path().to_string(),
        _ => req.uri().path().to_string(),
    };
    let mut uri = format!("{scheme}://{host}{path}");
    if let Some(q) = query {
        uri.push('?');
        uri.push_str(q);
    }
    uri
}
