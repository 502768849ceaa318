//! The HTTP side of the receiver: one request in, one precise answer out.
//!
//! Statuses are decided here and nowhere else: 405 not POST, 413 body over
//! the limit, 401 signature missing, bad or stale, 400 body not a JSON array
//! of objects, 200 once every event is recorded (and each one the project
//! acts on, queued), 503 when AWS failed (HubSpot retries). An event inside
//! the array that the project does not act on or cannot read never fails
//! the delivery: HubSpot batches every subscribed type together, and a 400
//! would lose the changes batched with it. Error bodies are `{code, detail}`
//! and never echo the signature or the payload.

use std::time::Instant;

use hubwarp::hubspot::signature::{
    self, SignatureError, SignatureHeaders, SignedRequest, Verifier,
};
use hubwarp::hubspot::webhook::{PayloadError, read_delivery};
use hubwarp::intake::{Intake, IntakeReport};
use hubwarp::queue::SyncQueue;
use hubwarp::store::EventLog;
use hubwarp::time::now_ms;
use lambda_http::http::{HeaderMap, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use tracing::{info, warn};

use crate::signed_uri::signed_uri;

/// Everything a request needs, built once per cold start.
pub struct Receiver<L, Q> {
    pub verifier: Verifier,
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    pub intake: Intake<L, Q>,
}

/// Why a request was not accepted.
#[derive(Debug, thiserror::Error)]
enum Rejection {
    #[error("method {0} not allowed; HubSpot sends POST")]
    Method(Method),
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error(
        "{failed} event(s) could not be recorded or queued and {in_flight} are held by another delivery; retry"
    )]
    Incomplete { failed: usize, in_flight: usize },
}

impl Rejection {
    fn status(&self) -> StatusCode {
        match self {
            Self::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::Payload(_) => StatusCode::BAD_REQUEST,
            Self::Incomplete { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Method(_) => "method_not_allowed",
            Self::TooLarge { .. } => "payload_too_large",
            Self::Signature(_) => "invalid_signature",
            Self::Payload(_) => "invalid_payload",
            Self::Incomplete { .. } => "retry_later",
        }
    }

    /// The `Reason` dimension of the RequestsRejected metric.
    fn metric_reason(&self) -> &'static str {
        match self {
            Self::Method(_) => "method",
            Self::TooLarge { .. } => "too_large",
            Self::Signature(_) => "signature",
            Self::Payload(_) => "payload",
            Self::Incomplete { .. } => "incomplete",
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    detail: String,
}

impl<L: EventLog, Q: SyncQueue> Receiver<L, Q> {
    /// Handles one request. Never fails and never panics on input: every
    /// outcome is an HTTP answer.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, lambda_http::Error> {
        let started = Instant::now();
        let request_id = req
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let result = self.process(&req, &request_id).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(match result {
            Ok((version, report)) => {
                report.count();
                info!(
                    request_id,
                    status = 200,
                    signature = version.as_str(),
                    received = report.received,
                    new = report.new,
                    duplicate = report.duplicate,
                    requeued = report.requeued,
                    ignored = report.ignored,
                    unreadable = report.unreadable,
                    rejected = 0,
                    elapsed_ms,
                    "webhook delivery accepted"
                );
                json_response(StatusCode::OK, &report)
            }
            Err((rejection, report)) => {
                let status = rejection.status();
                report.count();
                hubwarp::metrics::request_rejected(rejection.metric_reason());
                warn!(
                    request_id,
                    status = status.as_u16(),
                    code = rejection.code(),
                    reason = %rejection,
                    received = report.received,
                    new = report.new,
                    duplicate = report.duplicate,
                    requeued = report.requeued,
                    ignored = report.ignored,
                    unreadable = report.unreadable,
                    rejected = report.failed + report.in_flight,
                    elapsed_ms,
                    "webhook delivery not accepted"
                );
                let mut resp = json_response(
                    status,
                    &ErrorBody {
                        code: rejection.code(),
                        detail: rejection.to_string(),
                    },
                );
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    resp.headers_mut()
                        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
                }
                resp
            }
        })
    }

    async fn process(
        &self,
        req: &Request,
        request_id: &str,
    ) -> Result<(signature::SignatureVersion, IntakeReport), (Rejection, IntakeReport)> {
        let none = IntakeReport::default();
        if req.method() != Method::POST {
            return Err((Rejection::Method(req.method().clone()), none));
        }
        let body: &[u8] = req.body().as_ref();
        if body.len() > self.max_body_bytes {
            return Err((
                Rejection::TooLarge {
                    size: body.len(),
                    limit: self.max_body_bytes,
                },
                none,
            ));
        }
        let uri = signed_uri(req, self.public_url.as_deref());
        let signed = SignedRequest {
            method: req.method().as_str(),
            uri: &uri,
            body,
            headers: signature_headers(req.headers()),
        };
        let version = self
            .verifier
            .verify(&signed, now_ms())
            .map_err(|e| (e.into(), none.clone()))?;
        let delivery = read_delivery(body).map_err(|e| (e.into(), none.clone()))?;
        let report = self.intake.accept_delivery(&delivery, request_id).await;
        if report.is_complete() {
            Ok((version, report))
        } else {
            Err((
                Rejection::Incomplete {
                    failed: report.failed,
                    in_flight: report.in_flight,
                },
                report,
            ))
        }
    }
}

fn signature_headers(h: &HeaderMap) -> SignatureHeaders<'_> {
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    SignatureHeaders {
        signature: get(signature::HEADER_SIGNATURE),
        version: get(signature::HEADER_SIGNATURE_VERSION),
        signature_v3: get(signature::HEADER_SIGNATURE_V3),
        timestamp: get(signature::HEADER_TIMESTAMP),
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    // Serialising these plain structs cannot fail; an empty body would still
    // carry the right status.
    let text = serde_json::to_string(body).unwrap_or_default();
    let mut resp = Response::new(Body::Text(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}
