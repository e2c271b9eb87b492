//! The stdio transport: JSON-RPC lines on stdin and stdout, and nothing else on stdout.
//!
//! A line that is not JSON at all is ignored (as rmcp and the other MCP SDKs do: there is no id
//! to answer, and answering garbage can start an error storm between two confused peers); a JSON
//! line that is not a valid message is answered with an `Invalid request` error. Either way
//! serving goes on. A message longer than [`MAX_MESSAGE_BYTES`] (without its newline) is discarded
//! unanswered, and logged.

use anyhow::Result;
use rmcp::ServiceExt;
use rmcp::transport::async_rw::AsyncRwTransport;
use testloop_tools::TestloopServer;
use tokio_util::sync::CancellationToken;

use super::limits::MAX_MESSAGE_BYTES;
use super::{Signals, force_exit};

/// Serves until stdin closes, or until SIGTERM or Ctrl-C (twice: quit at once).
pub async fn serve(server: TestloopServer, signals: &mut Signals) -> Result<()> {
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    // rmcp counts the line's newline too.
    let transport =
        AsyncRwTransport::new_server(stdin, stdout).with_max_line_length(MAX_MESSAGE_BYTES + 1);
    let stop = CancellationToken::new();
    let running = tokio::select! {
        started = server.serve_with_ct(transport, stop.clone()) => match started {
            Ok(running) => running,
            Err(error) => {
                tracing::warn!(%error, "the client left before the session began");
                return Ok(());
            }
        },
        _ = signals.next() => return Ok(()),
    };
    let waiting = running.waiting();
    tokio::pin!(waiting);
    tokio::select! {
        quit = &mut waiting => {
            tracing::info!(?quit, "stdin closed: serving ends");
        }
        _ = signals.next() => {
            stop.cancel();
            tokio::select! {
                _ = waiting => {}
                _ = signals.next() => force_exit(),
            }
        }
    }
    Ok(())
}
