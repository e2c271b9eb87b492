//! `testloop serve`: the MCP server, over stdio (the default) or HTTP.
//!
//! Either way one [`TestloopServer`] over one [`Orchestrator`] carries the tools; executions run
//! in the background. When serving ends (stdin closed, or a shutdown signal) executions this
//! process still runs are aborted and their final state recorded, waiting at most
//! [`EXECUTION_STOP_GRACE`]; what is not recorded by then the next testloop marks `interrupted`.
//! The limits are in [`limits`]; the checks on HTTP requests in [`security`].

pub mod http;
pub mod limits;
pub mod security;
pub mod sse;
pub mod stdio;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_tools::TestloopServer;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::{ServeArgs, TransportKind};
use limits::EXECUTION_STOP_GRACE;

/// Exit status when a second signal cuts shutdown short.
const EXIT_FORCED: i32 = 130;

pub async fn serve(data_dir: &Path, args: ServeArgs) -> Result<ExitCode> {
    let sandbox: SandboxMode = args
        .sandbox
        .parse()
        .map_err(|message: String| anyhow::anyhow!(message))?;
    // Checked before anything else, so that a refused start leaves nothing behind.
    let http = match args.transport {
        TransportKind::Stdio => None,
        TransportKind::Http => {
            if !args.listen.ip().is_loopback() && args.token.is_none() {
                bail!(
                    "refusing to listen on {} without a token: anyone who can reach that address \
                     could run commands on this machine. Set TESTLOOP_TOKEN (or --token), or \
                     listen on a loopback address such as 127.0.0.1:8080",
                    args.listen
                );
            }
            if args.listen.ip().is_unspecified() && args.allowed_hosts.is_empty() {
                eprintln!(
                    "testloop: note: clients must name an allowed Host; to reach this server by a \
                     name or address other than loopback, add --allowed-host NAME"
                );
            }
            let policy = security::Policy::new(
                args.listen,
                &args.allowed_hosts,
                &args.allowed_origins,
                args.token,
            )
            .map_err(|message| anyhow::anyhow!(message))?;
            Some(http::HttpOptions {
                listen: args.listen,
                policy,
            })
        }
    };
    let orchestrator =
        crate::open_for_runs(data_dir, sandbox, &args.executor, &args.retention).await?;
    let server = TestloopServer::new(orchestrator.clone());
    let mut signals = Signals::new().context("cannot listen for shutdown signals")?;
    let served = match http {
        None => stdio::serve(server, &mut signals).await,
        Some(options) => http::serve(server, options, &mut signals).await,
    };
    stop_executions(&orchestrator, &mut signals).await;
    served?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM and SIGINT (Ctrl-C), as one stream.
pub struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT.
    pub async fn next(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// The second signal: quit now.
pub fn force_exit() -> ! {
    eprintln!("testloop: second signal: quitting now");
    std::process::exit(EXIT_FORCED)
}

/// Aborts the executions this process runs and waits (bounded) for their end to be recorded.
async fn stop_executions(orchestrator: &Orchestrator, signals: &mut Signals) {
    let running: Vec<String> = match orchestrator.store().active_executions() {
        Ok(active) => active
            .into_iter()
            .map(|execution| execution.id)
            .filter(|id| orchestrator.abort(id))
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot list running executions to stop them");
            return;
        }
    };
    if running.is_empty() {
        return;
    }
    eprintln!(
        "testloop: aborting {} running execution(s); waiting up to {}s for their end to be recorded",
        running.len(),
        EXECUTION_STOP_GRACE.as_secs()
    );
    let recorded = async {
        loop {
            let still_active = orchestrator
                .store()
                .active_executions()
                .map(|active| {
                    active
                        .iter()
                        .any(|execution| running.contains(&execution.id))
                })
                .unwrap_or(false);
            if !still_active {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        done = tokio::time::timeout(EXECUTION_STOP_GRACE, recorded) => {
            if done.is_err() {
                eprintln!(
                    "testloop: some executions were not recorded within {}s; the next testloop \
                     to open the data directory marks them interrupted",
                    EXECUTION_STOP_GRACE.as_secs()
                );
            }
        }
        _ = signals.next() => force_exit(),
    }
}
