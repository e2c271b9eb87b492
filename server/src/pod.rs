//! The hidden `pod-init` and `pod-run` commands: the runner inside a unit's pod (see
//! [`testloop_orchestrator::executor::kubernetes::runner`]).
//!
//! Their standard output is the container's output, which the server reads: nothing but step
//! output and control lines may be printed there. Diagnostics go to standard error, which lands
//! in the same log, so the runner stays at `warn` unless `TESTLOOP_LOG` says otherwise.

use std::os::fd::AsFd;
use std::process::ExitCode;

use anyhow::{Context, Result};
use testloop_orchestrator::executor::kubernetes::runner::{self, PodPaths};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// `testloop pod-init`.
pub fn init() -> Result<ExitCode> {
    let paths = PodPaths::from_env();
    let mut out = std::io::stdout().lock();
    runner::pod_init(&paths, &mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// `testloop pod-run --container N`. Exits 0 once the container's share is done, whatever the
/// steps did: a failing container would stop the pod before the next one.
pub async fn run(container: usize) -> Result<ExitCode> {
    // The handler goes in before the launcher looks at which signals have one, so that the steps
    // start with SIGTERM at its default.
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let cancel = CancellationToken::new();
    let abort = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::warn!("aborting: the pod is being stopped");
        abort.cancel();
    });
    // A descriptor of our own for standard output, behind the runner's one buffered writer (the
    // standard library's line buffering would only add a copy).
    let stdout = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot open standard output")?;
    let outcome = runner::pod_run(
        &PodPaths::from_env(),
        container,
        Box::new(std::fs::File::from(stdout)),
        cancel,
    )
    .await?;
    tracing::debug!(?outcome, "container done");
    Ok(ExitCode::SUCCESS)
}
