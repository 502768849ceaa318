//! The floor of a cold start: a `lambda_runtime` function that does
//! nothing, built with the workspace's release profile, so `make coldstart`
//! can put each function's init beside it in the same run.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
