//! The nightly report by e-mail on moto (SES v2, Secrets Manager, S3) and
//! both sandboxes: the reconciler function as built at cold start (its
//! link key read from Secrets Manager), a night with MANUAL conflicts, and
//! what SES took, read back as a mail client reads it.

use std::time::Duration;

use hubwarp::aws::Caller;
use hubwarp::operate::conflicts;
use hubwarp::reconcile::ReconcileRequest;
use hubwarp::reconcile::checkpoint::RunStatus;
use hubwarp::reconcile::mail::{MailSettings, SendWhen};
use hubwarp::reconcile::ports::{RecordedHandovers, RunStore};
use hubwarp::review::{load_key, verify};
use hubwarp::secrets::SecretSource;
use integration_tests::hubspot_sandbox::HubspotSandbox;
use integration_tests::moto::{MotoServer, SentMail, ses_sent};
use integration_tests::resources::REPORT_SENDER;
use integration_tests::seed;
use integration_tests::warp_sandbox::{WarpSandbox, demo_customer};
use mail_parser::MessageParser;
use serde_json::{Map, json};

use crate::consumer::company_id;
use crate::operate::manual_credit_limit;
use crate::utils::{Harness, Options};

pub const REVIEW_URL: &str = "https://bridge.example.com/review/";

/// Two sandboxes with three linked customers whose MANUAL credit limit
/// HubSpot changed for `conflicted` of them.
pub struct Night {
    /// The moto server of this test alone, when it has one.
    pub own: Option<&'static MotoServer>,
    pub h: Harness,
    pub warp: WarpSandbox,
    pub hubspot: HubspotSandbox,
    pub mappings: hubwarp::mapping::MappingSet,
}

impl Night {
    pub async fn new(test: &str, conflicted: usize) -> Self {
        Self::on(None, test, conflicted).await
    }

    pub async fn on(own: Option<&'static MotoServer>, test: &str, conflicted: usize) -> Self {
        let mappings = manual_credit_limit();
        let server = own.unwrap_or_else(MotoServer::shared);
        let h = Harness::on(server, test, Options::default()).await;
        let warp = WarpSandbox::start().await;
        let hubspot = HubspotSandbox::start().await;
        integration_tests::hubspot_setup::install_bridge_properties(
            &hubspot,
            &(0..8).map(demo_customer).collect::<Vec<_>>(),
        );
        for n in 0..3 {
            let c = warp.insert(demo_customer(n));
            hubspot.upsert_company(&company_id(n), seed::company_properties(&c, &mappings));
        }
        for n in 1..=conflicted {
            let mut p = Map::new();
            p.insert(
                "warp_credit_limit".into(),
                json!(format!("{}", 100_000 + n)),
            );
            hubspot.upsert_company(&company_id(n), p);
        }
        Self {
            own,
            h,
            warp,
            hubspot,
            mappings,
        }
    }

    pub fn mail(&self, to: &[&str], from: &str, when: SendWhen) -> MailSettings {
        MailSettings {
            to: to.iter().map(|a| a.to_string()).collect(),
            from: from.into(),
            when,
            max_rows: 50,
            link_ttl: Duration::from_secs(72 * 3600),
            review_url: REVIEW_URL.into(),
            key: SecretSource::SecretsManager {
                setting: "REVIEW_LINK_KEY_ARN".into(),
                arn: self.h.res.review_key_arn.clone(),
            },
        }
    }

    /// The reconciler's settings on this stack and these sandboxes.
    pub fn config(&self) -> nightly_reconciler::Config {
        crate::utils::reconciler_config(
            &self.h,
            &self.warp.base_url,
            &self.hubspot.base_url,
            self.mappings.clone(),
            hubwarp::reconcile::run::RunSettings {
                reserve: Duration::ZERO,
                ..Default::default()
            },
        )
    }

    /// The reconciler function with `mail` (or none), built as at cold
    /// start; one night through it. The run record.
    pub async fn run(
        &self,
        mail: impl Into<Option<MailSettings>>,
    ) -> hubwarp::reconcile::checkpoint::RunRecord {
        let mut config = self.config();
        config.mail = mail.into();
        let f = nightly_reconciler::build(&config, &self.h.aws_as(Caller::NightlyReconciler))
            .await
            .expect("the reconciler starts");
        let outcome = f
            .reconciler
            .invoke(
                &ReconcileRequest::default(),
                i64::MAX / 2,
                &RecordedHandovers::default(),
                &f.alerts,
            )
            .await
            .expect("the run");
        f.reconciler
            .runs
            .get(&outcome.run_id)
            .await
            .unwrap()
            .expect("its record")
    }

    /// What SES took for `to` since the test began.
    pub async fn inbox(&self, to: &str) -> Vec<SentMail> {
        ses_sent(&self.own.unwrap_or_else(MotoServer::shared).endpoint)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.destinations.iter().any(|d| d == to))
            .collect()
    }
}

/// The review links of a message's HTML part.
pub fn links(raw: &str) -> Vec<String> {
    let m = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a MIME message");
    let html = m.body_html(0).expect("an HTML part").to_string();
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with(REVIEW_URL))
        .map(str::to_string)
        .collect()
}

fn unique(who: &str) -> String {
    format!(
        "{who}.{}@finance.example",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

#[tokio::test]
async fn each_recipient_gets_one_email_with_their_own_links_to_every_open_conflict() {
    let night = Night::new("report_email", 2).await;
    let (ana, bo) = (unique("ana"), unique("bo"));
    let run = night
        .run(night.mail(&[&ana, &bo], REPORT_SENDER, SendWhen::Attention))
        .await;
    assert_eq!(run.status, RunStatus::Completed);
    let email = run.email.expect("the delivery is in the run record");
    assert_eq!((email.sent, email.failed), (2, 0), "{email:?}");

    let key = load_key(
        &SecretSource::SecretsManager {
            setting: "REVIEW_LINK_KEY_ARN".into(),
            arn: night.h.res.review_key_arn.clone(),
        },
        &night.h.aws,
    )
    .await
    .unwrap();
    let open: Vec<String> = conflicts::list(&night.h_store())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(open.len(), 2);
    let now = chrono::Utc::now().timestamp();
    let mut all_links = Vec::new();
    for to in [&ana, &bo] {
        let inbox = night.inbox(to).await;
        assert_eq!(inbox.len(), 1, "one e-mail for {to}");
        let sent = &inbox[0];
        assert_eq!(sent.source, REPORT_SENDER);
        // moto lists the envelope's recipient and the To header's again.
        let mut destinations = sent.destinations.clone();
        destinations.dedup();
        assert_eq!(
            destinations,
            std::slice::from_ref(to),
            "addressed to this recipient alone"
        );
        let m = MessageParser::default().parse(sent.raw.as_bytes()).unwrap();
        assert!(
            m.subject()
                .unwrap_or_default()
                .contains("2 conflicts to decide"),
            "{:?}",
            m.subject()
        );
        let links = links(&sent.raw);
        assert_eq!(links.len(), 4, "keep / take for each open conflict");
        let mut named = Vec::new();
        for href in &links {
            let token = &href[REVIEW_URL.len()..];
            let claims = verify(&key, token, now).expect("signed with the stack's key");
            assert_eq!(claims.recipient(), to.as_str());
            named.push(claims.conflict_id().to_string());
        }
        named.dedup();
        named.sort();
        let mut expected = open.clone();
        expected.sort();
        assert_eq!(named, expected);
        all_links.extend(links);
    }
    all_links.sort();
    all_links.dedup();
    assert_eq!(all_links.len(), 8, "no two recipients share a link");
}

#[tokio::test]
async fn a_quiet_night_sends_nothing_when_only_nights_that_need_attention_are_asked_for() {
    let night = Night::new("report_email_quiet", 0).await;
    let ana = unique("ana");
    let run = night
        .run(night.mail(&[&ana], REPORT_SENDER, SendWhen::Attention))
        .await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counters.conflicts_for_review, 0);
    let email = run.email.expect("recorded");
    assert_eq!(email.skipped.as_deref(), Some("quiet night"), "{email:?}");
    assert!(night.inbox(&ana).await.is_empty());
}

#[tokio::test]
async fn ses_refusing_the_send_leaves_the_run_completed_with_the_error_counted() {
    // The stack's sender, whose identity SES no longer has verified (its
    // DNS records removed, say): SES refuses, IAM would not. A server of
    // this test's own, so the other tests keep their sender.
    let server: &'static MotoServer = Box::leak(Box::new(MotoServer::start().unwrap()));
    let night = Night::on(Some(server), "report_email_refused", 1).await;
    aws_sdk_sesv2::Client::new(&night.h.aws)
        .delete_email_identity()
        .email_identity(REPORT_SENDER)
        .send()
        .await
        .unwrap();
    let ana = unique("ana");
    let run = night
        .run(night.mail(&[&ana], REPORT_SENDER, SendWhen::Always))
        .await;
    assert_eq!(run.status, RunStatus::Completed, "the run's work is done");
    assert!(run.finished_ms.is_some());
    let email = run.email.expect("recorded");
    assert_eq!((email.sent, email.failed), (0, 1), "{email:?}");
    let error = email.error.unwrap_or_default();
    assert!(error.contains("MessageRejected"), "{error}");
    assert!(night.inbox(&ana).await.is_empty());
    assert!(
        run.report_html_key.is_some(),
        "the report is written all the same"
    );
}

impl Night {
    /// The stack's sync store, as `hubwarp` reads it.
    fn h_store(&self) -> hubwarp::store::DynamoSyncStore {
        hubwarp::store::DynamoSyncStore::new(
            hubwarp::aws::dynamodb(&self.h.aws),
            self.h.res.names.sync_tables(),
            Duration::from_secs(3600),
        )
    }
}
