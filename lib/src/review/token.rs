//! Signed review-link tokens: one open conflict, one choice, one recipient,
//! one expiry, and an HMAC-SHA256 over them.
//!
//! # Format (version 1)
//!
//! The token is `base64url(payload || mac)` without padding (alphabet
//! `A-Z a-z 0-9 - _`, so it is one path segment as it stands), where
//!
//! ```text
//! payload = 0x01                      version
//!           'w' | 'h'                 the choice: keep WARP's value, take HubSpot's
//!           expires_at                i64, big-endian, epoch seconds
//!           len(conflict_id) u8, conflict_id (ASCII, 1..=64 bytes)
//!           len(recipient)   u8, recipient   (UTF-8, 3..=254 bytes)
//! mac     = HMAC-SHA256(key, "hubwarp review link\0" || payload)   32 bytes
//! ```
//!
//! Every field has a fixed width or a length before it, and nothing may
//! follow the recipient, so one byte string decodes to one set of claims
//! (no `a|b` + `c` = `a` + `b|c`). The MAC is checked (in constant time)
//! before a byte of the payload is read: any change to the token is
//! [`TokenError::Tampered`] unless it breaks the base64 or the minimum
//! length first ([`TokenError::Malformed`]). A token is about 110
//! characters plus 4/3 of the recipient's length.
//!
//! The token is signed, not encrypted: whoever holds the link reads the
//! conflict id and the recipient's address in it (the recipient is whom it
//! was sent to). It never carries the key. It is a credential for one
//! choice until it expires: log [`fingerprint`], never the token.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::Take;

/// The only version this code signs and reads.
const VERSION: u8 = 1;
/// Bound into every MAC, so the key could not vouch for another kind of
/// message even if it were ever reused for one.
const DOMAIN: &[u8] = b"hubwarp review link\0";
const MAC_LEN: usize = 32;
/// Version, choice, expiry and the two length bytes.
const FIXED_LEN: usize = 1 + 1 + 8 + 1 + 1;

/// A conflict id's limits (`hubwarp conflicts list` shows 8 hex digits).
pub const MAX_CONFLICT_ID: usize = 64;
/// An e-mail address's limits (RFC 5321's 254 octets at most).
pub const MIN_RECIPIENT: usize = 3;
pub const MAX_RECIPIENT: usize = 254;
/// The shortest key [`ReviewKey::new`] accepts: HMAC-SHA256's output size.
pub const MIN_KEY_LEN: usize = 32;

/// The secret that signs review links. Its `Debug` shows the length only.
#[derive(Clone)]
pub struct ReviewKey(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the review link key is {len} bytes; it must be at least {MIN_KEY_LEN} \
         (HMAC-SHA256's output size: a shorter key is easier to guess than the MAC it makes)"
    )]
    TooShort { len: usize },
}

impl ReviewKey {
    /// The key's bytes (the secret's text as it is stored, for a generated
    /// secret). Shorter than [`MIN_KEY_LEN`] is refused.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(DOMAIN);
        mac.update(payload);
        mac
    }
}

impl fmt::Debug for ReviewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReviewKey(<{} bytes, redacted>)", self.0.len())
    }
}

/// What a token vouches for. Built through [`Claims::new`], so every set of
/// claims fits the format and [`sign`] cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    conflict_id: String,
    take: Take,
    recipient: String,
    expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("a conflict id is 1 to {MAX_CONFLICT_ID} letters, digits, '-' or '_', not {0:?}")]
    ConflictId(String),
    #[error(
        "{0:?} is not an e-mail address a link can be signed for \
         ({MIN_RECIPIENT} to {MAX_RECIPIENT} bytes, one '@', no spaces or control characters)"
    )]
    Recipient(String),
}

impl Claims {
    /// A link for `recipient` to settle conflict `conflict_id` by `take`,
    /// valid until `expires_at` (epoch seconds, excluded).
    pub fn new(
        conflict_id: impl Into<String>,
        take: Take,
        recipient: impl Into<String>,
        expires_at: i64,
    ) -> Result<Self, ClaimsError> {
        let conflict_id = conflict_id.into();
        let recipient = recipient.into();
        if conflict_id.is_empty()
            || conflict_id.len() > MAX_CONFLICT_ID
            || !conflict_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ClaimsError::ConflictId(conflict_id));
        }
        if !is_address(&recipient) {
            return Err(ClaimsError::Recipient(recipient));
        }
        Ok(Self {
            conflict_id,
            take,
            recipient,
            expires_at,
        })
    }

    pub fn conflict_id(&self) -> &str {
        &self.conflict_id
    }

    pub fn take(&self) -> Take {
        self.take
    }

    /// The address the link was sent to: who is choosing.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// Epoch seconds; the link works before this second, not at or after it.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.conflict_id.len() + self.recipient.len());
        out.push(VERSION);
        out.push(match self.take {
            Take::Warp => b'w',
            Take::Hubspot => b'h',
        });
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        // Both lengths are bounded by `new` (64 and 254).
        out.push(self.conflict_id.len() as u8);
        out.extend_from_slice(self.conflict_id.as_bytes());
        out.push(self.recipient.len() as u8);
        out.extend_from_slice(self.recipient.as_bytes());
        out
    }

    /// The inverse of [`Claims::encode`]; `None` for anything it would not
    /// have produced.
    fn decode(p: &[u8]) -> Option<Self> {
        let (&version, p) = p.split_first()?;
        if version != VERSION {
            return None;
        }
        let (&take, p) = p.split_first()?;
        let take = match take {
            b'w' => Take::Warp,
            b'h' => Take::Hubspot,
            _ => return None,
        };
        let (expiry, p) = p.split_first_chunk::<8>()?;
        let expires_at = i64::from_be_bytes(*expiry);
        let (conflict_id, p) = field(p)?;
        let (recipient, p) = field(p)?;
        if !p.is_empty() {
            return None;
        }
        Self::new(conflict_id, take, recipient, expires_at).ok()
    }
}

/// Whether `address` is one a link can be signed for (and so one a report
/// e-mail can go to): 3 to 254 bytes, one `@` with something on each side,
/// no spaces or control characters.
pub fn is_address(address: &str) -> bool {
    (MIN_RECIPIENT..=MAX_RECIPIENT).contains(&address.len())
        && address.matches('@').count() == 1
        && !address.starts_with('@')
        && !address.ends_with('@')
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An address's domain: enough for a log line to tell people apart by
/// organisation, without the address itself.
pub fn domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

/// One length-prefixed UTF-8 field and the rest.
fn field(p: &[u8]) -> Option<(&str, &[u8])> {
    let (&len, p) = p.split_first()?;
    let (value, rest) = p.split_at_checked(usize::from(len))?;
    Some((std::str::from_utf8(value).ok()?, rest))
}

/// Why a token was refused. None of them carries the token or its MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, too short to hold a MAC, or (signed but) not claims
    /// this version reads.
    #[error("this is not a review link (the token is malformed)")]
    Malformed,
    /// The MAC does not match: the token was changed, or signed with
    /// another key.
    #[error("this review link has been altered or was not issued by this system")]
    Tampered,
    /// Signed and intact, but past its time.
    #[error("this review link expired at {}", crate::time::iso(.at.saturating_mul(1000)))]
    Expired {
        /// The claims' expiry, epoch seconds.
        at: i64,
    },
}

/// The token for `claims`: URL-safe base64 without padding, one path
/// segment.
pub fn sign(key: &ReviewKey, claims: &Claims) -> String {
    let mut bytes = claims.encode();
    let mac = key.mac(&bytes).finalize().into_bytes();
    bytes.extend_from_slice(&mac);
    B64.encode(bytes)
}

/// The claims of `token` if `key` signed it and it has not expired at `now`
/// (epoch seconds). The MAC is compared in constant time, before the claims
/// are read.
pub fn verify(key: &ReviewKey, token: &str, now: i64) -> Result<Claims, TokenError> {
    // The engine refuses padding, characters outside the URL-safe
    // alphabet and non-zero trailing bits, so one token has one spelling.
    let bytes = B64.decode(token).map_err(|_| TokenError::Malformed)?;
    if bytes.len() < FIXED_LEN + MAC_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, mac) = bytes.split_at(bytes.len() - MAC_LEN);
    key.mac(payload)
        .verify_slice(mac)
        .map_err(|_| TokenError::Tampered)?;
    let claims = Claims::decode(payload).ok_or(TokenError::Malformed)?;
    if now >= claims.expires_at {
        return Err(TokenError::Expired {
            at: claims.expires_at,
        });
    }
    Ok(claims)
}

/// A short name for a token in logs and records (16 hex digits of its
/// SHA-256): tells two tokens apart, and cannot be used as one.
pub fn fingerprint(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..8])
}

#[cfg(test)]
mod tests;
