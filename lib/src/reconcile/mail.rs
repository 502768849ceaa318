//! The nightly report by e-mail: the settings, who gets what and when, and
//! the MIME message each recipient gets.
//!
//! [`deliver`] runs at the end of a run, after the report is in S3 and
//! before the run is marked finished: a run that dies while sending is
//! retried from its last checkpoint and sends again (a person may get a
//! night's e-mail twice, never no e-mail). Each recipient gets an e-mail
//! of their own, because its links are signed for them
//! ([`crate::review::token`]). A refusal (SES down, an unverified sender,
//! a recipient SES will not take) is counted in [`Delivery`], logged and
//! kept in the run record; it never fails the run, whose work is done.

use std::future::Future;
use std::time::Duration;

use mail_builder::MessageBuilder;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::email::{EmailInput, compose, needs_attention};
use super::report::Report;
use crate::operate::conflicts::{OpenConflict, Take};
use crate::review::token::{domain, is_address};
use crate::review::{Claims, ReviewKey, sign};
use crate::secrets::SecretSource;
use crate::settings::{Env, SettingError};

/// When a night's e-mail goes out (`REPORT_EMAIL_WHEN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendWhen {
    /// `always`: every finished run.
    Always,
    /// `attention` (the default): only a run that needs a person
    /// ([`needs_attention`]: errors, conflicts, unmatched records, a run
    /// that stopped).
    Attention,
}

/// The e-mail's settings, read at cold start. `None` from
/// [`MailSettings::from_env`] when `REPORT_EMAIL_TO` is unset or empty:
/// the feature is off.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `REPORT_EMAIL_TO`: addresses, comma-separated.
    pub to: Vec<String>,
    /// `REPORT_EMAIL_FROM`: a verified SES identity (the address, or its
    /// domain).
    pub from: String,
    pub when: SendWhen,
    /// `REPORT_EMAIL_MAX_ROWS` (default 50): differences, and writes, shown
    /// in the e-mail; the rest are counted and left to the full report.
    pub max_rows: usize,
    /// `REVIEW_LINK_TTL_HOURS` (default 72): how long a link works.
    pub link_ttl: Duration,
    /// `REVIEW_BASE_URL`: the review page's URL up to the token, ending in
    /// `/review/` (the stack's HTTP API, https off loopback).
    pub review_url: String,
    /// `REVIEW_LINK_KEY` or `REVIEW_LINK_KEY_ARN`: the key that signs the
    /// links (the stack generates it in Secrets Manager).
    pub key: SecretSource,
}

impl MailSettings {
    pub fn from_env(env: &Env) -> Result<Option<Self>, SettingError> {
        let to: Vec<String> = env
            .optional("REPORT_EMAIL_TO")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if to.is_empty() {
            return Ok(None);
        }
        // An address a link can be signed for, as the links are.
        if let Some(bad) = to.iter().find(|a| !is_address(a)) {
            return Err(SettingError::malformed(
                "REPORT_EMAIL_TO",
                format!("{bad:?} is not an e-mail address"),
            ));
        }
        let from = env.required("REPORT_EMAIL_FROM")?.trim().to_string();
        if !is_address(&from) {
            return Err(SettingError::malformed(
                "REPORT_EMAIL_FROM",
                "not an e-mail address (a verified SES identity)",
            ));
        }
        let when = match env.optional("REPORT_EMAIL_WHEN").unwrap_or("attention") {
            "always" => SendWhen::Always,
            "attention" => SendWhen::Attention,
            _ => {
                return Err(SettingError::malformed(
                    "REPORT_EMAIL_WHEN",
                    "must be `always` or `attention`",
                ));
            }
        };
        let review_url = env.required_api_url("REVIEW_BASE_URL")?;
        if !review_url.ends_with("/review/") {
            return Err(SettingError::malformed(
                "REVIEW_BASE_URL",
                "must end in /review/ (the review page's route, before the token)",
            ));
        }
        Ok(Some(Self {
            to,
            from,
            when,
            max_rows: env.parse_in_range("REPORT_EMAIL_MAX_ROWS", 50, 1..=1000)?,
            link_ttl: Duration::from_secs(
                3600 * env.parse_in_range::<u64>("REVIEW_LINK_TTL_HOURS", 72, 1..=720)?,
            ),
            review_url,
            key: SecretSource::from_env(env, "REVIEW_LINK_KEY")?,
        }))
    }
}

/// The settings with the key read: what a cold start keeps.
#[derive(Debug, Clone)]
pub struct ReportMail {
    pub settings: MailSettings,
    pub key: ReviewKey,
}

impl ReportMail {
    /// Reads the link key (Secrets Manager in the function).
    pub async fn load(
        settings: &MailSettings,
        aws: &aws_config::SdkConfig,
    ) -> Result<Self, crate::startup::StartupError> {
        Ok(Self {
            settings: settings.clone(),
            key: crate::review::load_key(&settings.key, aws).await?,
        })
    }
}

/// Sends one whole MIME message (SES v2 in the function).
pub trait Mailer: Send + Sync {
    /// The provider's message id, or why it refused.
    fn send(
        &self,
        from: &str,
        to: &str,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// What a run's e-mail came to; kept in the run record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Why nothing was sent, when nothing was tried: `quiet night`
    /// (nothing needed a person and only such nights are sent), `dry run`.
    /// (With no e-mail configured the run record has no delivery at all.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub sent: u32,
    pub failed: u32,
    /// The first refusal, as the provider gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Delivery {
    pub fn skipped(why: &str) -> Self {
        Self {
            skipped: Some(why.to_string()),
            ..Self::default()
        }
    }
}

/// What a finished night gives its e-mail.
#[derive(Debug, Clone, Copy)]
pub struct Night<'a> {
    pub report: &'a Report,
    /// Every open MANUAL conflict, with its id.
    pub conflicts: &'a [OpenConflict],
    /// Where the full report is (its S3 key).
    pub full_report: Option<&'a str>,
}

/// One e-mail per recipient, each with its own links, unless the night
/// does not call for one. `now_ms` dates the message and starts the links'
/// time.
pub async fn deliver<M: Mailer>(
    mail: &ReportMail,
    mailer: &M,
    night: &Night<'_>,
    now_ms: i64,
) -> Delivery {
    let s = &mail.settings;
    let (report, conflicts) = (night.report, night.conflicts);
    if report.dry_run {
        return Delivery::skipped("dry run");
    }
    // The report's open conflicts are `conflicts`: needs_attention counts them.
    if s.when == SendWhen::Attention && !needs_attention(report) {
        info!(run_id = %report.run_id, "report e-mail not sent: nothing needs a person");
        return Delivery::skipped("quiet night");
    }
    let expires_at = now_ms / 1000 + s.link_ttl.as_secs() as i64;
    let mut delivery = Delivery::default();
    for to in &s.to {
        let message = message(mail, night, to, expires_at, now_ms);
        match mailer.send(&s.from, to, message).await {
            Ok(message_id) => {
                delivery.sent += 1;
                info!(run_id = %report.run_id, recipient_domain = domain(to), message_id, conflicts = conflicts.len(), "report e-mail sent");
            }
            Err(e) => {
                delivery.failed += 1;
                warn!(run_id = %report.run_id, recipient_domain = domain(to), error = %e, "report e-mail refused; the run stands");
                delivery.error.get_or_insert(e);
            }
        }
    }
    crate::metrics::report_emails(delivery.sent, delivery.failed);
    delivery
}

/// The whole MIME message for `to`: `multipart/alternative`, the text part
/// first and the HTML part last (the one a mail client prefers), both
/// UTF-8. Also what `make demo` saves as `.eml`.
pub fn message(
    mail: &ReportMail,
    night: &Night<'_>,
    to: &str,
    links_expire_at: i64,
    now_ms: i64,
) -> Vec<u8> {
    let s = &mail.settings;
    let link =
        |conflict_id: &str, take: Take| match Claims::new(conflict_id, take, to, links_expire_at) {
            Ok(claims) => format!("{}{}", s.review_url, sign(&mail.key, &claims)),
            // A conflict id is 8 hex digits and `to` passed the same check at
            // start-up, so this does not happen; a link that goes nowhere is
            // better than no e-mail.
            Err(_) => s.review_url.clone(),
        };
    let email = compose(
        &EmailInput {
            report: night.report,
            conflicts: night.conflicts,
            recipient: to,
            max_rows: s.max_rows,
            links_expire_at,
            full_report: night.full_report,
        },
        link,
    );
    let message_id = format!(
        "{}.{}@hubwarp",
        night
            .report
            .run_id
            .replace(|c: char| !c.is_ascii_alphanumeric(), ""),
        uuid::Uuid::new_v4().simple()
    );
    MessageBuilder::new()
        .from(s.from.as_str())
        .to(to)
        .subject(email.subject)
        .date(now_ms / 1000)
        .message_id(message_id)
        // RFC 3834: machine-sent; out-of-office replies stay away.
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        )
        .text_body(email.text)
        .html_body(email.html)
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
