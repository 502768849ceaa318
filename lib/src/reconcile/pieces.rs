//! A run's report pieces: one JSON object in the report store per page
//! (and per phase), read back at the end to make the report, so a handover
//! or a crash loses none of what a run found.
//!
//! And its scratch: what a run keeps only while it runs, so an invocation
//! that takes over finds it (the company index's pages, the customers
//! phase 1 deferred). It lives apart, under `scratch/<run id>/`, which the
//! bucket expires after a few days (`ExpireScratch` in
//! infra/template.yaml): it holds every customer's and company's mapped
//! values, contact details among them, which the report has no need to
//! keep for its 400 days.

use futures::StreamExt;
use tracing::warn;

use crate::hubspot::crm::Company;
use crate::reconcile::index::CompanyIndex;
use crate::reconcile::ports::ReportStore;
use crate::reconcile::report::Piece;
use crate::reconcile::step::{RunFailure, store};
use crate::store::StoreError;
use crate::warp::Customer;

/// Objects read at once when a run reads its pieces back.
const READS_AT_ONCE: usize = 16;

/// Where runs keep their scratch in the report store (see the top).
pub const SCRATCH_PREFIX: &str = "scratch/";

/// Scratch this run wrote a moment ago that does not read back: a failure
/// of the store, retried as one, never a run's wrong answer.
fn unreadable(during: &'static str, key: &str, reason: impl ToString) -> RunFailure {
    RunFailure::Store {
        during,
        source: StoreError::Malformed {
            table: "reports".into(),
            key: key.to_string(),
            reason: reason.to_string(),
        },
    }
}

/// One run's pieces in the report store, under `<prefix><run id>/pieces/`,
/// and its scratch, under `scratch/<run id>/`.
pub(super) struct Pieces<'a, P> {
    reports: &'a P,
    prefix: &'a str,
    run_id: &'a str,
}

impl<'a, P: ReportStore> Pieces<'a, P> {
    pub(super) fn new(reports: &'a P, prefix: &'a str, run_id: &'a str) -> Self {
        Self {
            reports,
            prefix,
            run_id,
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{}/pieces/{name}.json", self.prefix, self.run_id)
    }

    pub(super) async fn put(&self, name: &str, piece: &Piece) -> Result<(), RunFailure> {
        self.put_json(&self.key(name), piece, "writing a report piece")
            .await
    }

    /// Writes `value` as JSON under `key`.
    async fn put_json(
        &self,
        key: &str,
        value: &(impl serde::Serialize + ?Sized),
        during: &'static str,
    ) -> Result<(), RunFailure> {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.reports
            .put(key, body, "application/json")
            .await
            .map_err(store(during))
    }

    /// Hands each object under `prefix` to `each` in key order, a few
    /// reads in flight at once: no caller needs them all at once, and they
    /// grow with the book (a thousand pieces, and five hundred index pages,
    /// at 100,000 pairs), so read one at a time a run's end would wait out
    /// a round trip for each.
    async fn each_object(
        &self,
        prefix: &str,
        during: &'static str,
        mut each: impl FnMut(String, Vec<u8>) -> Result<(), RunFailure>,
    ) -> Result<(), RunFailure> {
        let keys = self.reports.list(prefix).await.map_err(store(during))?;
        let mut bodies = futures::stream::iter(keys)
            .map(|key| async move {
                let body = self.reports.get(&key).await;
                (key, body)
            })
            .buffered(READS_AT_ONCE);
        while let Some((key, body)) = bodies.next().await {
            each(key, body.map_err(store(during))?.unwrap_or_default())?;
        }
        Ok(())
    }

    /// The pieces under `phase`, in order.
    async fn for_each(&self, phase: &str, mut each: impl FnMut(Piece)) -> Result<(), RunFailure> {
        let prefix = format!("{}{}/pieces/{phase}", self.prefix, self.run_id);
        self.each_object(&prefix, "reading report pieces", |key, body| {
            match serde_json::from_slice::<Piece>(&body) {
                Ok(p) => each(p),
                Err(e) => {
                    // The page's details are lost to the report: say so in
                    // it, so an incomplete report never looks complete.
                    warn!(key, error = %e, "report piece unreadable; reported as an error");
                    let mut p = Piece::default();
                    p.error(
                        None,
                        None,
                        "assembling the report",
                        format!("piece {key} is unreadable ({e}); its page is missing here"),
                    );
                    each(p);
                }
            }
            Ok(())
        })
        .await
    }

    /// The pieces the report is assembled from, without their paired
    /// companies: the report has no use for them, and at 100,000 pairs they
    /// are most of what the pieces hold.
    pub(super) async fn for_report(&self) -> Result<Vec<Piece>, RunFailure> {
        let mut pieces = Vec::new();
        self.for_each("", |mut p| {
            p.paired_companies = Vec::new();
            pieces.push(p);
        })
        .await?;
        Ok(pieces)
    }

    fn index_key(&self, page: u32) -> String {
        format!("{SCRATCH_PREFIX}{}/index/{page:06}.json", self.run_id)
    }

    /// One search page of the run's company index, as read.
    pub(super) async fn put_index(
        &self,
        page: u32,
        companies: &[Company],
    ) -> Result<(), RunFailure> {
        self.put_json(
            &self.index_key(page),
            companies,
            "writing the company index",
        )
        .await
    }

    /// The run's company index from its pages, with the companies phase 1
    /// paired so far marked (a run taken over by a fresh invocation, which
    /// has lost its memory).
    pub(super) async fn index(&self, properties: &[&str]) -> Result<CompanyIndex, RunFailure> {
        let mut index = CompanyIndex::new(properties);
        let prefix = format!("{SCRATCH_PREFIX}{}/index/", self.run_id);
        self.each_object(&prefix, "reading the company index", |key, body| {
            let companies: Vec<Company> = serde_json::from_slice(&body)
                .map_err(|e| unreadable("reading the company index", &key, e))?;
            for c in companies {
                index.insert(c);
            }
            Ok(())
        })
        .await?;
        self.for_each("1-", |p| {
            for id in &p.paired_companies {
                index.mark_paired(id);
            }
        })
        .await?;
        Ok(index)
    }

    fn deferred_key(&self, pass: u32, n: u32) -> String {
        format!(
            "{SCRATCH_PREFIX}{}/deferred/{pass:03}/{n:06}.json",
            self.run_id
        )
    }

    /// Customers pass `pass` of phase 1 deferred, as WARP sent them.
    pub(super) async fn put_deferred(
        &self,
        pass: u32,
        n: u32,
        customers: &[Customer],
    ) -> Result<(), RunFailure> {
        let raw: Vec<&serde_json::Value> = customers.iter().map(|c| &c.raw).collect();
        self.put_json(&self.deferred_key(pass, n), &raw, "deferring customers")
            .await
    }

    /// One piece of the customers pass `pass` deferred, read as WARP's
    /// answers are.
    pub(super) async fn deferred(&self, pass: u32, n: u32) -> Result<Vec<Customer>, RunFailure> {
        let key = self.deferred_key(pass, n);
        let during = "reading deferred customers";
        let malformed = |reason: String| unreadable(during, &key, reason);
        let body = self
            .reports
            .get(&key)
            .await
            .map_err(store(during))?
            .ok_or_else(|| malformed("missing".into()))?;
        let raw: Vec<serde_json::Value> =
            serde_json::from_slice(&body).map_err(|e| malformed(e.to_string()))?;
        raw.into_iter()
            .map(|r| Customer::from_json(r, None).map_err(|e| malformed(e.to_string())))
            .collect()
    }
}
