//! Company creation, deletion, restore and merge: what they do to links
//! (and, for a merge, to WARP's `external_ids`).

use tracing::warn;

use super::ports::CompanyDirectory;
use super::{BatchReport, ChangeOutcome, CompanyMatch, Consumer, Item, Transient};
use crate::hubspot::webhook::WebhookEvent;
use crate::store::sync::{ConflictQueue, FieldStateStore, Link, LinkState, LinkStore, SyncLog};
use crate::store::{EventLog, EventStatus};
use crate::time::now_ms;
use crate::warp::WarpApi;

impl<E, S, W, H> Consumer<E, S, W, H>
where
    E: EventLog,
    S: LinkStore + FieldStateStore + SyncLog + ConflictQueue,
    W: WarpApi,
    H: CompanyDirectory,
{
    /// creation, deletion, restore and merge.
    pub(super) async fn lifecycle(
        &self,
        item: &Item,
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        let e: &WebhookEvent<'_> = &item.message.event;
        let company_id = e.object_id.to_string();
        match e.action() {
            "creation" => match self.resolve(&company_id).await? {
                CompanyMatch::Linked(link) | CompanyMatch::Inactive(link) => {
                    self.finish(
                        item,
                        &link.customer_id,
                        None,
                        ChangeOutcome::Linked,
                        "company linked by its warp_ban",
                        EventStatus::Applied,
                    )
                    .await
                }
                CompanyMatch::Unmatched(reason) => self.unmatched(item, &reason, report).await,
            },
            "deletion" | "restore" => {
                let Some(mut link) = self.store.link(&company_id).await? else {
                    return self
                        .unmatched(item, "no link for this company", report)
                        .await;
                };
                let (state, outcome, reason) = if e.action() == "deletion" {
                    (
                        LinkState::Deleted,
                        ChangeOutcome::LinkDeleted,
                        "company deleted in HubSpot; WARP customer left untouched",
                    )
                } else {
                    (
                        LinkState::Active,
                        ChangeOutcome::LinkRestored,
                        "company restored in HubSpot",
                    )
                };
                // A deletion of a merged-away company keeps the merge.
                if !(state == LinkState::Deleted && link.state == LinkState::Merged) {
                    link.state = state;
                    link.updated_at_ms = now_ms();
                    self.store.put_link(&link).await?;
                }
                self.finish(
                    item,
                    &link.customer_id,
                    None,
                    outcome,
                    reason,
                    EventStatus::Applied,
                )
                .await
            }
            "merge" => self.merge(item, report).await,
            other => {
                let reason = format!("{} events are not synced", other);
                self.finish(
                    item,
                    &format!("company#{company_id}"),
                    None,
                    ChangeOutcome::SkippedType,
                    &reason,
                    EventStatus::Applied,
                )
                .await
            }
        }
    }

    /// Re-points the links of the merged-away companies to the survivor and
    /// updates WARP's `external_ids`.
    pub(super) async fn merge(
        &self,
        item: &Item,
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        let e = &item.message.event;
        let survivor = e
            .new_object_id
            .or(e.primary_object_id)
            .unwrap_or(e.object_id)
            .to_string();
        let mut customer_ids = Vec::new();
        let mut merged: Vec<String> = e
            .merged_object_ids
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(u64::to_string)
            .collect();
        if let Some(primary) = e.primary_object_id.map(|p| p.to_string())
            && primary != survivor
        {
            merged.push(primary);
        }
        for id in merged.iter().filter(|id| **id != survivor) {
            if let Some(mut link) = self.store.link(id).await? {
                link.state = LinkState::Merged;
                link.merged_into = Some(survivor.clone());
                link.updated_at_ms = now_ms();
                self.store.put_link(&link).await?;
                customer_ids.push((link.customer_id.clone(), link.ban.clone()));
            }
        }
        let existing = self.store.link(&survivor).await?;
        let linked = match (&existing, customer_ids.first()) {
            (Some(l), _) if l.state == LinkState::Active => {
                Some((l.customer_id.clone(), l.ban.clone()))
            }
            (_, Some(c)) => Some(c.clone()),
            _ => None,
        };
        // WARP's company id, when the customer was read to find it.
        let (customer_id, ban, read) = match linked {
            Some((customer_id, ban)) => (customer_id, ban, None),
            None => match self.merged_customer(&survivor, &merged).await? {
                Ok(c) => (c.id, c.ban, Some(c.hubspot_company_id)),
                Err(reason) => return self.unmatched(item, &reason, report).await,
            },
        };
        let link = Link::active(&survivor, &customer_id, ban);
        self.store.put_link(&link).await?;
        let names = match read {
            Some(names) => names,
            None => match self.warp.get(&customer_id).await {
                Ok(c) => c.hubspot_company_id,
                Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
                // Not readable for good: the write below says why.
                Err(_) => None,
            },
        };
        // A write bumps WARP's `updated_at`, which LATEST_WINS reads as an
        // edit: none when WARP already names the survivor (the linked
        // company absorbed another). A refusal is permanent, and the links
        // are already re-pointed: the event is settled, with the refusal in
        // its reason and the sync log (not only a log line) so the review
        // finds WARP's stale id.
        let refused = if names.as_deref() == Some(survivor.as_str()) {
            None
        } else {
            match self.set_company_id(&customer_id, &survivor).await {
                Ok(_) => {
                    report.warp_writes += 1;
                    None
                }
                Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
                Err(e) => {
                    warn!(customer_id, error = %e, "WARP refused the re-link after a merge");
                    Some(e)
                }
            }
        };
        let reason = match refused {
            None => format!("merged into company {survivor}"),
            Some(e) => format!(
                "merged into company {survivor}; WARP refused to re-link external_ids.hubspot_company_id: {e}"
            ),
        };
        self.finish(
            item,
            &customer_id,
            None,
            ChangeOutcome::Merged,
            &reason,
            EventStatus::Applied,
        )
        .await
    }
}
