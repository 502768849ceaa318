//! HubSpot webhook payloads: parsing a delivery body into events, and the
//! dedup key that identifies one change across redeliveries.
//!
//! HubSpot sends two formats. Legacy subscriptions name the object in the
//! type (`company.propertyChange`); subscriptions of apps on the developer
//! platform send `object.propertyChange` and name the object type in
//! `objectTypeId` (`0-2` for companies). A company event in the generic
//! format is read as its `company.*` counterpart ([`WebhookEvent::normalise`]),
//! so everything past the parser, the queue message included, sees one
//! vocabulary; `objectTypeId` stays on the event to say how it came.
//!
//! Strings borrow from the body where they can (`Cow`), so parsing a
//! 100-event delivery allocates little beyond the event vector.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

/// One event of a delivery, as HubSpot sends it, minus `attemptNumber`
/// semantics: retries must not look like new changes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent<'a> {
    #[serde(deserialize_with = "id")]
    pub event_id: u64,
    #[serde(deserialize_with = "id")]
    pub subscription_id: u64,
    #[serde(deserialize_with = "id")]
    pub portal_id: u64,
    #[serde(
        default,
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub app_id: Option<u64>,
    /// Epoch milliseconds of the change in HubSpot; the only ordering HubSpot
    /// gives.
    pub occurred_at: i64,
    /// `subscriptionType`, or `eventType` in older payloads; always filled
    /// after [`parse_delivery`].
    #[serde(borrow, alias = "eventType")]
    pub subscription_type: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_number: Option<u32>,
    #[serde(deserialize_with = "id")]
    pub object_id: u64,
    #[serde(
        borrow,
        default,
        deserialize_with = "opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub change_source: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub change_flag: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_id: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub property_name: Option<Cow<'a, str>>,
    /// Always a string in HubSpot's payloads; `""` means the value was cleared.
    #[serde(
        borrow,
        default,
        deserialize_with = "opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub property_value: Option<Cow<'a, str>>,
    #[serde(
        default,
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub primary_object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_object_ids: Option<Vec<u64>>,
    #[serde(
        default,
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub new_object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_properties_moved: Option<u32>,
    #[serde(
        borrow,
        default,
        deserialize_with = "opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub association_type: Option<Cow<'a, str>>,
    #[serde(
        default,
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub from_object_id: Option<u64>,
    #[serde(
        default,
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub to_object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_removed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_primary_association: Option<bool>,
    /// HubSpot's object type id (`0-2` companies, `0-1` contacts, `2-...`
    /// custom objects), sent only with the generic `object.*` format: its
    /// presence is what says an event came in that format, after
    /// [`WebhookEvent::normalise`] has renamed a company event's type.
    /// Last on purpose: declared beside `objectId`, it made the derived
    /// parser 18% slower on deliveries without it (`parse_only/100` of
    /// `make bench`, 57.6 -> 68.1 µs); here it costs nothing measurable.
    #[serde(
        borrow,
        default,
        deserialize_with = "opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub object_type_id: Option<Cow<'a, str>>,
}

impl WebhookEvent<'_> {
    /// The object part of the subscription type (`company` in
    /// `company.propertyChange`).
    pub fn object_type(&self) -> &str {
        self.subscription_type
            .split_once('.')
            .map_or(&*self.subscription_type, |(o, _)| o)
    }

    /// The action part (`propertyChange` in `company.propertyChange`).
    pub fn action(&self) -> &str {
        self.subscription_type
            .split_once('.')
            .map_or("", |(_, a)| a)
    }

    /// Whether the event came in the generic format (`object.*` with
    /// `objectTypeId`), whatever its type reads as now.
    pub fn is_generic(&self) -> bool {
        self.object_type_id.is_some()
    }

    /// Reads a generic event about a company as its `company.*`
    /// counterpart, which means the same: `object.propertyChange` with
    /// `objectTypeId` `0-2` becomes `company.propertyChange`. Other object
    /// types keep their generic type (and are not synced). Idempotent; the
    /// new type is a static string, so nothing is allocated.
    pub fn normalise(&mut self) {
        if self.object_type_id.as_deref() == Some(COMPANY_TYPE_ID)
            && let Some(action) = self.subscription_type.strip_prefix("object.")
            && let Some(ty) = company_type(action)
        {
            self.subscription_type = Cow::Borrowed(ty);
        }
    }

    /// The key that names this change, whatever delivery brought it.
    ///
    /// `portal:object:type:occurredAt:detail`, the detail being the
    /// property, the association, or the merged companies. It names the
    /// change, not the notification: neither `subscriptionId` nor `eventId`
    /// (which is not unique anyway) is part of it, nor `attemptNumber`.
    /// An app subscribed to a change in both formats gets it twice, under
    /// two subscriptions and two event ids; with the type normalised, both
    /// copies have this one key, so the second is a duplicate like any
    /// redelivery. The value is left out (it is not needed to tell changes
    /// apart, and keys are logged). Kept readable so an operator can find an
    /// event in the table by eye; the free-text parts are escaped so no two
    /// changes share a key.
    pub fn dedup_key(&self) -> String {
        // Hot path (100 keys per delivery): itoa and one allocation instead
        // of `format!`, which costs several times more here.
        let mut key = String::with_capacity(
            3 * 21
                + self.subscription_type.len()
                + self.property_name.as_deref().map_or(48, str::len)
                + 8,
        );
        let mut num = itoa::Buffer::new();
        key.push_str(num.format(self.portal_id));
        key.push(':');
        key.push_str(num.format(self.object_id));
        key.push(':');
        push_escaped(&mut key, &self.subscription_type);
        // A generic type left as it came names its object only here:
        // contact 42 and deal 42 are different objects.
        if self.subscription_type.starts_with("object.")
            && let Some(type_id) = &self.object_type_id
        {
            key.push('/');
            push_escaped(&mut key, type_id);
        }
        key.push(':');
        key.push_str(num.format(self.occurred_at));
        key.push(':');
        if let Some(property) = &self.property_name {
            push_escaped(&mut key, property);
        } else if let Some(assoc) = &self.association_type {
            push_escaped(&mut key, assoc);
            for n in [self.from_object_id, self.to_object_id] {
                key.push('/');
                key.push_str(num.format(n.unwrap_or_default()));
            }
            key.push_str(if self.association_removed == Some(true) {
                "/removed"
            } else {
                "/added"
            });
        } else if let Some(merged) = self.merged_object_ids.as_deref().filter(|m| !m.is_empty()) {
            // Two merges into one company in the same millisecond are two
            // changes; the order HubSpot lists them in is not.
            let mut merged = merged.to_vec();
            merged.sort_unstable();
            for (i, id) in merged.iter().enumerate() {
                if i > 0 {
                    key.push('/');
                }
                key.push_str(num.format(*id));
            }
        } else {
            key.push('-');
        }
        key
    }

    pub fn into_owned(self) -> WebhookEvent<'static> {
        fn own(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            c.map(|c| Cow::Owned(c.into_owned()))
        }
        WebhookEvent {
            event_id: self.event_id,
            subscription_id: self.subscription_id,
            portal_id: self.portal_id,
            app_id: self.app_id,
            occurred_at: self.occurred_at,
            subscription_type: Cow::Owned(self.subscription_type.into_owned()),
            attempt_number: self.attempt_number,
            object_id: self.object_id,
            object_type_id: own(self.object_type_id),
            change_source: own(self.change_source),
            change_flag: own(self.change_flag),
            source_id: own(self.source_id),
            property_name: own(self.property_name),
            property_value: own(self.property_value),
            primary_object_id: self.primary_object_id,
            merged_object_ids: self.merged_object_ids,
            new_object_id: self.new_object_id,
            number_of_properties_moved: self.number_of_properties_moved,
            association_type: own(self.association_type),
            from_object_id: self.from_object_id,
            to_object_id: self.to_object_id,
            association_removed: self.association_removed,
            is_primary_association: self.is_primary_association,
        }
    }
}

/// HubSpot's object type id of companies, as generic events give it.
pub const COMPANY_TYPE_ID: &str = "0-2";

/// The legacy type with the same meaning as a generic company action.
fn company_type(action: &str) -> Option<&'static str> {
    Some(match action {
        "propertyChange" => "company.propertyChange",
        "creation" => "company.creation",
        "deletion" => "company.deletion",
        "merge" => "company.merge",
        "restore" => "company.restore",
        "associationChange" => "company.associationChange",
        _ => return None,
    })
}

fn push_escaped(out: &mut String, s: &str) {
    if !s.bytes().any(|b| matches!(b, b':' | b'%' | b'/')) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
}

/// Why a body is not a HubSpot delivery. The text names the event index and
/// field, and never echoes values from the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    Syntax(String),
    #[error("body is JSON but not an array of HubSpot events")]
    NotAnArray,
    #[error("event {index}: {reason}")]
    Event { index: usize, reason: String },
}

/// Parses a delivery body: a JSON array of HubSpot event objects.
///
/// The fast path is a single typed parse. Only when it fails is the body
/// parsed again, to say precisely which event and field are wrong.
pub fn parse_delivery(body: &[u8]) -> Result<Vec<WebhookEvent<'_>>, PayloadError> {
    shallow(body)?;
    let mut events: Vec<WebhookEvent<'_>> = match sonic_rs::from_slice(body) {
        Ok(events) => events,
        Err(_) => return Err(explain(body)),
    };
    for (index, event) in events.iter_mut().enumerate() {
        validate(event).map_err(|reason| PayloadError::Event { index, reason })?;
        event.normalise();
    }
    Ok(events)
}

/// Deepest nesting a delivery may have. HubSpot's events are flat objects in
/// an array (depth 2); room is left for nested values in fields it adds.
pub const MAX_DEPTH: usize = 32;

/// Refuses a body nested deeper than [`MAX_DEPTH`] before any parser sees
/// it: the fast parser recurses without a limit, and a megabyte of `[`
/// would overflow the stack and kill the function, for every retry. One
/// pass over the bytes, strings skipped.
fn shallow(body: &[u8]) -> Result<(), PayloadError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(PayloadError::Syntax(format!(
                        "nested deeper than {MAX_DEPTH} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn validate(event: &WebhookEvent<'_>) -> Result<(), String> {
    let ty = &event.subscription_type;
    let well_formed = ty
        .split_once('.')
        .is_some_and(|(o, a)| !o.is_empty() && !a.is_empty() && !a.contains('.'));
    if !well_formed {
        return Err(format!(
            "subscriptionType must look like object.action (got {} characters)",
            ty.len()
        ));
    }
    if event.action() == "propertyChange"
        && event.property_name.as_deref().is_none_or(str::is_empty)
    {
        return Err("propertyChange event without propertyName".into());
    }
    if event.occurred_at <= 0 {
        return Err("occurredAt must be positive epoch milliseconds".into());
    }
    // Without its type id a generic event names no kind of object. An
    // association change names two, in fields of its own.
    if event.subscription_type.starts_with("object.")
        && event.action() != "associationChange"
        && event.object_type_id.as_deref().is_none_or(str::is_empty)
    {
        return Err(format!(
            "{} event without objectTypeId",
            delivery::redact_type(&event.subscription_type)
        ));
    }
    Ok(())
}

/// What the project does with a subscription type. Only company events the
/// consumer applies are queued (generic ones once [`WebhookEvent::normalise`]
/// has named them so); anything else HubSpot sends (contacts, other object
/// types, association changes, types it adds later) is recorded and left
/// there.
pub fn is_synced(event: &WebhookEvent<'_>) -> bool {
    event.object_type() == "company"
        && matches!(
            event.action(),
            "propertyChange" | "creation" | "deletion" | "restore" | "merge"
        )
}

/// serde quotes the offending value (`invalid type: string "soon"`); the
/// reason goes to logs and answers, which never echo the payload, so every
/// quoted part is blanked. Field names are quoted with backticks and stay.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for c in msg.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// Slow path: find out what is wrong with a body the typed parse refused.
fn explain(body: &[u8]) -> PayloadError {
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return PayloadError::Syntax(format!(
                "{} at line {} column {}",
                classify(&e),
                e.line(),
                e.column()
            ));
        }
    };
    let serde_json::Value::Array(items) = value else {
        return PayloadError::NotAnArray;
    };
    for (index, item) in items.iter().enumerate() {
        if !item.is_object() {
            return PayloadError::Event {
                index,
                reason: "not a JSON object".into(),
            };
        }
        let text = item.to_string();
        let de = &mut serde_json::Deserializer::from_str(&text);
        if let Err(e) = serde_path_to_error::deserialize::<_, WebhookEvent<'_>>(de) {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let reason = if path == "." || path.is_empty() {
                strip_position(&inner.to_string())
            } else {
                format!("field {path}: {}", strip_position(&inner.to_string()))
            };
            return PayloadError::Event { index, reason };
        }
    }
    // The fast parser refused what the slow one accepts (it is stricter about
    // a few encodings): say so rather than guess.
    PayloadError::Syntax("body could not be read as HubSpot events".into())
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Data => "unexpected data",
    }
}

/// serde_json appends "at line X column Y" of the re-serialised event, which
/// would mislead; the event index says where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// HubSpot ids are JSON numbers; a few integrations send them as strings.
/// A visitor rather than an untagged enum: this runs five times per event on
/// the hot path, and untagged enums buffer every value first.
fn id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct IdVisitor;
    impl serde::de::Visitor<'_> for IdVisitor {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative integer id")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom("expected a non-negative integer id"))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            v.parse()
                .map_err(|_| E::custom("expected a non-negative integer id"))
        }
    }
    d.deserialize_any(IdVisitor)
}

/// serde only borrows a bare `Cow<str>`; inside an `Option` it copies. The
/// newtype keeps the borrow for the optional strings of every event.
fn opt_str<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "id")] u64);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

mod delivery;

pub use delivery::{
    Delivery, Disposition, EventSummary, RAW_EVENT_LIMIT, Unhandled, read_delivery,
};

#[cfg(test)]
mod tests;
