//! Connecting the Kubernetes executor from the command line's flags.

use std::sync::Arc;

use anyhow::{Result, bail};
use testloop_orchestrator::executor::Executor;

use crate::cli::ExecutorArgs;

/// The Kubernetes executor `args` describe, connected.
pub async fn executor(args: &ExecutorArgs) -> Result<Arc<dyn Executor>> {
    let _ = args;
    bail!("the kubernetes executor is not available in this build yet")
}
