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

    let context = req.request_context_ref();
    let domain = match context {
        Some(RequestContext::ApiGatewayV2(c)) => c.domain_name.clone(),
        Some(RequestContext::ApiGatewayV1(c)) => c.domain_name.clone(),
        _ => None,
    }
    .filter(|d| !d.is_empty());
    let (scheme, host) = match domain {
        // API Gateway and Function URLs answer on HTTPS only and name the
        // domain the client called; `Host` and `X-Forwarded-Proto` are the
        // client's word, and a signature must not be checked against a URL
        // the sender chose.
        Some(domain) => ("https", domain),
        // Outside AWS (an event with no request context): what arrived.
        None => {
            let headers = req.headers();
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("https");
            let host = headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| req.uri().host().map(str::to_string))
                .unwrap_or_default();
            (scheme, host)
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn req(event: &str) -> Request {
        lambda_http::request::from_str(event).expect("valid event")
    }

    const FUNCTION_URL: &str = r#"{"version":"2.0","routeKey":"$default","rawPath":"/hooks/hubspot",
      "rawQueryString":"portal=1&next=https%3A%2F%2Fx","headers":{"host":"abc.lambda-url.us-east-1.on.aws",
      "x-forwarded-proto":"https"},"requestContext":{"domainName":"abc.lambda-url.us-east-1.on.aws",
      "http":{"method":"POST","path":"/hooks/hubspot","protocol":"HTTP/1.1","sourceIp":"1.2.3.4","userAgent":"x"},
      "requestId":"r","routeKey":"$default","stage":"$default","time":"t","timeEpoch":0,"accountId":"a","apiId":"abc"},
      "body":"[]","isBase64Encoded":false}"#;

    #[test]
    fn function_url_keeps_raw_path_and_query() {
        assert_eq!(
            signed_uri(&req(FUNCTION_URL), None),
            "https://abc.lambda-url.us-east-1.on.aws/hooks/hubspot?portal=1&next=https%3A%2F%2Fx"
        );
    }

    #[test]
    fn public_url_replaces_host_and_path() {
        let r = req(FUNCTION_URL);
        assert_eq!(
            signed_uri(&r, Some("https://hooks.example.com/hubspot")),
            "https://hooks.example.com/hubspot?portal=1&next=https%3A%2F%2Fx"
        );
        assert_eq!(
            signed_uri(&r, Some("https://hooks.example.com/hubspot?fixed=1")),
            "https://hooks.example.com/hubspot?fixed=1"
        );
    }

    #[test]
    fn http_api_with_a_named_stage() {
        let event = FUNCTION_URL
            .replace(
                r#""rawPath":"/hooks/hubspot""#,
                r#""rawPath":"/prod/hooks/hubspot""#,
            )
            .replace(r#""stage":"$default""#, r#""stage":"prod""#)
            .replace(
                r#""rawQueryString":"portal=1&next=https%3A%2F%2Fx""#,
                r#""rawQueryString":"""#,
            )
            .replace("abc.lambda-url.us-east-1.on.aws", "api.example.com");
        assert_eq!(
            signed_uri(&req(&event), None),
            "https://api.example.com/prod/hooks/hubspot"
        );
    }

    const REST: &str = r#"{"resource":"/webhooks/hubspot","path":"/webhooks/hubspot","httpMethod":"POST",
      "headers":{"Host":"k2v8.execute-api.eu-west-1.amazonaws.com","X-Forwarded-Proto":"https"},
      "multiValueHeaders":{},"queryStringParameters":null,"multiValueQueryStringParameters":null,
      "requestContext":{"path":"/prod/webhooks/hubspot","stage":"prod","httpMethod":"POST","accountId":"1",
      "domainName":"k2v8.execute-api.eu-west-1.amazonaws.com",
      "resourcePath":"/webhooks/hubspot","requestId":"r","identity":{},"apiId":"k2v8"},
      "body":"[]","isBase64Encoded":false}"#;

    #[test]
    fn rest_api_keeps_the_stage_in_the_path() {
        assert_eq!(
            signed_uri(&req(REST), None),
            "https://k2v8.execute-api.eu-west-1.amazonaws.com/prod/webhooks/hubspot"
        );
    }

    #[test]
    fn rest_api_without_context_path_prefixes_the_stage() {
        let event = REST.replace(r#""path":"/prod/webhooks/hubspot","#, "");
        assert_eq!(
            signed_uri(&req(&event), None),
            "https://k2v8.execute-api.eu-west-1.amazonaws.com/prod/webhooks/hubspot"
        );
    }

    #[test]
    fn rest_api_on_a_custom_domain_uses_the_path_as_called() {
        let event = REST
            .replace(
                r#""path":"/prod/webhooks/hubspot""#,
                r#""path":"/crm/webhooks/hubspot""#,
            )
            .replace(
                "k2v8.execute-api.eu-west-1.amazonaws.com",
                "hooks.example.com",
            );
        assert_eq!(
            signed_uri(&req(&event), None),
            "https://hooks.example.com/crm/webhooks/hubspot"
        );
    }

    #[test]
    fn host_and_scheme_come_from_the_request_context_not_the_headers() {
        // A sender's Host and X-Forwarded-Proto do not choose the URL the
        // signature is checked against.
        let event = FUNCTION_URL
            .replace(
                r#""x-forwarded-proto":"https""#,
                r#""x-forwarded-proto":"http""#,
            )
            .replace(
                r#""host":"abc.lambda-url.us-east-1.on.aws""#,
                r#""host":"attacker.example""#,
            );
        assert_eq!(
            signed_uri(&req(&event), None),
            "https://abc.lambda-url.us-east-1.on.aws/hooks/hubspot?portal=1&next=https%3A%2F%2Fx"
        );
    }

    #[test]
    fn without_a_request_context_the_headers_say_where_it_arrived() {
        let r: Request = http::Request::builder()
            .method("POST")
            .uri("/hooks")
            .header("host", "127.0.0.1:9000")
            .header("x-forwarded-proto", "http")
            .body(lambda_http::Body::Empty)
            .expect("a request");
        assert!(r.request_context_ref().is_none());
        assert_eq!(signed_uri(&r, None), "http://127.0.0.1:9000/hooks");
    }
}
