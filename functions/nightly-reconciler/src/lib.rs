//! nightly-reconciler: at 02:00 (EventBridge Scheduler), every WARP customer
//! against its HubSpot company, drift repaired both ways, a run report.

pub mod config;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use hubwarp::reconcile::ReconcileRequest;
use hubwarp::reconcile::mail::{Delivery, Mailer, Night, ReportMail};
use hubwarp::reconcile::ports::{Alerts, Continuation};
use hubwarp::reconcile::run::Outcome;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::info;

pub use config::Config;
pub use hubwarp::startup::StartupError;

pub use hubwarp::reconcile::aws::AwsReconciler;

/// Continues a run in a fresh invocation of this same function
/// (asynchronous: Lambda queues it and retries it on failure).
pub struct LambdaContinuation {
    pub client: aws_sdk_lambda::Client,
    pub function_name: String,
}

impl Continuation for LambdaContinuation {
    async fn continue_run(&self, run_id: &str) -> Result<(), String> {
        let payload = serde_json::to_vec(&ReconcileRequest {
            continue_run: Some(run_id.to_string()),
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        self.client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(e).to_string())?;
        Ok(())
    }
}

/// Alerts on SNS when `ALERT_TOPIC_ARN` is set, and the report e-mail
/// through SES when `REPORT_EMAIL_TO` is; nothing otherwise.
pub struct Notices {
    pub sns: aws_sdk_sns::Client,
    pub topic_arn: Option<String>,
    pub mail: Option<(ReportMail, SesMailer)>,
}

impl Alerts for Notices {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), String> {
        let Some(topic) = &self.topic_arn else {
            return Ok(());
        };
        // SNS caps e-mail subjects at 100 characters.
        let subject: String = subject.chars().take(100).collect();
        self.sns
            .publish()
            .topic_arn(topic)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| aws_sdk_sns::error::DisplayErrorContext(e).to_string())?;
        Ok(())
    }

    async fn mail_report(&self, night: &Night<'_>) -> Option<Delivery> {
        let (mail, mailer) = self.mail.as_ref()?;
        Some(hubwarp::reconcile::mail::deliver(mail, mailer, night, hubwarp::time::now_ms()).await)
    }
}

/// SES v2 `SendEmail` with the whole MIME message (raw content), so what
/// is sent is byte for byte what `mail::message` built.
pub struct SesMailer {
    pub client: aws_sdk_sesv2::Client,
}

impl Mailer for SesMailer {
    async fn send(&self, from: &str, to: &str, message: Vec<u8>) -> Result<String, String> {
        let raw = RawMessage::builder()
            .data(Blob::new(message))
            .build()
            .map_err(|e| e.to_string())?;
        let sent = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await
            .map_err(|e| aws_sdk_sesv2::error::DisplayErrorContext(e).to_string())?;
        Ok(sent.message_id.unwrap_or_default())
    }
}

/// Everything one cold start builds once.
pub struct Function {
    pub reconciler: AwsReconciler,
    pub continuation: LambdaContinuation,
    pub alerts: Notices,
}

/// Builds the reconciler (the library's build, shared with `hubwarp
/// reconcile --local`) and what only the function has: continuation and
/// alerts.
pub async fn build(config: &Config, aws: &aws_config::SdkConfig) -> Result<Function, StartupError> {
    let reconciler = hubwarp::reconcile::aws::build(config, aws).await?;
    Ok(Function {
        reconciler,
        continuation: LambdaContinuation {
            client: hubwarp::aws::lambda(aws, config.lambda_endpoint.as_deref()),
            function_name: config.function_name.clone(),
        },
        alerts: Notices {
            sns: aws_sdk_sns::Client::new(aws),
            topic_arn: config.alert_topic_arn.clone(),
            mail: match &config.mail {
                Some(settings) => Some((
                    ReportMail::load(settings, aws).await?,
                    SesMailer {
                        client: aws_sdk_sesv2::Client::new(aws),
                    },
                )),
                None => None,
            },
        },
    })
}

/// Lambda's longest timeout: the time allowed when the runtime gives no
/// usable deadline.
pub const NO_DEADLINE_BUDGET_MS: i64 = 15 * 60 * 1000;

/// The invocation's deadline in epoch ms. Lambda always gives one still
/// ahead; `cargo lambda watch` (1.9.2) answers every invocation with the
/// constant `Lambda-Runtime-Deadline-Ms: 600000`, ten minutes after the
/// epoch. Taken literally, every local invocation would be out of time after
/// its first step and hand over to a nested invoke that watch cannot serve
/// while this one waits for it. A deadline already past when the invocation
/// starts is therefore no deadline: the run allows itself Lambda's longest
/// timeout from now.
pub fn effective_deadline(deadline_ms: u64, now_ms: i64) -> i64 {
    match i64::try_from(deadline_ms) {
        Ok(given) if given > now_ms => given,
        Err(_) => i64::MAX,
        Ok(given) => {
            info!(
                given,
                "the runtime's deadline has already passed (a local emulator's constant); allowing Lambda's longest timeout"
            );
            now_ms + NO_DEADLINE_BUDGET_MS
        }
    }
}

/// One invocation. The answer names the run and its report's keys; a
/// failure is returned as an error so the platform retries it, and the
/// retry resumes from the last checkpoint.
pub async fn handle(
    function: &Function,
    event: LambdaEvent<Value>,
) -> Result<Outcome, lambda_runtime::Error> {
    let request: ReconcileRequest = serde_json::from_value(event.payload)
        .map_err(|e| format!("the payload is not a reconcile request: {e}"))?;
    let deadline_ms = effective_deadline(event.context.deadline, hubwarp::time::now_ms());
    let outcome = function
        .reconciler
        .invoke(
            &request,
            deadline_ms,
            &function.continuation,
            &function.alerts,
        )
        .await
        .map_err(|e| {
            hubwarp::metrics::run_failed();
            tracing::error!(request_id = %event.context.request_id, error = %e, "reconcile invocation failed");
            e.to_string()
        })?;
    info!(
        request_id = %event.context.request_id,
        run_id = %outcome.run_id,
        status = %outcome.status,
        "reconcile invocation"
    );
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_already_past_is_no_deadline() {
        let now = 1_795_000_000_000;
        assert_eq!(effective_deadline(now as u64 + 60_000, now), now + 60_000);
        // cargo lambda watch's constant.
        assert_eq!(
            effective_deadline(600_000, now),
            now + NO_DEADLINE_BUDGET_MS
        );
        assert_eq!(
            effective_deadline(now as u64, now),
            now + NO_DEADLINE_BUDGET_MS
        );
        assert_eq!(effective_deadline(u64::MAX, now), i64::MAX);
    }
}
