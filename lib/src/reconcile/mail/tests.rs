use std::sync::Mutex;

use mail_parser::MessageParser;

use super::*;
use crate::reconcile::email::tests::{as_report, conflict, facts};
use crate::reconcile::report::{self, Piece};
use crate::review::verify;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const NOW_MS: i64 = 1_764_054_100_000;

fn env(
    extra: &[(&'static str, &'static str)],
    without: &str,
) -> Result<Option<MailSettings>, SettingError> {
    const BASE: [(&str, &str); 4] = [
        ("REPORT_EMAIL_TO", "ana@finance.example, bo@sales.example"),
        ("REPORT_EMAIL_FROM", "hubwarp@reports.example"),
        ("REVIEW_BASE_URL", "https://bridge.example.com/review/"),
        ("REVIEW_LINK_KEY", "0123456789abcdef0123456789abcdef"),
    ];
    MailSettings::from_env(&Env::varied(&BASE, extra, without))
}

fn mail(when: SendWhen) -> ReportMail {
    let mut settings = env(&[], "").unwrap().unwrap();
    settings.when = when;
    ReportMail {
        settings,
        key: ReviewKey::new(KEY).unwrap(),
    }
}

/// Keeps what it was given; refuses every recipient in `refuse`.
#[derive(Default)]
struct Outbox {
    sent: Mutex<Vec<(String, String, Vec<u8>)>>,
    refuse: Vec<&'static str>,
}

impl Mailer for Outbox {
    async fn send(&self, from: &str, to: &str, message: Vec<u8>) -> Result<String, String> {
        if self.refuse.contains(&to) {
            return Err(format!(
                "MessageRejected: Email address is not verified: {to}"
            ));
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push((from.into(), to.into(), message));
        Ok(format!("m{}", sent.len()))
    }
}

fn night(open: usize) -> (Report, Vec<OpenConflict>) {
    let conflicts: Vec<OpenConflict> = (0..open)
        .map(|i| conflict(&format!("0a0b0c0{i}")))
        .collect();
    let report = report::assemble(
        &facts(),
        vec![Piece::default()],
        conflicts.iter().map(as_report).collect(),
    );
    (report, conflicts)
}

/// The review links of a decoded HTML part.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("https://bridge.example.com/review/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn settings_are_off_unless_recipients_are_given_and_each_bad_one_is_named() {
    assert!(
        MailSettings::from_env(&Env::from_pairs([]))
            .unwrap()
            .is_none()
    );
    assert!(env(&[("REPORT_EMAIL_TO", " , ")], "").unwrap().is_none());
    let s = env(&[], "").unwrap().unwrap();
    assert_eq!(s.to, ["ana@finance.example", "bo@sales.example"]);
    assert_eq!(s.when, SendWhen::Attention);
    assert_eq!(s.max_rows, 50);
    assert_eq!(s.link_ttl, Duration::from_secs(72 * 3600));
    for (name, value) in [
        ("REPORT_EMAIL_TO", "ana@finance.example, not an address"),
        ("REPORT_EMAIL_FROM", "reports"),
        ("REPORT_EMAIL_WHEN", "sometimes"),
        ("REPORT_EMAIL_MAX_ROWS", "0"),
        ("REVIEW_LINK_TTL_HOURS", "0"),
        ("REVIEW_BASE_URL", "https://bridge.example.com/"),
        ("REVIEW_BASE_URL", "http://bridge.example.com/review/"),
    ] {
        let e = env(&[(name, value)], "").unwrap_err().to_string();
        assert!(e.contains(name), "{name}={value}: {e}");
    }
    for name in ["REPORT_EMAIL_FROM", "REVIEW_BASE_URL", "REVIEW_LINK_KEY"] {
        let e = env(&[], name).unwrap_err().to_string();
        assert!(e.contains(name), "{name}: {e}");
    }
}

#[tokio::test]
async fn each_recipient_gets_one_email_with_links_signed_for_them() {
    let (report, conflicts) = night(2);
    let outbox = Outbox::default();
    let mail = mail(SendWhen::Attention);
    let night = Night {
        report: &report,
        conflicts: &conflicts,
        full_report: Some("reports/nightly-2026-11-25/report.html"),
    };
    let d = deliver(&mail, &outbox, &night, NOW_MS).await;
    assert_eq!(
        d,
        Delivery {
            sent: 2,
            ..Delivery::default()
        }
    );
    let sent = outbox.sent.lock().unwrap();
    assert_eq!(sent.len(), 2);
    for (from, to, raw) in sent.iter() {
        assert_eq!(from, "hubwarp@reports.example");
        let m = MessageParser::default().parse(raw).expect("a MIME message");
        assert_eq!(
            m.to().and_then(|a| a.first()).and_then(|a| a.address()),
            Some(to.as_str())
        );
        let subject = m.subject().unwrap_or_default();
        assert!(subject.contains("2 conflicts to decide"), "{subject}");
        let html = m.body_html(0).expect("an HTML part");
        let text = m.body_text(0).expect("a text part");
        let links = links(&html);
        assert_eq!(links.len(), 4, "two links per conflict");
        for (i, href) in links.iter().enumerate() {
            let token = href.rsplit('/').next().unwrap();
            let claims = verify(&mail.key, token, NOW_MS / 1000).expect("a valid link");
            assert_eq!(claims.recipient(), to, "signed for this recipient");
            assert_eq!(claims.conflict_id(), conflicts[i / 2].id);
            assert_eq!(claims.expires_at(), NOW_MS / 1000 + 72 * 3600);
            assert!(text.contains(href.as_str()), "the text part has the link");
        }
    }
    assert!(
        String::from_utf8_lossy(&sent[0].2).contains("Auto-Submitted: auto-generated"),
        "marked machine-sent"
    );
    // Two recipients, two different sets of links.
    let a = MessageParser::default().parse(&sent[0].2).unwrap();
    let b = MessageParser::default().parse(&sent[1].2).unwrap();
    assert_ne!(
        links(&a.body_html(0).unwrap()),
        links(&b.body_html(0).unwrap())
    );
}

#[tokio::test]
async fn a_quiet_night_sends_nothing_unless_every_night_is_asked_for() {
    let (report, conflicts) = night(0);
    let night = Night {
        report: &report,
        conflicts: &conflicts,
        full_report: None,
    };
    let outbox = Outbox::default();
    let d = deliver(&mail(SendWhen::Attention), &outbox, &night, NOW_MS).await;
    assert_eq!(d.skipped.as_deref(), Some("quiet night"));
    assert!(outbox.sent.lock().unwrap().is_empty());
    let d = deliver(&mail(SendWhen::Always), &outbox, &night, NOW_MS).await;
    assert_eq!((d.sent, d.failed, d.skipped), (2, 0, None));
    let mut dry = report.clone();
    dry.dry_run = true;
    let d = deliver(
        &mail(SendWhen::Always),
        &outbox,
        &Night {
            report: &dry,
            ..night
        },
        NOW_MS,
    )
    .await;
    assert_eq!(d.skipped.as_deref(), Some("dry run"));
}

#[tokio::test]
async fn a_refused_recipient_is_counted_and_the_others_still_get_theirs() {
    let (report, conflicts) = night(1);
    let outbox = Outbox {
        refuse: vec!["ana@finance.example"],
        ..Outbox::default()
    };
    let night = Night {
        report: &report,
        conflicts: &conflicts,
        full_report: None,
    };
    let d = deliver(&mail(SendWhen::Attention), &outbox, &night, NOW_MS).await;
    assert_eq!((d.sent, d.failed), (1, 1));
    assert!(d.error.unwrap_or_default().contains("not verified"));
    assert_eq!(outbox.sent.lock().unwrap()[0].1, "bo@sales.example");
}
