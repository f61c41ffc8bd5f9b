//! The `trailhound-lambda` bootstrap for the `provided.al2023` runtime: configuration from the
//! environment once per cold start, then one [`handler::Function::handle`] per invocation.
//! No argument parsing, no terminal: logs go to CloudWatch through stderr.

mod config;
mod handler;
mod inventory;
mod state;
mod trigger;

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRAILHOUND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .init();
    let config = config::Config::from_env()?;
    let scratch = std::env::var_os("TRAILHOUND_SCRATCH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let function = Arc::new(handler::Function::init(config, scratch).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = function.clone();
        async move {
            let started = std::time::Instant::now();
            let result = function.handle(&event.payload).await;
            match &result {
                Ok(report) => tracing::info!("done in {:?}: {report}", started.elapsed()),
                Err(err) => tracing::error!("failed after {:?}: {err:#}", started.elapsed()),
            }
            result.map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
