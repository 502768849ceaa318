//! HubSpot webhook payloads: parsing a delivery body into events, and the
//! dedup key that identifies one change across redeliveries.
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

    /// The key that names this change, whatever delivery brought it.
    ///
    /// Built from the fields that identify a change (portal, subscription,
    /// event id, object, occurredAt, type, and the property or association it
    /// touched) and never from `attemptNumber`, because `eventId` alone is not
    /// unique. Kept readable so an operator can find an event in the table by
    /// eye; the free-text parts are escaped so no two changes share a key.
    pub fn dedup_key(&self) -> String {
        // Hot path (100 keys per delivery): itoa and one allocation instead
        // of `format!`, which costs several times more here.
        let mut key = String::with_capacity(
            5 * 21
                + self.subscription_type.len()
                + self.property_name.as_deref().map_or(48, str::len)
                + 8,
        );
        let mut num = itoa::Buffer::new();
        for n in [
            self.portal_id,
            self.subscription_id,
            self.event_id,
            self.object_id,
        ] {
            key.push_str(num.format(n));
            key.push(':');
        }
        key.push_str(num.format(self.occurred_at));
        key.push(':');
        push_escaped(&mut key, &self.subscription_type);
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
    let events: Vec<WebhookEvent<'_>> = match sonic_rs::from_slice(body) {
        Ok(events) => events,
        Err(_) => return Err(explain(body)),
    };
    for (index, event) in events.iter().enumerate() {
        validate(event).map_err(|reason| PayloadError::Event { index, reason })?;
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
    Ok(())
}

/// What the project does with a subscription type. Only company events the
/// consumer applies are queued; anything else HubSpot sends (contacts,
/// association changes, types it adds later) is recorded and left there.
pub fn is_synced(event: &WebhookEvent<'_>) -> bool {
    event.object_type() == "company"
        && matches!(
            event.action(),
            "propertyChange" | "creation" | "deletion" | "restore" | "merge"
        )
}

/// Why an event of a verified delivery is recorded but not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Read fine; the project does not act on it (association changes,
    /// other objects, types HubSpot adds later).
    Ignored,
    /// Not a shape the project can read (a field missing or of the wrong
    /// type, an impossible value).
    Unreadable,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ignored => "IGNORED",
            Self::Unreadable => "UNREADABLE",
        }
    }
}

/// What identifies an unhandled event to an operator; every part optional
/// because an unreadable event may lack any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSummary {
    pub portal_id: Option<u64>,
    pub subscription_id: Option<u64>,
    pub event_id: Option<u64>,
    pub object_id: Option<u64>,
    pub occurred_at: Option<i64>,
    pub subscription_type: Option<String>,
}

/// An event of a delivery that is recorded with its reason and never queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhandled {
    /// Position in the delivery body.
    pub index: usize,
    pub disposition: Disposition,
    /// Stable across redeliveries, so a retried delivery records it once.
    pub dedup_key: String,
    /// Names fields, never echoes values.
    pub reason: String,
    pub summary: EventSummary,
    /// The event as received (as parsed, when it parsed but failed a
    /// check), cut to [`RAW_EVENT_LIMIT`] bytes; only for unreadable
    /// events, which someone may need to read by hand.
    pub raw: Option<String>,
}

/// Bytes of an unreadable event kept on its record: enough to see its
/// shape, bounded so one odd event cannot approach DynamoDB's item limit.
pub const RAW_EVENT_LIMIT: usize = 4096;

/// A verified delivery, sorted: the events to queue, and the others.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery<'a> {
    /// Events the project acts on, in body order.
    pub events: Vec<WebhookEvent<'a>>,
    /// Events recorded with a status and reason, never queued.
    pub unhandled: Vec<Unhandled>,
}

impl Delivery<'_> {
    /// Events in the body.
    pub fn len(&self) -> usize {
        self.events.len() + self.unhandled.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads a delivery body tolerantly: only a body that is not a JSON array
/// of objects is refused. Inside the array, an event the project does not
/// act on, or cannot read, is sorted into [`Delivery::unhandled`] instead of
/// failing the delivery: HubSpot batches every subscribed type into one
/// request, and refusing it would lose the changes batched with it.
///
/// The fast path is the same single typed parse as [`parse_delivery`]. Only
/// when it fails is the array split into its objects, each parsed on its
/// own, and only the objects that still fail are classified (slowly).
pub fn read_delivery(body: &[u8]) -> Result<Delivery<'_>, PayloadError> {
    shallow(body)?;
    if let Ok(events) = sonic_rs::from_slice::<Vec<WebhookEvent<'_>>>(body) {
        let mut delivery = Delivery {
            events: Vec::with_capacity(events.len()),
            unhandled: Vec::new(),
        };
        for (index, event) in events.into_iter().enumerate() {
            sort_typed(index, event, &mut delivery);
        }
        return Ok(delivery);
    }
    // The array itself must be readable: anything else is not a delivery.
    let items: Vec<sonic_rs::LazyValue<'_>> = match sonic_rs::from_slice(body) {
        Ok(items) => items,
        Err(_) => {
            return Err(match explain(body) {
                // `explain` found the array readable and blames an event:
                // the fast parser is stricter about a few encodings.
                PayloadError::Event { .. } => {
                    PayloadError::Syntax("body could not be read as a JSON array".into())
                }
                other => other,
            });
        }
    };
    let mut delivery = Delivery::default();
    for (index, item) in items.iter().enumerate() {
        let raw = item.as_raw_str();
        if !raw.trim_start().starts_with('{') {
            return Err(PayloadError::Event {
                index,
                reason: "not a JSON object".into(),
            });
        }
        match sonic_rs::from_str::<WebhookEvent<'_>>(raw) {
            // Borrowed from the split array, which is dropped on return.
            Ok(event) => sort_typed(index, event.into_owned(), &mut delivery),
            Err(_) => delivery.unhandled.push(classify_object(index, raw)),
        }
    }
    Ok(delivery)
}

/// An event that parsed: queued, ignored, or (values out of range)
/// unreadable. Its dedup key is the usual one, so keys stay stable.
fn sort_typed<'a>(index: usize, event: WebhookEvent<'a>, out: &mut Delivery<'a>) {
    let (disposition, reason) = match validate(&event) {
        Err(reason) => (Disposition::Unreadable, reason),
        Ok(()) if is_synced(&event) => {
            out.events.push(event);
            return;
        }
        Ok(()) => (Disposition::Ignored, not_synced_reason(&event)),
    };
    out.unhandled
        .push(Unhandled::of(index, &event, disposition, reason));
}

impl Unhandled {
    /// An event that parsed but is not queued, with its usual dedup key (so
    /// keys stay stable) and, when unreadable, the event cut to size.
    pub fn of(
        index: usize,
        event: &WebhookEvent<'_>,
        disposition: Disposition,
        reason: String,
    ) -> Self {
        let raw = (disposition == Disposition::Unreadable)
            .then(|| serde_json::to_string(event).map(|t| bounded(&t)).ok())
            .flatten();
        Unhandled {
            index,
            disposition,
            dedup_key: event.dedup_key(),
            reason,
            summary: EventSummary {
                portal_id: Some(event.portal_id),
                subscription_id: Some(event.subscription_id),
                event_id: Some(event.event_id),
                object_id: Some(event.object_id),
                occurred_at: Some(event.occurred_at),
                subscription_type: Some(redact_type(&event.subscription_type).to_string()),
            },
            raw,
        }
    }
}

fn not_synced_reason(event: &WebhookEvent<'_>) -> String {
    if event.action() == "associationChange" {
        "association changes are not synced (WARP has no associations)".into()
    } else {
        format!(
            "subscription type {} is not synced",
            redact_type(&event.subscription_type)
        )
    }
}

/// A subscription type goes into reasons and logs only when it looks like
/// one (`object.action`, short, plain characters); anything else is
/// outside input we do not echo.
fn redact_type(ty: &str) -> &str {
    let plain = ty.len() <= 64
        && ty
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if plain { ty } else { "(not shown)" }
}

/// An association change, read with its own fields: it names two objects
/// and carries no `objectId`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssociationChange {
    #[serde(deserialize_with = "id")]
    event_id: u64,
    #[serde(deserialize_with = "id")]
    subscription_id: u64,
    #[serde(deserialize_with = "id")]
    portal_id: u64,
    occurred_at: i64,
    #[serde(alias = "eventType")]
    subscription_type: String,
    association_type: String,
    #[serde(deserialize_with = "id")]
    from_object_id: u64,
    #[serde(deserialize_with = "id")]
    to_object_id: u64,
    #[serde(default)]
    association_removed: Option<bool>,
}

impl AssociationChange {
    /// The same key [`WebhookEvent::dedup_key`] gives an association change
    /// that does carry `objectId` (HubSpot sets it to the "from" object).
    fn dedup_key(&self) -> String {
        WebhookEvent {
            event_id: self.event_id,
            subscription_id: self.subscription_id,
            portal_id: self.portal_id,
            app_id: None,
            occurred_at: self.occurred_at,
            subscription_type: Cow::Borrowed(&self.subscription_type),
            attempt_number: None,
            object_id: self.from_object_id,
            change_source: None,
            change_flag: None,
            source_id: None,
            property_name: None,
            property_value: None,
            primary_object_id: None,
            merged_object_ids: None,
            new_object_id: None,
            number_of_properties_moved: None,
            association_type: Some(Cow::Borrowed(&self.association_type)),
            from_object_id: Some(self.from_object_id),
            to_object_id: Some(self.to_object_id),
            association_removed: self.association_removed,
            is_primary_association: None,
        }
        .dedup_key()
    }
}

/// Slow path for one object the typed parse refused: an association change
/// read with its own fields, or an unreadable event keyed by its content.
fn classify_object(index: usize, raw: &str) -> Unhandled {
    // sonic accepted the object; serde_json may still refuse it (it is
    // stricter about a few encodings). Then only the raw bytes identify it.
    let value: Option<serde_json::Value> = serde_json::from_str(raw).ok();
    let summary = value.as_ref().map(summarize).unwrap_or_default();
    let is_association = summary
        .subscription_type
        .as_deref()
        .is_some_and(|t| t.ends_with(".associationChange"));
    if is_association
        && let Some(value) = &value
        && let Ok(a) = AssociationChange::deserialize(value)
    {
        return Unhandled {
            index,
            disposition: Disposition::Ignored,
            dedup_key: a.dedup_key(),
            reason: "association changes are not synced (WARP has no associations)".into(),
            summary: EventSummary {
                object_id: Some(a.from_object_id),
                ..summary
            },
            raw: None,
        };
    }
    let Some(value) = value else {
        return Unhandled {
            index,
            disposition: Disposition::Unreadable,
            dedup_key: content_key(None, raw, &summary),
            reason: "event could not be read as JSON by the slow parser".into(),
            summary,
            raw: Some(bounded(raw)),
        };
    };
    // From the text, not the value: a value keeps one of two repeated keys,
    // and an event that says `objectId` twice is refused, not guessed at.
    let mut text = serde_json::Deserializer::from_str(raw);
    let reason = match serde_path_to_error::deserialize::<_, WebhookEvent<'_>>(&mut text) {
        Err(e) => {
            let path = e.path().to_string();
            let inner = redact_quoted(&strip_position(&e.into_inner().to_string()));
            if path == "." || path.is_empty() {
                inner
            } else {
                format!("field {path}: {inner}")
            }
        }
        // The slow parser accepts what the fast one refused (it is laxer
        // about a few encodings): still not something to queue blind.
        Ok(_) => "event could not be read by the fast parser".into(),
    };
    Unhandled {
        index,
        disposition: Disposition::Unreadable,
        dedup_key: content_key(Some(&value), raw, &summary),
        reason,
        summary,
        raw: Some(bounded(raw)),
    }
}

fn summarize(value: &serde_json::Value) -> EventSummary {
    let num = |k: &str| {
        value.get(k).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    EventSummary {
        portal_id: num("portalId"),
        subscription_id: num("subscriptionId"),
        event_id: num("eventId"),
        object_id: num("objectId"),
        occurred_at: value.get("occurredAt").and_then(serde_json::Value::as_i64),
        subscription_type: value
            .get("subscriptionType")
            .or_else(|| value.get("eventType"))
            .and_then(serde_json::Value::as_str)
            .map(|t| redact_type(t).to_string()),
    }
}

/// The key of an event that cannot be read: portal and subscription when
/// present, and a SHA-256 of the object's content. The content is taken
/// with its keys sorted and without `attemptNumber`, which HubSpot raises
/// on every retry: a redelivery must land on the same record.
/// An object only sonic could read is hashed as its raw bytes.
fn content_key(value: Option<&serde_json::Value>, raw: &str, summary: &EventSummary) -> String {
    use sha2::Digest;
    let canonical = match value {
        Some(serde_json::Value::Object(map)) => {
            let sorted: std::collections::BTreeMap<&String, &serde_json::Value> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "attemptNumber")
                .collect();
            serde_json::to_string(&sorted).unwrap_or_else(|_| raw.to_string())
        }
        _ => raw.to_string(),
    };
    let digest = sha2::Sha256::digest(canonical.as_bytes());
    let part = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
    format!(
        "unreadable:{}:{}:{}",
        part(summary.portal_id),
        part(summary.subscription_id),
        hex::encode(digest)
    )
}

/// At most [`RAW_EVENT_LIMIT`] bytes, cut on a character boundary.
fn bounded(raw: &str) -> String {
    if raw.len() <= RAW_EVENT_LIMIT {
        return raw.to_string();
    }
    let mut end = RAW_EVENT_LIMIT;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    raw[..end].to_string()
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

#[cfg(test)]
mod tests;
