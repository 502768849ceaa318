//! One HubSpot call: the daily cap remembered, the limiter's budget, the
//! request, and what each answer means for retrying.
//!
//! Two budgets of retries, on purpose: 5xx and timeouts use the client's
//! `RetryPolicy` (a few attempts; then the caller or the queue decides),
//! while the seconds-long rate limits are waited out, many times if need
//! be, when a limiter is attached, so a 429 storm slows a run but loses no
//! call. The daily cap is neither: nothing helps before it resets.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use super::{HubspotClient, HubspotError};
use crate::http;
use crate::hubspot::rate::{Lane, Permit, RateHeaders};
use crate::time::now_ms;

/// A 429 asking for a longer wait than this is not a seconds-long limit:
/// the call fails as transient instead of stalling.
const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(60);
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Get,
    List,
    BatchRead,
    BatchUpdate,
    Search,
    /// The properties API (definitions and groups).
    Schema,
    /// What HubSpot says of the token itself (its scopes).
    TokenInfo,
}

impl Kind {
    fn lane(self) -> Lane {
        match self {
            Self::Search => Lane::Search,
            _ => Lane::General,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Get => "GET company",
            Self::List => "list companies",
            Self::BatchRead => "batch read companies",
            Self::BatchUpdate => "batch update companies",
            Self::Search => "search companies",
            Self::Schema => "company properties",
            Self::TokenInfo => "access token info",
        }
    }
}

/// An answer the caller interprets (2xx, 404 and the 4xx that are not
/// about the token).
pub(super) struct Answer {
    pub status: StatusCode,
    body: Vec<u8>,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HubspotError> {
        serde_json::from_slice(&self.body).map_err(|e| HubspotError::Malformed(e.to_string()))
    }

    /// HubSpot's `Error` body as a rejection: its category, logged with the
    /// correlation id HubSpot support asks for (never the message, which
    /// can quote property values).
    pub fn rejected(&self) -> HubspotError {
        let body: ErrorBody = serde_json::from_slice(&self.body).unwrap_or_default();
        warn!(
            status = self.status.as_u16(),
            category = %body.category,
            correlation_id = body.correlation_id.as_deref().unwrap_or(""),
            "HubSpot refused the request"
        );
        HubspotError::Rejected {
            status: self.status.as_u16(),
            category: body.category,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    category: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    policy_name: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
}

/// Which of HubSpot's limits a 429 is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    TenSecondly,
    Secondly,
    Daily,
}

impl Policy {
    /// `policyName` when given; search's secondly 429 is known mostly by
    /// its message ("You have reached your secondly limit.").
    fn of(body: &ErrorBody) -> Self {
        let policy = body.policy_name.as_deref().unwrap_or("");
        let message = body.message.to_ascii_lowercase();
        if policy.eq_ignore_ascii_case("DAILY") || message.contains("daily limit") {
            Self::Daily
        } else if policy.eq_ignore_ascii_case("SECONDLY") || message.contains("secondly limit") {
            Self::Secondly
        } else {
            Self::TenSecondly
        }
    }
}

enum Step {
    Done(Answer),
    Fatal(HubspotError),
    /// A seconds-long rate limit: wait `wait`, then send again.
    Throttled {
        policy: Policy,
        wait: Duration,
    },
    /// 5xx or no answer: under the retry policy.
    Failed {
        error: HubspotError,
        retry_after: Option<Duration>,
    },
}

impl HubspotClient {
    pub(super) async fn send(
        &self,
        kind: Kind,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, HubspotError> {
        let lane = kind.lane();
        let mut failures = 0u32;
        let mut throttled = 0u32;
        loop {
            if let Some(retry_at_ms) = self.shared.daily_limit(now_ms()) {
                debug!(
                    call = kind.name(),
                    retry_at_ms, "daily limit still reached; not sending"
                );
                return Err(HubspotError::DailyLimit { retry_at_ms });
            }
            let permit = match &self.limiter {
                Some(limiter) => {
                    let (permit, waited) = limiter.acquire(lane).await;
                    if !waited.is_zero() {
                        self.shared.waited(waited);
                        debug!(
                            call = kind.name(),
                            waited_ms = waited.as_millis() as u64,
                            "waited for the rate limit"
                        );
                    }
                    Some(permit)
                }
                None => None,
            };
            let taken = permit.as_ref().map(Permit::taken);
            self.shared.sent(kind);
            let received = receive(
                build()
                    .header(AUTHORIZATION, self.token.bearer())
                    .send()
                    .await,
            )
            .await;
            // The answer is in (or the call failed): HubSpot has counted it.
            drop(permit);

            match self.step(lane, received, taken) {
                Step::Done(answer) => return Ok(answer),
                Step::Fatal(error) => return Err(error),
                Step::Throttled { policy, wait } => {
                    let patient = self
                        .limiter
                        .as_ref()
                        .filter(|l| throttled < l.max_throttled_retries());
                    if let Some(limiter) = patient {
                        throttled += 1;
                        warn!(
                            call = kind.name(),
                            policy = ?policy,
                            wait_ms = wait.as_millis() as u64,
                            throttled,
                            "HubSpot rate limit (429); waiting it out"
                        );
                        limiter.pause(lane, wait);
                        continue;
                    }
                    failures += 1;
                    let error = HubspotError::Transient(format!("429 {policy:?} rate limit"));
                    self.retry_later(kind, failures, error, Some(wait)).await?;
                }
                Step::Failed { error, retry_after } => {
                    failures += 1;
                    self.retry_later(kind, failures, error, retry_after).await?;
                }
            }
        }
    }

    /// Sleeps before the next attempt, or gives the error back when the
    /// retry policy is used up or asks for a wait longer than it allows.
    async fn retry_later(
        &self,
        kind: Kind,
        failures: u32,
        error: HubspotError,
        retry_after: Option<Duration>,
    ) -> Result<(), HubspotError> {
        if failures >= self.retry.attempts {
            return Err(error);
        }
        let wait = match retry_after {
            Some(d) if d > self.retry.max_retry_after => return Err(error),
            Some(d) => d,
            None => self.retry.backoff(failures),
        };
        warn!(
            call = kind.name(),
            attempt = failures,
            wait_ms = wait.as_millis() as u64,
            error = %error,
            "transient failure; retrying"
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// `taken`: the places of the limiter's window in use when the request
    /// left (with a limiter).
    fn step(
        &self,
        lane: Lane,
        received: Result<Received, reqwest::Error>,
        taken: Option<u32>,
    ) -> Step {
        let r = match received {
            Ok(r) => r,
            Err(e) => {
                return Step::Failed {
                    error: HubspotError::Transient(
                        if e.is_timeout() {
                            "timed out"
                        } else {
                            "request failed"
                        }
                        .into(),
                    ),
                    retry_after: None,
                };
            }
        };
        let headers = RateHeaders::from_headers(&r.headers);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            return self.throttled(lane, &r, headers);
        }
        match (&self.limiter, taken) {
            (Some(limiter), Some(taken)) => limiter.observe_answer(lane, headers, taken),
            (Some(limiter), None) => limiter.observe(lane, headers),
            (None, _) => {}
        }
        match r.status {
            StatusCode::FORBIDDEN => match missing_scopes(&r.body) {
                Some(scopes) => Step::Fatal(HubspotError::MissingScopes(scopes)),
                None => Step::Fatal(HubspotError::Unauthorized(403)),
            },
            StatusCode::UNAUTHORIZED => Step::Fatal(HubspotError::Unauthorized(401)),
            s if s.is_server_error() => Step::Failed {
                error: HubspotError::Transient(s.to_string()),
                retry_after: r.retry_after,
            },
            status => Step::Done(Answer {
                status,
                body: r.body,
            }),
        }
    }

    fn throttled(&self, lane: Lane, r: &Received, headers: RateHeaders) -> Step {
        self.shared.throttled();
        if let Some(limiter) = &self.limiter {
            // Only what the account allows; "0 remaining" is this very 429,
            // whose wait comes below.
            limiter.observe(
                lane,
                RateHeaders {
                    remaining: None,
                    ..headers
                },
            );
        }
        let body: ErrorBody = serde_json::from_slice(&r.body).unwrap_or_default();
        let policy = Policy::of(&body);
        if policy == Policy::Daily {
            let now = now_ms();
            let retry_at_ms = match r.retry_after {
                Some(d) => now.saturating_add(d.as_millis() as i64),
                None => next_midnight_utc(now),
            };
            self.shared.daily_limit_until(retry_at_ms);
            warn!(
                retry_at_ms,
                correlation_id = body.correlation_id.as_deref().unwrap_or(""),
                "HubSpot daily request limit reached; no more calls until then"
            );
            return Step::Fatal(HubspotError::DailyLimit { retry_at_ms });
        }
        let default = match lane {
            Lane::General => Duration::from_secs(10),
            Lane::Search => Duration::from_secs(1),
        };
        let wait = r.retry_after.or(headers.interval).unwrap_or(default);
        if wait > MAX_THROTTLE_WAIT {
            return Step::Failed {
                error: HubspotError::Transient(format!("429 {policy:?} rate limit")),
                retry_after: Some(wait),
            };
        }
        Step::Throttled { policy, wait }
    }
}

/// Everything of an answer, read before the limiter's place is given back.
/// The scopes a 403 `MISSING_SCOPES` names (`errors[].context.
/// requiredGranularScopes`, one of which would do), joined for the
/// message; `None` for any other 403.
fn missing_scopes(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        category: String,
        #[serde(default)]
        errors: Vec<Detail>,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(default)]
        context: std::collections::HashMap<String, Vec<String>>,
    }
    let body: Body = serde_json::from_slice(body).ok()?;
    if body.category != "MISSING_SCOPES" {
        return None;
    }
    let scopes: Vec<String> = body
        .errors
        .into_iter()
        .flat_map(|d| d.context.into_iter())
        .filter(|(k, _)| k.starts_with("required"))
        .flat_map(|(_, v)| v)
        .collect();
    Some(if scopes.is_empty() {
        "unnamed".into()
    } else {
        scopes.join(" or ")
    })
}

struct Received {
    status: StatusCode,
    headers: HeaderMap,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

async fn receive(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<Received, reqwest::Error> {
    let response = sent?;
    let status = response.status();
    let headers = response.headers().clone();
    let retry_after = http::retry_after(&response);
    let body = response.bytes().await?.to_vec();
    Ok(Received {
        status,
        headers,
        retry_after,
        body,
    })
}

/// HubSpot resets the daily cap at midnight in the account's time zone,
/// which no header tells; midnight UTC is the guess that errs on neither
/// side by more than a day's fraction, and the next call finds out.
fn next_midnight_utc(now_ms: i64) -> i64 {
    (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_by_name_or_message() {
        let body = |policy: Option<&str>, message: &str| ErrorBody {
            policy_name: policy.map(String::from),
            message: message.into(),
            ..ErrorBody::default()
        };
        assert_eq!(Policy::of(&body(Some("DAILY"), "")), Policy::Daily);
        assert_eq!(
            Policy::of(&body(None, "You have reached your daily limit.")),
            Policy::Daily
        );
        assert_eq!(
            Policy::of(&body(Some("TEN_SECONDLY_ROLLING"), "")),
            Policy::TenSecondly
        );
        assert_eq!(
            Policy::of(&body(None, "You have reached your secondly limit.")),
            Policy::Secondly
        );
        assert_eq!(Policy::of(&body(None, "")), Policy::TenSecondly);
    }

    #[test]
    fn midnight_utc_is_the_next_day_boundary() {
        // 2025-10-14T09:00:00Z -> 2025-10-15T00:00:00Z
        assert_eq!(next_midnight_utc(1_760_432_400_000), 1_760_486_400_000);
        // Exactly midnight: the following one.
        assert_eq!(next_midnight_utc(1_760_486_400_000), 1_760_572_800_000);
    }
}
