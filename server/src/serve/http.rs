//! The HTTP transports on one listener: streamable HTTP at `/mcp`, the legacy HTTP+SSE pair at
//! `/sse` and `/message`, and `/healthz`, all behind [`security::guard`].

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use testloop_tools::TestloopServer;
use tokio_util::sync::CancellationToken;

use super::limits::{CONNECTION_CLOSE_GRACE, MAX_MESSAGE_BYTES, SHUTDOWN_GRACE, SSE_KEEP_ALIVE};
use super::security::{self, Gate, HEALTH_PATH, Load, Policy};
use super::{Signals, force_exit, sse};

/// Where to listen and whom to let in.
pub struct HttpOptions {
    pub listen: SocketAddr,
    pub policy: Policy,
}

/// Serves until the first SIGTERM or Ctrl-C, then shuts down in two stages: stop accepting and
/// let requests in flight finish (at most [`SHUTDOWN_GRACE`]), then close every session. A second
/// signal quits at once.
pub async fn serve(
    server: TestloopServer,
    options: HttpOptions,
    signals: &mut Signals,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;

    // Cancelled after the drain: every session and event stream ends.
    let sessions_stop = CancellationToken::new();
    let streamable = Arc::new(LocalSessionManager::default());
    let prototype = server.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(prototype.clone()),
        Arc::clone(&streamable),
        // Host and Origin are checked for every route in `security`, so not again here.
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(true)
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_max_request_body_bytes(MAX_MESSAGE_BYTES)
            .with_sse_keep_alive(Some(SSE_KEEP_ALIVE))
            .with_cancellation_token(sessions_stop.child_token()),
    );
    let legacy = Arc::new(sse::Sessions::new(server, sessions_stop.child_token()));
    let load = Arc::new(Load::new(streamable, Arc::clone(&legacy)));
    let gate = Gate {
        policy: Arc::new(options.policy),
        load: Arc::clone(&load),
    };
    let app = Router::new()
        .route("/sse", get(sse::open))
        .route(sse::MESSAGE_PATH, post(sse::post))
        .with_state(sse::Legacy {
            sessions: legacy,
            load: Arc::clone(&load),
        })
        .route(HEALTH_PATH, get(healthz))
        .route_service("/mcp", mcp)
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .layer(from_fn_with_state(gate.clone(), security::guard));

    eprintln!(
        "testloop: listening on http://{bound} (streamable HTTP at /mcp, legacy SSE at /sse, \
         health at {HEALTH_PATH}; {})",
        if gate.policy.has_token() {
            "bearer token required"
        } else {
            "no token: loopback only"
        }
    );

    let accepting = CancellationToken::new();
    let stop_accepting = accepting.clone();
    let mut server_task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop_accepting.cancelled().await })
            .await
    });
    tokio::select! {
        ended = &mut server_task => {
            return ended
                .context("the HTTP server task failed")?
                .context("the HTTP server failed");
        }
        _ = signals.next() => {}
    }

    eprintln!(
        "testloop: shutting down: refusing new requests, waiting up to {}s for {} in flight \
         (signal again to quit now)",
        SHUTDOWN_GRACE.as_secs(),
        load.in_flight()
    );
    load.start_draining();
    accepting.cancel();
    tokio::select! {
        drained = tokio::time::timeout(SHUTDOWN_GRACE, load.drained()) => {
            if drained.is_err() {
                eprintln!(
                    "testloop: {} request(s) still in flight after {}s: closing them",
                    load.in_flight(),
                    SHUTDOWN_GRACE.as_secs()
                );
            }
        }
        _ = signals.next() => force_exit(),
    }
    sessions_stop.cancel();
    tokio::select! {
        closed = tokio::time::timeout(CONNECTION_CLOSE_GRACE, &mut server_task) => {
            if closed.is_err() {
                tracing::warn!("connections still open after the sessions closed; dropping them");
                server_task.abort();
            }
        }
        _ = signals.next() => force_exit(),
    }
    Ok(())
}

/// `GET /healthz`: up, and which version.
async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
