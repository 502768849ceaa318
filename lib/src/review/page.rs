//! What a review link's page does: the body of the function behind
//! `GET/POST /review/{token}`, without the function.
//!
//! Both methods check the same things first, in this order, and a link that
//! fails one changes nothing:
//!
//! | the link | page | status |
//! |---|---|---|
//! | not base64, too short, altered, another key's | "this link is not valid" | 400 |
//! | signed, past its expiry | when it expired; tonight's e-mail or `hubwarp conflicts` | 410 |
//! | no conflict has its id | "no such conflict" | 404 |
//! | the conflict was resolved (this link used, or another way) | resolved by whom, when, which side's value | 409 |
//! | the conflict was replaced by a newer disagreement | "replaced; tonight's e-mail has its link" | 409 |
//! | open, `GET` | the field, both values as they are now (read again), who is asking, the choice, one button | 200 |
//! | open, `POST` | what [`crate::operate::conflicts::resolve`] wrote | 200 |
//!
//! A `GET` never writes: mail scanners follow links. Only the form's `POST`
//! acts, through `resolve` alone, with the link's recipient as `by` and the
//! note "resolved by <recipient> via e-mail link", so the sync log and
//! `hubwarp explain` tell it as any other resolution.
//!
//! Every answer carries [`Page::headers`]: no caching, a Content-Security-
//! Policy that allows nothing but the page's one style sheet (by its hash)
//! and a form posting to itself, no referrer, no sniffing. Every value on a
//! page goes through the report's escaping; the pages load nothing and run
//! no script.
//!
//! Each decision is one log line with the conflict id and the token's
//! [`fingerprint`], never the token, and the recipient's domain only.

use std::fmt::Write as _;
use std::sync::LazyLock;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::Take;
use super::token::{Claims, ReviewKey, TokenError, domain, fingerprint, verify};
use crate::hubspot::crm::HubspotError;
use crate::mapping::MappingSet;
use crate::operate::OperateError;
use crate::operate::conflicts::{self, Choice, Resolved};
use crate::reconcile::ports::HubspotCompanies;
use crate::reconcile::report::esc;
pub use crate::store::sync::{Closed, ClosedConflicts};
use crate::store::sync::{ConflictQueue, ConflictRecord, ConflictReview, FieldStateStore, SyncLog};
use crate::warp::{WarpApi, WarpError};

/// What the page talks to: the same ports as `hubwarp conflicts resolve`,
/// and the closed conflicts' states.
pub struct Ports<'a, W, H, S> {
    pub warp: &'a W,
    pub hubspot: &'a H,
    pub store: &'a S,
    pub mappings: &'a MappingSet,
}

/// One answer: a status and a whole HTML document. Send it with
/// [`Page::headers`], whatever the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub html: String,
}

/// The page's only style: allowed by its hash, so the policy allows no
/// other inline style and no script at all.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;\
padding:0 1em;color:#1f2933;line-height:1.5}h1{font-size:1.4em}\
table{border-collapse:collapse;margin:1em 0}th,td{text-align:left;padding:.3em .8em;\
border-bottom:1px solid #d9e2ec;vertical-align:top}.v{font-family:ui-monospace,monospace;\
white-space:pre-wrap;word-break:break-all}.meta{color:#52606d;font-size:.9em}\
button{font-size:1em;padding:.5em 1.2em;background:#1f5faa;color:#fff;border:0;\
border-radius:4px;cursor:pointer}";

static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

impl Page {
    /// The headers every answer carries.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Content-Type", "text/html; charset=utf-8".into()),
            ("Cache-Control", "no-store".into()),
            ("Content-Security-Policy", CSP.clone()),
            ("Referrer-Policy", "no-referrer".into()),
            ("X-Content-Type-Options", "nosniff".into()),
        ]
    }

    /// `body` is HTML whose values the caller escaped; `title` is escaped here.
    fn new(status: u16, title: &str, body: &str) -> Self {
        Self {
            status,
            html: format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
                 <meta name=\"robots\" content=\"noindex\">\
                 <title>{t} · hubwarp</title><style>{STYLE}</style></head>\
                 <body><h1>{t}</h1>\n{body}\n<p class=\"meta\">hubwarp: HubSpot and WARP \
                 in step.</p></body></html>\n",
                t = esc(title)
            ),
        }
    }
}

/// The link's method: only `Post` acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// Any other method: the link is opened (`GET`) or its form sent (`POST`).
pub fn not_allowed() -> Page {
    crate::metrics::review_link("method");
    Page::new(
        405,
        "Open the link from the e-mail",
        "<p>This address only shows a conflict and takes its form. Nothing was changed.</p>",
    )
}

/// `GET /review/{token}` at `now` (epoch seconds): the conflict as it is
/// now and a button, or why the link does nothing. Writes nothing: it asks
/// nothing of the store that writes a resolution, a baseline or the log.
pub async fn get<W, H, S>(
    ports: &Ports<'_, W, H, S>,
    key: &ReviewKey,
    token: &str,
    now: i64,
) -> Page
where
    W: WarpApi,
    H: HubspotCompanies,
    S: ConflictQueue + ClosedConflicts,
{
    let log = Log::new(token, Method::Get);
    let (claims, conflict) = match check(ports, key, token, now, &log).await {
        Ok(open) => open,
        Err(page) => return page,
    };
    match current(ports, &conflict).await {
        Ok(now_values) => {
            log.decided(
                Some(&claims),
                200,
                "shown",
                &format!("{} {}", conflict.customer_id, conflict.field),
            );
            open_page(&claims, &conflict, &now_values)
        }
        Err(e) => error_page(&log, &claims, &e, false),
    }
}

/// `POST /review/{token}` at `now` (epoch seconds): the link's choice
/// applied through [`conflicts::resolve`], or why the link does nothing.
pub async fn post<W, H, S>(
    ports: &Ports<'_, W, H, S>,
    key: &ReviewKey,
    token: &str,
    now: i64,
) -> Page
where
    W: WarpApi,
    H: HubspotCompanies,
    S: ConflictQueue + ConflictReview + FieldStateStore + SyncLog + ClosedConflicts,
{
    let log = Log::new(token, Method::Post);
    let (claims, conflict) = match check(ports, key, token, now, &log).await {
        Ok(open) => open,
        Err(page) => return page,
    };
    let note = format!("resolved by {} via e-mail link", claims.recipient());
    let choice = Choice {
        take: claims.take(),
        by: claims.recipient(),
        note: Some(&note),
    };
    let id = conflict.id();
    match conflicts::resolve(
        ports.warp,
        ports.hubspot,
        ports.store,
        ports.mappings,
        &id,
        &choice,
    )
    .await
    {
        Ok(done) => {
            log.decided(Some(&claims), 200, "resolved", &done.wrote);
            resolved_page(&claims, &done, now)
        }
        // Closed between the check and the write (resolved or replaced
        // meanwhile): say how it stands now. Else the customer or company
        // is gone.
        Err(e @ OperateError::NotFound(_)) => match closed_page(ports, &claims, &log).await {
            Some(page) => page,
            None => error_page(&log, &claims, &e, true),
        },
        Err(e) => error_page(&log, &claims, &e, true),
    }
}

/// The token's claims and the open conflict it names, or the page that
/// says why the link does nothing.
async fn check<W, H, S>(
    ports: &Ports<'_, W, H, S>,
    key: &ReviewKey,
    token: &str,
    now: i64,
    log: &Log,
) -> Result<(Claims, ConflictRecord), Page>
where
    S: ConflictQueue + ClosedConflicts,
{
    let claims = match verify(key, token, now) {
        Ok(claims) => claims,
        Err(TokenError::Expired { at }) => {
            log.decided(None, 410, "expired", "");
            return Err(Page::new(
                410,
                "This link has expired",
                &format!(
                    "<p>It worked until {}. Nothing was changed.</p>\
                     <p>Tonight's e-mail carries new links for every conflict still open; \
                     an operator can also settle it with <code>hubwarp conflicts</code>.</p>",
                    esc(&crate::time::iso(at.saturating_mul(1000)))
                ),
            ));
        }
        Err(e @ (TokenError::Malformed | TokenError::Tampered)) => {
            let why = if e == TokenError::Tampered {
                "tampered"
            } else {
                "malformed"
            };
            log.decided(None, 400, why, "");
            return Err(Page::new(
                400,
                "This link is not valid",
                "<p>It was changed after it was sent, or it was cut short when it was \
                 copied. Nothing was changed.</p><p>Open the link from the e-mail itself, \
                 or use tonight's e-mail.</p>",
            ));
        }
    };
    match conflicts::find(ports.store, claims.conflict_id()).await {
        Ok(conflict) if conflict.id() == claims.conflict_id() => Ok((claims, conflict)),
        Ok(_) | Err(OperateError::NotFound(_) | OperateError::Invalid(_)) => {
            match closed_page(ports, &claims, log).await {
                Some(page) => Err(page),
                None => {
                    log.decided(Some(&claims), 404, "unknown", "");
                    Err(Page::new(
                        404,
                        "No such conflict",
                        &format!(
                            "<p>No conflict {} is recorded. Nothing was changed.</p>\
                             <p><code>hubwarp conflicts list</code> shows the open ones.</p>",
                            esc(claims.conflict_id())
                        ),
                    ))
                }
            }
        }
        Err(e) => Err(error_page(log, &claims, &e, false)),
    }
}

/// The page of a conflict that is closed, or `None` when none has the id
/// (or it could not be read: then the error page).
async fn closed_page<W, H, S>(
    ports: &Ports<'_, W, H, S>,
    claims: &Claims,
    log: &Log,
) -> Option<Page>
where
    S: ClosedConflicts,
{
    match ports.store.closed_conflict(claims.conflict_id()).await {
        Ok(Some(Closed::Resolved(r))) => {
            log.decided(Some(claims), 409, "already-resolved", &r.take);
            let side = if r.take == Take::Warp.as_str() {
                "WARP"
            } else {
                "HubSpot"
            };
            Some(Page::new(
                409,
                "This conflict is already resolved",
                &format!(
                    "<p>Resolved by <strong>{}</strong> at {}: took {}'s value, {}. \
                     Nothing was changed now.</p>{}",
                    esc(&r.by),
                    esc(&crate::time::iso(r.at_ms)),
                    side,
                    value_html(&warp_text(&r.value)),
                    r.note
                        .as_deref()
                        .map(|n| format!("<p class=\"meta\">Note: {}</p>", esc(n)))
                        .unwrap_or_default(),
                ),
            ))
        }
        Ok(Some(Closed::Superseded)) => {
            log.decided(Some(claims), 409, "superseded", "");
            Some(Page::new(
                409,
                "This conflict was replaced",
                "<p>A newer disagreement of the same field replaced it, so this link no \
                 longer applies. Nothing was changed.</p><p>Tonight's e-mail has the \
                 newer conflict and its link.</p>",
            ))
        }
        Ok(None) => None,
        Err(e) => Some(error_page(log, claims, &e.into(), false)),
    }
}

/// Both sides' values of the conflict's field, read now.
struct Current {
    company_name: Option<String>,
    ban: String,
    property: String,
    warp: String,
    hubspot: String,
    agree: bool,
}

/// Reads the conflict's field again from WARP and HubSpot (as `resolve`
/// will), writing nothing.
async fn current<W, H, S>(
    ports: &Ports<'_, W, H, S>,
    conflict: &ConflictRecord,
) -> Result<Current, OperateError>
where
    W: WarpApi,
    H: HubspotCompanies,
{
    let conflicts::FieldNow {
        customer,
        mapping,
        hubspot_raw,
        ..
    } = conflicts::field_now(ports.warp, ports.hubspot, ports.mappings, conflict).await?;
    let warp_value = mapping
        .warp
        .get(&customer.raw)
        .cloned()
        .unwrap_or(Value::Null);
    let agree = mapping
        .value_type
        .hubspot_to_warp(&hubspot_raw)
        .is_ok_and(|h| mapping.value_type.same_warp_value(&warp_value, &h));
    Ok(Current {
        company_name: customer
            .raw
            .get("company_name")
            .and_then(Value::as_str)
            .map(str::to_string),
        ban: customer.ban.clone(),
        property: mapping.hubspot.clone(),
        warp: value_text(&warp_value),
        hubspot: if hubspot_raw.is_empty() {
            "(none)".into()
        } else {
            hubspot_raw
        },
        agree,
    })
}

fn side(take: Take) -> &'static str {
    match take {
        Take::Warp => "WARP",
        Take::Hubspot => "HubSpot",
    }
}

fn open_page(claims: &Claims, conflict: &ConflictRecord, now: &Current) -> Page {
    let take = claims.take();
    let mut b = String::new();
    let _ = write!(
        b,
        "<p>WARP and HubSpot disagree on <strong>{}</strong> (HubSpot property <code>{}</code>) \
         of {}BAN {}. The disagreement was found at {}.</p>",
        esc(&conflict.field),
        esc(&now.property),
        now.company_name
            .as_deref()
            .map(|n| format!("<strong>{}</strong>, ", esc(n)))
            .unwrap_or_default(),
        esc(&now.ban),
        esc(&crate::time::iso(conflict.hubspot_occurred_at)),
    );
    let _ = write!(
        b,
        "<table><tr><th>WARP holds now</th><td class=\"v\">{}</td></tr>\
         <tr><th>HubSpot holds now</th><td class=\"v\">{}</td></tr></table>",
        esc(&now.warp),
        esc(&now.hubspot),
    );
    if now.agree {
        let _ = write!(
            b,
            "<p>Both sides hold the same value now: pressing the button writes nothing and \
             closes the conflict.</p>"
        );
    }
    let effect = match take {
        Take::Warp => format!(
            "keep WARP's value, {}, and write it to HubSpot",
            value_html(&now.warp)
        ),
        Take::Hubspot => format!(
            "take HubSpot's value, {}, and write it to WARP",
            value_html(&now.hubspot)
        ),
    };
    let _ = write!(
        b,
        "<p>You are <strong>{}</strong>. This link will {effect}; the choice is recorded \
         in your name. Nothing has changed yet.</p>\
         <form method=\"post\"><button type=\"submit\">{}</button></form>",
        esc(claims.recipient()),
        match take {
            Take::Warp => "Keep WARP's value",
            Take::Hubspot => "Take HubSpot's value",
        },
    );
    Page::new(200, "A conflict waits for your choice", &b)
}

fn resolved_page(claims: &Claims, done: &Resolved, now: i64) -> Page {
    let wrote = match done.wrote.as_str() {
        "warp" => "WARP was updated.",
        "hubspot" => "HubSpot was updated.",
        _ => "Both sides already held it; nothing needed writing.",
    };
    Page::new(
        200,
        "Done",
        &format!(
            "<p>Took {}'s value for <strong>{}</strong>: WARP and HubSpot now both hold {}. \
             {wrote}</p><p>Resolved by <strong>{}</strong> at {}. The sync log and \
             <code>hubwarp explain {}</code> show the decision.</p>",
            side(done.take),
            esc(&done.field),
            value_html(&value_text(&done.value)),
            esc(claims.recipient()),
            esc(&crate::time::iso(now.saturating_mul(1000))),
            esc(&done.customer_id),
        ),
    )
}

/// A system failed (or the conflict cannot be settled from a link). A
/// person's input is at fault in neither case, so no 4xx but for what the
/// link itself cannot do.
fn error_page(log: &Log, claims: &Claims, e: &OperateError, acting: bool) -> Page {
    let (status, title, body) = match e {
        OperateError::NotFound(m) | OperateError::Invalid(m) => (
            409,
            "This conflict cannot be settled from a link",
            format!(
                "<p>{}.</p><p>Nothing was changed. An operator can settle it with \
                 <code>hubwarp conflicts</code>.</p>",
                esc(m.trim_end_matches('.'))
            ),
        ),
        OperateError::Warp(WarpError::PreconditionFailed) => (
            409,
            "WARP changed meanwhile",
            "<p>The customer was edited in WARP while this choice was being written. \
             Open the link again to see both values as they are now.</p>"
                .to_string(),
        ),
        _ => (
            503,
            "Try again in a few minutes",
            format!(
                "<p>{} did not answer as expected{}.</p><p>Open the link again later: it \
                 shows where the conflict stands.</p>",
                match e {
                    OperateError::Warp(_) => "WARP",
                    OperateError::Hubspot(HubspotError::DailyLimit { .. }) => {
                        "HubSpot (its daily limit is spent)"
                    }
                    OperateError::Hubspot(_) => "HubSpot",
                    _ => "The bridge's store",
                },
                if acting {
                    "; the choice may be partly applied"
                } else {
                    "; nothing was changed"
                }
            ),
        ),
    };
    warn!(
        target: "hubwarp::review",
        method = log.method.as_str(),
        token = %log.fingerprint,
        conflict_id = claims.conflict_id(),
        take = claims.take().as_str(),
        recipient_domain = domain(claims.recipient()),
        status,
        error = %e,
        "review link failed"
    );
    Page::new(status, title, &body)
}

/// A value shown inline, escaped.
fn value_html(text: &str) -> String {
    format!("<code>{}</code>", esc(text))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) if s.is_empty() => "(none)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value held as JSON text ([`crate::store::sync::Resolution::value`]).
fn warp_text(json: &str) -> String {
    serde_json::from_str::<Value>(json).map_or_else(|_| json.to_string(), |v| value_text(&v))
}

/// One log line per decision, naming the token by its fingerprint.
struct Log {
    method: Method,
    fingerprint: String,
}

impl Log {
    fn new(token: &str, method: Method) -> Self {
        Self {
            method,
            fingerprint: fingerprint(token),
        }
    }

    fn decided(&self, claims: Option<&Claims>, status: u16, decision: &'static str, detail: &str) {
        crate::metrics::review_link(decision);
        info!(
            target: "hubwarp::review",
            method = self.method.as_str(),
            token = %self.fingerprint,
            conflict_id = claims.map(Claims::conflict_id),
            take = claims.map(|c| c.take().as_str()),
            recipient_domain = claims.map(|c| domain(c.recipient())),
            status,
            decision,
            detail,
            "review link"
        );
    }
}

#[cfg(test)]
mod tests;
