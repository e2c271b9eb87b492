//! Every limit of `testloop serve`, in one place. Each is tested at its edge in
//! `tests/tests/mcp_http.rs` or `tests/tests/mcp_stdio.rs`.

use std::time::Duration;

/// The largest request body the HTTP transports read (`POST /mcp`, `POST /message`), and the
/// longest line the stdio transport reads: 4 MiB. Larger HTTP bodies get `413 Payload Too Large`;
/// a longer stdio line is discarded (and logged) and serving goes on.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Sessions open at once over HTTP: streamable HTTP sessions (handshake-era clients that sent
/// `initialize`) and legacy SSE streams together. One more gets `503 Service Unavailable`.
/// Stateless streamable HTTP requests (protocol 2026-07-28) open no session and are bounded by
/// [`MAX_IN_FLIGHT_REQUESTS`] instead.
pub const MAX_SESSIONS: usize = 64;

/// Requests being handled at once over HTTP: a `POST /mcp` from its first byte until its response
/// has been sent, a request posted to `/message` until its answer went out on the SSE stream.
/// Long-lived event streams (`GET /sse`, `GET /mcp`) count as sessions, not here. One more gets
/// `503 Service Unavailable` with `Retry-After`.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 64;

/// After the first SIGTERM or Ctrl-C, how long in-flight requests may take to finish before the
/// sessions are closed anyway. A second signal quits at once.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// After the sessions closed, how long connections may take to wind down before serving stops.
pub const CONNECTION_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// When serving ends, executions this process still runs are aborted (their steps get a polite
/// signal, then a kill); this is how long their final state may take to be recorded. An
/// execution not recorded by then is marked `interrupted` by the next testloop that opens the
/// data directory.
pub const EXECUTION_STOP_GRACE: Duration = Duration::from_secs(10);

/// How often a legacy SSE stream sends a keep-alive comment, so that proxies keep it open.
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Messages queued towards one legacy SSE client before the server waits for it to read.
pub const SSE_CHANNEL_CAPACITY: usize = 64;
