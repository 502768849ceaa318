//! What the WARP and HubSpot clients share: one reqwest client per cold
//! start, bounded retries with full-jitter backoff that honour
//! `Retry-After`, and the line between transient and permanent failures.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use reqwest::{Response, StatusCode};
use tracing::warn;

/// How a client retries one call before giving the failure to its caller
/// (which, for the consumer, means SQS redelivers later).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited out in-process: the
    /// call fails as transient and the queue's own delay takes over.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries, for tests that count calls.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// Full jitter: a random wait up to the exponential step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let ms = rand::rng().random_range(0..=step.as_millis() as u64);
        Duration::from_millis(ms)
    }
}

/// Whether a status is worth retrying: 429 and 5xx.
pub fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these APIs).
pub fn retry_after(resp: &Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The outcome of one attempt, as the retry loop sees it.
pub enum Attempt<T, E> {
    Done(Result<T, E>),
    /// Transient: retry after the backoff, or after `Retry-After` when given.
    Retry {
        error: E,
        retry_after: Option<Duration>,
    },
}

/// Runs `attempt` until it is done, or transient failures use up the
/// policy; returns the last error then.
pub async fn with_retries<T, E, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let mut n = 0;
    loop {
        match attempt().await {
            Attempt::Done(result) => return result,
            Attempt::Retry { error, retry_after } => {
                n += 1;
                if n >= policy.attempts {
                    return Err(error);
                }
                let wait = match retry_after {
                    Some(d) if d > policy.max_retry_after => return Err(error),
                    Some(d) => d,
                    None => policy.backoff(n),
                };
                warn!(call = what, attempt = n, wait_ms = wait.as_millis() as u64, error = %error, "transient failure; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// A bearer token whose `Debug` never shows it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// The secret itself, for the calls that must name the token in their
    /// body or path (HubSpot's token info); never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// One HTTP client per cold start: connection pool, TLS roots, timeouts.
///
/// Trust is Mozilla's root program compiled in ([`tls`]): HubSpot's and
/// WARP's public certificates chain to it, and it costs no file reading or
/// certificate parsing at start, where the platform verifier reqwest uses
/// by default read and parsed the system's store at every cold start
/// (about 6 ms of the consumer's and the reconciler's init in `make
/// coldstart`).
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls())
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2).min(timeout))
        .user_agent(concat!("hubwarp/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// TLS 1.2 and 1.3 with aws-lc (the crypto the AWS SDK already links),
/// trusting Mozilla's roots as `webpki-roots` ships them.
pub fn tls() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    // Fails only for a provider without TLS 1.2 or 1.3 suites; aws-lc's
    // default one has both (the client test builds it).
    .expect("aws-lc's default provider offers TLS 1.2 and 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// reqwest takes a preconfigured rustls config only from the rustls
    /// version it links: a mismatch would fail every start, so the build
    /// of the client is a test.
    #[test]
    fn the_client_takes_the_compiled_in_roots() {
        assert!(client(Duration::from_secs(1)).is_ok());
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_within_the_policy() {
        let policy = RetryPolicy::default();
        let mut calls = 0;
        let r: Result<u32, String> = with_retries(&policy, "test", || {
            calls += 1;
            let c = calls;
            async move {
                if c < 3 {
                    Attempt::Retry {
                        error: format!("503 #{c}"),
                        retry_after: None,
                    }
                } else {
                    Attempt::Done(Ok(c))
                }
            }
        })
        .await;
        assert_eq!(r, Ok(3));

        let mut calls = 0;
        let r: Result<u32, String> = with_retries(&policy, "test", || {
            calls += 1;
            async {
                Attempt::Retry {
                    error: "503".to_string(),
                    retry_after: Some(Duration::from_secs(1)),
                }
            }
        })
        .await;
        assert_eq!(r, Err("503".into()));
        assert_eq!(calls, 3, "bounded");
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_retry_after_is_left_to_the_queue() {
        let mut calls = 0;
        let r: Result<(), String> = with_retries(&RetryPolicy::default(), "test", || {
            calls += 1;
            async {
                Attempt::Retry {
                    error: "429".to_string(),
                    retry_after: Some(Duration::from_secs(60)),
                }
            }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy::default();
        for attempt in 0..40 {
            assert!(p.backoff(attempt) <= p.max_delay);
        }
        assert!(!format!("{:?}", Token::new("jwt-secret")).contains("jwt-secret"));
    }
}
