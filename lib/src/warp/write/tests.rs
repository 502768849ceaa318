use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::json;

use super::*;

/// A body sent, with its `If-Match`.
type Sent = (Map<String, Value>, Option<String>);

/// WARP answering a script of `PUT` outcomes; a GET returns the customer
/// with the next ETag.
struct Scripted {
    puts: Mutex<VecDeque<Result<(), WarpError>>>,
    etag: Mutex<u32>,
    bodies: Mutex<Vec<Sent>>,
}

impl Scripted {
    fn new(puts: Vec<Result<(), WarpError>>) -> Self {
        Self {
            puts: Mutex::new(puts.into()),
            etag: Mutex::new(1),
            bodies: Mutex::default(),
        }
    }
    fn customer(&self) -> Customer {
        let etag = *self.etag.lock().unwrap();
        Customer {
            id: "c1".into(),
            ban: "B1".into(),
            etag: format!("\"{etag}\""),
            updated_at_ms: Some(i64::from(etag)),
            hubspot_company_id: None,
            raw: json!({"id": "c1", "credit_limit": format!("{etag}.00")}),
        }
    }
}

impl WarpApi for Scripted {
    async fn get(&self, _id: &str) -> Result<Customer, WarpError> {
        *self.etag.lock().unwrap() += 1;
        Ok(self.customer())
    }
    async fn by_ban(&self, _ban: &str) -> Result<Customer, WarpError> {
        Ok(self.customer())
    }
    async fn update(
        &self,
        _id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> Result<Customer, WarpError> {
        self.bodies
            .lock()
            .unwrap()
            .push((body.clone(), if_match.map(str::to_string)));
        let next = self.puts.lock().unwrap().pop_front().unwrap_or(Ok(()));
        next.map(|()| self.customer())
    }
}

/// The decision: write what WARP held, tagged, so each decision shows
/// which read it was made on.
fn decide(c: &Customer) -> (Map<String, Value>, String) {
    let seen = c.raw["credit_limit"].as_str().unwrap_or("").to_string();
    let mut body = Map::new();
    body.insert("note".into(), json!(format!("decided on {seen}")));
    (body, seen)
}

#[tokio::test]
async fn a_write_goes_out_with_the_etag_it_was_decided_on() {
    let warp = Scripted::new(vec![Ok(())]);
    let w = update_if_match(&warp, warp.customer(), decide).await;
    assert!(matches!(w.written, Ok(Some(_))));
    assert_eq!((w.puts, w.rereads, w.decision.as_str()), (1, 0, "1.00"));
    assert_eq!(warp.bodies.lock().unwrap()[0].1.as_deref(), Some("\"1\""));
}

#[tokio::test]
async fn a_412_reads_again_and_decides_again_on_what_warp_now_holds() {
    let warp = Scripted::new(vec![Err(WarpError::PreconditionFailed), Ok(())]);
    let w = update_if_match(&warp, warp.customer(), decide).await;
    assert!(matches!(w.written, Ok(Some(_))));
    assert_eq!((w.puts, w.rereads, w.decision.as_str()), (2, 1, "2.00"));
    let bodies = warp.bodies.lock().unwrap();
    assert_eq!(bodies[1].0["note"], "decided on 2.00");
    assert_eq!(bodies[1].1.as_deref(), Some("\"2\""), "the fresh ETag");
}

#[tokio::test]
async fn a_second_412_gives_up_as_contended() {
    let warp = Scripted::new(vec![
        Err(WarpError::PreconditionFailed),
        Err(WarpError::PreconditionFailed),
    ]);
    let w = update_if_match(&warp, warp.customer(), decide).await;
    assert!(matches!(w.written, Err(WriteError::Contended)));
    assert!(w.written.as_ref().unwrap_err().is_transient());
    assert_eq!((w.puts, w.rereads), (2, 1));
}

#[tokio::test]
async fn nothing_to_write_sends_nothing_and_a_refusal_is_kept() {
    let warp = Scripted::new(vec![]);
    let w = update_if_match(&warp, warp.customer(), |_| (Map::new(), ())).await;
    assert!(matches!(w.written, Ok(None)));
    assert_eq!(w.puts, 0);

    let refused = WarpError::Rejected {
        status: 422,
        code: "VALIDATION_ERROR".into(),
        message: "credit_limit".into(),
    };
    let warp = Scripted::new(vec![Err(refused)]);
    let w = update_if_match(&warp, warp.customer(), decide).await;
    let e = w.written.unwrap_err();
    assert!(!e.is_transient());
    assert!(matches!(
        e.warp_error(),
        Some(WarpError::Rejected { status: 422, .. })
    ));
}
