//! HubSpot webhook request signatures (v1, v2 and v3).
//!
//! Everything here is pure: the caller hands in the method, the URI HubSpot
//! called, the raw body bytes, the signature headers and the current time.
//! HubSpot's rules that are easy to get wrong, and why the code looks the way
//! it does:
//!
//! - v3 timestamps are epoch *milliseconds* and are signed exactly as the
//!   header text arrived, so the header string is hashed, never a number.
//! - v3 decodes a fixed set of percent-escapes in the URI before signing;
//!   v2 signs the URI as called.
//! - The body is hashed as raw bytes. Re-serialising JSON would change escapes
//!   (`ä` vs `\u00e4`) and break the hash.
//! - Every comparison is constant time (`subtle` / `Mac::verify_slice`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How old (or how far in the future) a v3 timestamp may be: HubSpot's 5 minutes.
pub const MAX_TIMESTAMP_SKEW_MS: i64 = 300_000;

pub const HEADER_SIGNATURE: &str = "x-hubspot-signature";
pub const HEADER_SIGNATURE_VERSION: &str = "x-hubspot-signature-version";
pub const HEADER_SIGNATURE_V3: &str = "x-hubspot-signature-v3";
pub const HEADER_TIMESTAMP: &str = "x-hubspot-request-timestamp";

/// A signature scheme, ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SignatureVersion {
    V1,
    V2,
    V3,
}

impl SignatureVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::V3 => "v3",
        }
    }
}

impl fmt::Display for SignatureVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignatureVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v1" => Ok(Self::V1),
            "v2" => Ok(Self::V2),
            "v3" => Ok(Self::V3),
            other => Err(format!("expected v1, v2 or v3, got {other:?}")),
        }
    }
}

/// A HubSpot app client secret. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// Parses the configured form: one secret, or two separated by a comma
    /// while a rotation is under way. Blank entries are refused.
    pub fn parse_list(raw: &str) -> Result<Vec<ClientSecret>, String> {
        let secrets: Vec<ClientSecret> = raw
            .split(',')
            .map(str::trim)
            .map(|s| {
                if s.is_empty() {
                    Err("contains an empty secret".to_string())
                } else {
                    Ok(ClientSecret::new(s))
                }
            })
            .collect::<Result<_, _>>()?;
        match secrets.len() {
            1 | 2 => Ok(secrets),
            n => Err(format!(
                "holds {n} secrets; give one, or two separated by a comma during a rotation"
            )),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// The signature-related headers of one request, as received.
#[derive(Debug, Default, Clone, Copy)]
pub struct SignatureHeaders<'a> {
    pub signature: Option<&'a str>,
    pub version: Option<&'a str>,
    pub signature_v3: Option<&'a str>,
    pub timestamp: Option<&'a str>,
}

/// What was signed: method, the full URI HubSpot called, and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
    pub headers: SignatureHeaders<'a>,
}

/// Why a request was refused. The text is safe to log and to return: it never
/// contains the secret or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no HubSpot signature headers")]
    Missing,
    #[error("signature version {0:?} is not one of v1, v2")]
    UnknownVersion(String),
    #[error("signature {got} is below the required minimum {min}")]
    BelowMinimum {
        got: SignatureVersion,
        min: SignatureVersion,
    },
    #[error("v3 signature without X-HubSpot-Request-Timestamp")]
    MissingTimestamp,
    #[error("X-HubSpot-Request-Timestamp is not epoch milliseconds")]
    MalformedTimestamp,
    #[error("v3 timestamp is {age_ms} ms old (limit {MAX_TIMESTAMP_SKEW_MS} ms)")]
    Stale { age_ms: i64 },
    #[error("v3 timestamp is {ahead_ms} ms in the future (limit {MAX_TIMESTAMP_SKEW_MS} ms)")]
    FromFuture { ahead_ms: i64 },
    #[error("{0} signature does not match")]
    Mismatch(SignatureVersion),
}

/// Checks HubSpot signatures against one or two client secrets.
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<ClientSecret>,
    min_version: SignatureVersion,
}

impl Verifier {
    pub fn new(secrets: Vec<ClientSecret>, min_version: SignatureVersion) -> Self {
        Self {
            secrets,
            min_version,
        }
    }

    pub fn min_version(&self) -> SignatureVersion {
        self.min_version
    }

    /// Verifies `req` at time `now_ms` (epoch ms) and returns the scheme that
    /// matched.
    ///
    /// v3 is preferred when its headers are present. When v3 fails and the
    /// minimum allows an older scheme that the request also carries, that one
    /// is tried: such a request could have dropped its v3 headers anyway, so
    /// refusing it would add no protection. The v3 failure is the reason
    /// reported when both fail.
    pub fn verify(
        &self,
        req: &SignedRequest<'_>,
        now_ms: i64,
    ) -> Result<SignatureVersion, SignatureError> {
        let h = &req.headers;
        let v3_result = h
            .signature_v3
            .map(|sig| self.verify_v3(req, sig, h.timestamp, now_ms));
        if let Some(Ok(v)) = v3_result {
            return Ok(v);
        }
        let legacy_result = h.signature.map(|sig| self.verify_legacy(req, sig));
        match (v3_result, legacy_result) {
            (_, Some(Ok(v))) => Ok(v),
            (Some(Err(e)), _) => Err(e),
            (None, Some(Err(e))) => Err(e),
            (None, None) => Err(SignatureError::Missing),
            (Some(Ok(_)), _) => unreachable!("returned above"),
        }
    }

    fn verify_v3(
        &self,
        req: &SignedRequest<'_>,
        signature: &str,
        timestamp: Option<&str>,
        now_ms: i64,
    ) -> Result<SignatureVersion, SignatureError> {
        let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
        let ts = parse_timestamp_ms(timestamp)?;
        let age_ms = now_ms.saturating_sub(ts);
        if age_ms > MAX_TIMESTAMP_SKEW_MS {
            return Err(SignatureError::Stale { age_ms });
        }
        if -age_ms > MAX_TIMESTAMP_SKEW_MS {
            return Err(SignatureError::FromFuture { ahead_ms: -age_ms });
        }
        let mismatch = SignatureError::Mismatch(SignatureVersion::V3);
        let expected = BASE64
            .decode(signature.trim())
            .map_err(|_| mismatch.clone())?;
        let uri = decode_v3_uri(req.uri);
        let matched = self.secrets.iter().any(|secret| {
            v3_mac(secret, req.method, &uri, req.body, timestamp)
                .verify_slice(&expected)
                .is_ok()
        });
        if matched {
            Ok(SignatureVersion::V3)
        } else {
            Err(mismatch)
        }
    }

    fn verify_legacy(
        &self,
        req: &SignedRequest<'_>,
        signature: &str,
    ) -> Result<SignatureVersion, SignatureError> {
        // HubSpot documents v1 as the default when the version header is absent.
        let version = match req.headers.version.map(str::trim) {
            None | Some("") => SignatureVersion::V1,
            Some(v) if v.eq_ignore_ascii_case("v1") => SignatureVersion::V1,
            Some(v) if v.eq_ignore_ascii_case("v2") => SignatureVersion::V2,
            Some(other) => return Err(SignatureError::UnknownVersion(other.to_string())),
        };
        if version < self.min_version {
            return Err(SignatureError::BelowMinimum {
                got: version,
                min: self.min_version,
            });
        }
        let mismatch = SignatureError::Mismatch(version);
        let mut expected = [0u8; 32];
        hex::decode_to_slice(signature.trim(), &mut expected).map_err(|_| mismatch.clone())?;
        let matched = self.secrets.iter().fold(subtle::Choice::from(0), |acc, s| {
            let digest = match version {
                SignatureVersion::V2 => v2_digest(s, req.method, req.uri, req.body),
                _ => v1_digest(s, req.body),
            };
            acc | digest.as_slice().ct_eq(&expected)
        });
        if bool::from(matched) {
            Ok(version)
        } else {
            Err(mismatch)
        }
    }
}

fn parse_timestamp_ms(raw: &str) -> Result<i64, SignatureError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::MalformedTimestamp);
    }
    raw.parse::<i64>()
        .map_err(|_| SignatureError::MalformedTimestamp)
}

fn v3_mac(secret: &ClientSecret, method: &str, uri: &str, body: &[u8], ts: &str) -> Hmac<Sha256> {
    // An HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(ts.as_bytes());
    mac
}

fn v1_digest(secret: &ClientSecret, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(secret.as_bytes());
    h.update(body);
    h.finalize().into()
}

fn v2_digest(secret: &ClientSecret, method: &str, uri: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(secret.as_bytes());
    h.update(method.as_bytes());
    h.update(uri.as_bytes());
    h.update(body);
    h.finalize().into()
}

/// Signs a request the way HubSpot does (v3). Used by tests, fixtures and the
/// demo's webhook sender; the receiver only verifies.
pub fn sign_v3(secret: &ClientSecret, method: &str, uri: &str, body: &[u8], ts: &str) -> String {
    let uri = decode_v3_uri(uri);
    BASE64.encode(
        v3_mac(secret, method, &uri, body, ts)
            .finalize()
            .into_bytes(),
    )
}

/// Signs a request the way HubSpot does (v1).
pub fn sign_v1(secret: &ClientSecret, body: &[u8]) -> String {
    hex::encode(v1_digest(secret, body))
}

/// Signs a request the way HubSpot does (v2).
pub fn sign_v2(secret: &ClientSecret, method: &str, uri: &str, body: &[u8]) -> String {
    hex::encode(v2_digest(secret, method, uri, body))
}

/// Decodes exactly the percent-escapes HubSpot's v3 rules list, in either hex
/// case, and leaves every other escape as it is.
pub fn decode_v3_uri(uri: &str) -> Cow<'_, str> {
    if !uri.contains('%') {
        return Cow::Borrowed(uri);
    }
    let bytes = uri.as_bytes();
    let mut out = String::with_capacity(uri.len());
    let mut last = 0;
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == b'%'
            && let Some(c) = v3_escape(bytes[i + 1], bytes[i + 2])
        {
            out.push_str(&uri[last..i]);
            out.push(c);
            i += 3;
            last = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&uri[last..]);
    Cow::Owned(out)
}

fn v3_escape(hi: u8, lo: u8) -> Option<char> {
    let lo = lo.to_ascii_uppercase();
    Some(match (hi, lo) {
        (b'3', b'A') => ':',
        (b'2', b'F') => '/',
        (b'3', b'F') => '?',
        (b'4', b'0') => '@',
        (b'2', b'1') => '!',
        (b'2', b'4') => '$',
        (b'2', b'7') => '\'',
        (b'2', b'8') => '(',
        (b'2', b'9') => ')',
        (b'2', b'A') => '*',
        (b'2', b'C') => ',',
        (b'3', b'B') => ';',
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
