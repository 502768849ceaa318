//! The tolerant reading of a verified delivery: every event sorted into
//! queued, ignored (not acted on) or unreadable (with the reason and the
//! raw event, cut to size), so one odd event never costs the changes
//! batched with it. The strict parse and the event type live in the parent.

use std::borrow::Cow;

use serde::Deserialize;

use super::*;

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
fn sort_typed<'a>(index: usize, mut event: WebhookEvent<'a>, out: &mut Delivery<'a>) {
    let checked = validate(&event);
    // Only a readable event is renamed: an unreadable one is recorded as it
    // came, for the person who reads it.
    if checked.is_ok() {
        event.normalise();
    }
    let (disposition, reason) = match checked {
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
    let ty = redact_type(&event.subscription_type);
    match event.object_type_id.as_deref() {
        _ if event.action() == "associationChange" => ASSOCIATION_REASON.into(),
        // A generic company event of an action the project does not know is
        // named by its type, below, like any other.
        Some(type_id)
            if event.subscription_type.starts_with("object.") && type_id != COMPANY_TYPE_ID =>
        {
            format!(
                "{ty} events of object type {} are not synced (only companies, {COMPANY_TYPE_ID})",
                redact_type(type_id)
            )
        }
        _ => format!("subscription type {ty} is not synced"),
    }
}

const ASSOCIATION_REASON: &str = "association changes are not synced (WARP has no associations)";

/// A subscription type (or object type id) goes into reasons and logs only
/// when it looks like one (`object.action`, `0-2`: short, plain
/// characters); anything else is outside input we do not echo.
pub(super) fn redact_type(ty: &str) -> &str {
    let plain = ty.len() <= 64
        && ty
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if plain { ty } else { "(not shown)" }
}

/// An association change, read with its own fields: it names two objects
/// and carries no `objectId`. The legacy format names the association in
/// `associationType` (`COMPANY_TO_CONTACT`); the generic one by
/// `associationCategory` and `associationTypeId`, with the objects' types
/// in `fromObjectTypeId` and `toObjectTypeId`.
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
    #[serde(default)]
    association_type: Option<String>,
    #[serde(default)]
    association_category: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    association_type_id: Option<u64>,
    #[serde(default)]
    from_object_type_id: Option<String>,
    #[serde(deserialize_with = "id")]
    from_object_id: u64,
    #[serde(deserialize_with = "id")]
    to_object_id: u64,
    #[serde(default)]
    association_removed: Option<bool>,
}

impl AssociationChange {
    /// What the key calls the association: its legacy name, else the
    /// generic category and id (`HUBSPOT_DEFINED.280`).
    fn label(&self) -> Cow<'_, str> {
        match (&self.association_type, &self.association_type_id) {
            (Some(name), _) => Cow::Borrowed(name),
            (None, Some(id)) => Cow::Owned(format!(
                "{}.{id}",
                self.association_category.as_deref().unwrap_or("-")
            )),
            (None, None) => Cow::Borrowed("-"),
        }
    }

    /// The same key [`WebhookEvent::dedup_key`] gives an association change
    /// that does carry `objectId` (HubSpot sets it to the "from" object).
    fn dedup_key(&self) -> String {
        let mut event = WebhookEvent {
            event_id: self.event_id,
            subscription_id: self.subscription_id,
            portal_id: self.portal_id,
            app_id: None,
            occurred_at: self.occurred_at,
            subscription_type: Cow::Borrowed(&self.subscription_type),
            attempt_number: None,
            object_id: self.from_object_id,
            object_type_id: self.from_object_type_id.as_deref().map(Cow::Borrowed),
            change_source: None,
            change_flag: None,
            source_id: None,
            property_name: None,
            property_value: None,
            primary_object_id: None,
            merged_object_ids: None,
            new_object_id: None,
            number_of_properties_moved: None,
            association_type: Some(self.label()),
            from_object_id: Some(self.from_object_id),
            to_object_id: Some(self.to_object_id),
            association_removed: self.association_removed,
            is_primary_association: None,
        };
        event.normalise();
        event.dedup_key()
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
            reason: ASSOCIATION_REASON.into(),
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
