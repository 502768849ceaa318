//! Conflicts resolved from the nightly e-mail.
//!
//! Each open MANUAL conflict in the e-mail carries two links,
//! `/review/{token}`, one per [`Take`]. A [`token`] is signed for one
//! conflict, one choice, one recipient and an expiry, so a link edited into
//! another choice, conflict or person, or kept past its time, does nothing
//! (a forwarded link still acts in its recipient's name: it is a bearer
//! credential, and the e-mail says not to forward it). Opening a link
//! (`GET`) only shows the conflict as it is now and a button; only the
//! form's `POST` acts, through the same path as `hubwarp conflicts resolve`
//! ([`crate::operate::conflicts::resolve`], the recipient as `by`). Mail
//! scanners follow links, so a `GET` never writes.
//!
//! [`token`] is pure; [`page`] is what the review function answers, over
//! ports (WARP, HubSpot, the store). The key comes from the caller (Secrets
//! Manager in the function), and so does the time.

pub mod page;
pub mod token;

pub use crate::operate::conflicts::Take;
pub use page::{Closed, ClosedConflicts, Page, Ports};
pub use token::{Claims, ClaimsError, KeyError, ReviewKey, TokenError, sign, verify};

/// The key that signs and checks the links, read from where `source` says
/// (the stack's generated secret). Too short a key stops the cold start,
/// naming the setting.
pub async fn load_key(
    source: &crate::secrets::SecretSource,
    aws: &aws_config::SdkConfig,
) -> Result<ReviewKey, crate::startup::StartupError> {
    let text = source.resolve(aws).await?;
    ReviewKey::new(text.trim().as_bytes())
        .map_err(|e| crate::settings::SettingError::malformed(source.setting(), e).into())
}
