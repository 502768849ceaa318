//! `hubwarp reconcile`: a run now, either by invoking the deployed
//! reconciler function (synchronously, so the summary comes back) or with
//! `--local` in this process, built by the same code as the function
//! ([`crate::reconcile::aws::build`]).

use std::sync::Mutex;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use super::OperateError;
use crate::reconcile::ReconcileRequest;
use crate::reconcile::ports::{
    Continuation, HubspotCompanies, NoAlerts, ReportStore, RunStore, WarpCustomers,
};
use crate::reconcile::run::{Outcome, Reconciler};
use crate::store::sync::{ConflictQueue, FieldStateStore, LinkStore, SyncLog};
use crate::store::{EventLog, StuckEvents};

/// Invokes `function` with `request` and waits for its answer (Lambda's
/// 15 minutes at most; a longer run hands over and the answer says
/// `continued`).
pub async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    request: &ReconcileRequest,
) -> Result<Outcome, OperateError> {
    let payload = serde_json::to_vec(request).map_err(|e| OperateError::Invalid(e.to_string()))?;
    let out = lambda
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| {
            OperateError::Lambda(aws_sdk_lambda::error::DisplayErrorContext(e).to_string())
        })?;
    let body = out.payload.map(Blob::into_inner).unwrap_or_default();
    if let Some(kind) = out.function_error {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(OperateError::Lambda(format!(
            "{function} failed ({kind}): {message}"
        )));
    }
    serde_json::from_slice(&body).map_err(|e| {
        OperateError::Lambda(format!(
            "{function} answered something that is not a run outcome: {e}"
        ))
    })
}

/// Carries a handover on in this process: the next invocation is the
/// next turn of [`run_here`]'s loop.
#[derive(Default)]
struct InProcess(Mutex<Option<String>>);

impl Continuation for InProcess {
    async fn continue_run(&self, run_id: &str) -> Result<(), String> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(run_id.to_string());
        Ok(())
    }
}

/// Runs `request` to its end in this process. No alerts: the person who
/// asked reads the summary. A run the settings split into invocations
/// (`RECONCILE_INVOCATION_BUDGET_MS`) continues here, invocation after
/// invocation.
pub async fn run_here<W, H, S, E, Q, R, P>(
    reconciler: &Reconciler<W, H, S, E, Q, R, P>,
    request: &ReconcileRequest,
) -> Result<Outcome, OperateError>
where
    W: WarpCustomers,
    H: HubspotCompanies,
    S: LinkStore + FieldStateStore + ConflictQueue + SyncLog,
    E: EventLog + StuckEvents,
    Q: crate::queue::SyncQueue,
    R: RunStore,
    P: ReportStore,
{
    let handovers = InProcess::default();
    let mut request = request.clone();
    loop {
        // Lambda's longest timeout from now: the same allowance the
        // function gives itself when it has no usable deadline.
        let deadline = crate::time::now_ms() + 15 * 60 * 1000;
        let outcome = reconciler
            .invoke(&request, deadline, &handovers, &NoAlerts)
            .await
            .map_err(|e| match e {
                crate::reconcile::run::RunFailure::Request(r) => {
                    OperateError::Invalid(r.to_string())
                }
                other => OperateError::Run(other.to_string()),
            })?;
        let next = handovers.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        match (outcome.status.as_str(), next) {
            ("continued", Some(run_id)) => {
                request = ReconcileRequest {
                    continue_run: Some(run_id),
                    ..Default::default()
                };
            }
            _ => return Ok(outcome),
        }
    }
}
