//! Who may talk to the HTTP transports, and how much at once: one middleware in front of every
//! route (`/mcp`, `/sse`, `/message`, and any unknown path).
//!
//! In order, a request is refused when the server is shutting down (503), when its `Host` is not
//! allowed (403, against DNS rebinding), when it carries a foreign `Origin` (403, against
//! cross-site requests from browsers), when the bearer token is missing or wrong (401), when too
//! many requests are in flight (503), when its body is too large (413), and when it would open one
//! session too many (503). `GET /healthz` skips all of it: it says only that the server is up and
//! which version it runs, so that probes need no token.
//!
//! Nothing here logs a header value other than a rejected `Host` or `Origin`; the token never
//! reaches a log.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::limits::{MAX_IN_FLIGHT_REQUESTS, MAX_MESSAGE_BYTES, MAX_SESSIONS};
use super::sse;

/// The path that probes use; it needs no token.
pub const HEALTH_PATH: &str = "/healthz";

/// A bearer token. Its `Debug` form is redacted, so that it cannot reach a log by accident.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Whether `presented` is this token, in time that depends only on the token's length.
    fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(presented, self.0.as_bytes())
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl FromStr for Token {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the token is empty".to_owned());
        }
        if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".to_owned());
        }
        Ok(Self(text.to_owned()))
    }
}

/// Compares `presented` with `expected` without returning early: the time taken depends on the
/// length of `expected` only, never on where the two first differ.
pub fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    let mut difference = u8::from(presented.len() != expected.len());
    for (index, byte) in expected.iter().enumerate() {
        difference |= presented.get(index).copied().unwrap_or(0) ^ byte;
    }
    std::hint::black_box(difference) == 0
}

/// A `Host` (or `--allowed-host`) value: a name or address, and maybe a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    /// Parses `name`, `name:port`, `1.2.3.4:port`, `[::1]:port` or `::1`.
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?.parse().ok()?),
            };
            (host, port)
        } else if text.matches(':').count() > 1 {
            (text, None) // a bare IPv6 address
        } else if let Some((host, port)) = text.split_once(':') {
            (host, Some(port.parse().ok()?))
        } else {
            (text, None)
        };
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return None;
        }
        Some(Self {
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port,
        })
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host.ends_with(".localhost")
            || self
                .host
                .parse::<IpAddr>()
                .is_ok_and(|address| address.is_loopback())
    }

    /// Whether a request's authority matches this allowed one: same host, and the same port
    /// unless this one names none.
    fn admits(&self, request: &Authority) -> bool {
        self.host == request.host && self.port.is_none_or(|port| request.port == Some(port))
    }
}

/// Who may call: the allowed `Host` and `Origin` values, and the token.
#[derive(Debug)]
pub struct Policy {
    hosts: Vec<Authority>,
    origins: Vec<String>,
    token: Option<Token>,
}

impl Policy {
    /// Loopback names and addresses are always allowed as `Host`, with the listen address and
    /// `extra_hosts`; loopback origins with `extra_origins` as `Origin`.
    pub fn new(
        listen: SocketAddr,
        extra_hosts: &[String],
        extra_origins: &[String],
        token: Option<Token>,
    ) -> Result<Self, String> {
        let mut hosts = vec![Authority {
            host: listen.ip().to_string(),
            port: None,
        }];
        for text in extra_hosts {
            hosts.push(Authority::parse(text).ok_or_else(|| {
                format!(
                    "--allowed-host `{text}` is not a host name or address, with or without a :port"
                )
            })?);
        }
        let mut origins = Vec::new();
        for text in extra_origins {
            origins.push(normalize_origin(text).ok_or_else(|| {
                format!(
                    "--allowed-origin `{text}` is not an origin like https://app.example.com or http://localhost:3000"
                )
            })?);
        }
        Ok(Self {
            hosts,
            origins,
            token,
        })
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn host_allowed(&self, host: &str) -> bool {
        Authority::parse(host).is_some_and(|request| {
            request.is_loopback() || self.hosts.iter().any(|allowed| allowed.admits(&request))
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let Some(origin) = normalize_origin(origin) else {
            return false;
        };
        if self.origins.contains(&origin) {
            return true;
        }
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .and_then(Authority::parse)
            .is_some_and(|authority| authority.is_loopback())
    }

    fn authorization(&self, headers: &HeaderMap) -> Authorization {
        let Some(token) = &self.token else {
            return Authorization::Granted;
        };
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Authorization::Missing;
        };
        let value = value.as_bytes();
        let presented = match value.split_at_checked(7) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => rest.trim_ascii(),
            _ => return Authorization::Wrong,
        };
        if token.matches(presented) {
            Authorization::Granted
        } else {
            Authorization::Wrong
        }
    }
}

enum Authorization {
    Granted,
    Missing,
    Wrong,
}

/// `scheme://host[:port]` in lower case without a trailing slash, or `null`.
fn normalize_origin(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('/').to_ascii_lowercase();
    if text == "null" {
        return Some(text);
    }
    let (scheme, authority) = text.split_once("://")?;
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"+-.".contains(&byte));
    if !scheme_ok || authority.contains('/') || Authority::parse(authority).is_none() {
        return None;
    }
    Some(text)
}

/// What is in use: requests in flight, sessions open, and whether the server is draining.
pub struct Load {
    in_flight: Arc<Semaphore>,
    draining: AtomicBool,
    /// Held while a request that opens a session runs, so that two cannot both take the last
    /// place.
    opening: tokio::sync::Mutex<()>,
    streamable: Arc<LocalSessionManager>,
    legacy: Arc<sse::Sessions>,
}

impl Load {
    pub fn new(streamable: Arc<LocalSessionManager>, legacy: Arc<sse::Sessions>) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT_REQUESTS)),
            draining: AtomicBool::new(false),
            opening: tokio::sync::Mutex::new(()),
            streamable,
            legacy,
        }
    }

    /// A place for one more request in flight, or `None` when all are taken.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.in_flight).try_acquire_owned().ok()
    }

    pub fn in_flight(&self) -> usize {
        MAX_IN_FLIGHT_REQUESTS - self.in_flight.available_permits()
    }

    pub async fn sessions(&self) -> usize {
        self.streamable.sessions.read().await.len() + self.legacy.len()
    }

    /// From now on, every request gets 503.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Resolves once no request is in flight.
    pub async fn drained(&self) {
        while self.in_flight() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// The middleware's state.
#[derive(Clone)]
pub struct Gate {
    pub policy: Arc<Policy>,
    pub load: Arc<Load>,
}

/// The middleware: every check, for every route.
pub async fn guard(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if path == HEALTH_PATH {
        if gate.load.draining.load(Ordering::SeqCst) {
            return shutting_down();
        }
        return next.run(request).await;
    }
    if gate.load.draining.load(Ordering::SeqCst) {
        return shutting_down();
    }

    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.to_string())
        });
    match host {
        Some(host) if gate.policy.host_allowed(&host) => {}
        Some(host) => {
            tracing::warn!(%path, %host, "refused a request for a host that is not allowed");
            return refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "Forbidden: Host `{host}` is not allowed (a DNS rebinding attempt?). \
                     To serve this name, start testloop with --allowed-host {host}\n"
                ),
            );
        }
        None => {
            return refuse(StatusCode::BAD_REQUEST, "Bad Request: no Host header\n");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("<not text>");
        if !gate.policy.origin_allowed(origin) {
            tracing::warn!(%path, %origin, "refused a request from an origin that is not allowed");
            return refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "Forbidden: Origin `{origin}` is not allowed. To accept it, start testloop \
                     with --allowed-origin {origin}\n"
                ),
            );
        }
    }
    match gate.policy.authorization(headers) {
        Authorization::Granted => {}
        Authorization::Missing => {
            tracing::warn!(%path, "refused a request without a bearer token");
            return unauthorized(
                "Bearer realm=\"testloop\"",
                "Unauthorized: send `Authorization: Bearer <token>` (the token testloop serve was \
                 started with)\n",
            );
        }
        Authorization::Wrong => {
            tracing::warn!(%path, "refused a request with a wrong bearer token");
            return unauthorized(
                "Bearer realm=\"testloop\", error=\"invalid_token\"",
                "Unauthorized: the bearer token is not the one testloop serve was started with\n",
            );
        }
    }

    let method = request.method().clone();
    // Event streams live as long as their session: they count as sessions, not as requests.
    let long_lived = method == Method::GET && (path == "/sse" || path == "/mcp");
    let permit = if long_lived {
        None
    } else {
        match gate.load.admit() {
            Some(permit) => Some(permit),
            None => {
                tracing::warn!(%path, "refused a request: too many in flight");
                return busy(format!(
                    "Service Unavailable: {MAX_IN_FLIGHT_REQUESTS} requests are already in \
                     flight; retry shortly\n"
                ));
            }
        }
    };

    let (request, body) = if method == Method::GET || method == Method::HEAD {
        (request, None)
    } else {
        match read_body(request).await {
            Ok((request, body)) => (request, Some(body)),
            Err(response) => return response,
        }
    };

    let response = if opens_session(&request, body.as_deref()) {
        let _opening = gate.load.opening.lock().await;
        let open = gate.load.sessions().await;
        if open >= MAX_SESSIONS {
            tracing::warn!(%path, open, "refused a new session: too many open");
            return busy(format!(
                "Service Unavailable: {MAX_SESSIONS} sessions are already open; close one \
                 (DELETE /mcp, or end an SSE stream) or retry later\n"
            ));
        }
        next.run(request).await
    } else {
        next.run(request).await
    };

    match permit {
        // The place stays taken until the response body has been sent (or dropped).
        Some(permit) => response.map(|body| {
            Body::new(body.map_frame(move |frame| {
                let _held = &permit;
                frame
            }))
        }),
        None => response,
    }
}

/// Reads the body into memory, refusing one larger than [`MAX_MESSAGE_BYTES`].
async fn read_body(request: Request) -> Result<(Request, axum::body::Bytes), Response> {
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Payload Too Large: a request body may hold at most {MAX_MESSAGE_BYTES} bytes\n"
            ),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_MESSAGE_BYTES as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let bytes = match Limited::new(body, MAX_MESSAGE_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => return Err(too_large()),
        Err(_) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "Bad Request: the request body could not be read\n",
            ));
        }
    };
    Ok((Request::from_parts(parts, Body::from(bytes.clone())), bytes))
}

/// `GET /sse`, or an `initialize` posted to `/mcp` without a session id.
fn opens_session(request: &Request, body: Option<&[u8]>) -> bool {
    let path = request.uri().path();
    if request.method() == Method::GET {
        return path == "/sse";
    }
    if request.method() != Method::POST
        || path != "/mcp"
        || request.headers().contains_key("mcp-session-id")
    {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        method: Option<&'a str>,
    }
    body.and_then(|body| serde_json::from_slice::<Message<'_>>(body).ok())
        .and_then(|message| message.method)
        == Some("initialize")
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

fn unauthorized(challenge: &'static str, message: &'static str) -> Response {
    let mut response = refuse(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

fn busy(message: String) -> Response {
    let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn shutting_down() -> Response {
    let mut response = refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service Unavailable: testloop is shutting down\n",
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], origins: &[&str]) -> Policy {
        let owned = |list: &[&str]| list.iter().map(|text| text.to_string()).collect::<Vec<_>>();
        Policy::new(
            "127.0.0.1:8080".parse().unwrap(),
            &owned(hosts),
            &owned(origins),
            Some("s3cret".parse().unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(!constant_time_eq(b"s3cretX", b"s3cret"));
        assert!(!constant_time_eq(b"", b"s3cret"));
        assert!(!constant_time_eq(b"S3cret", b"s3cret"));
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let token: Token = "s3cret".parse().unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(!format!("{:?}", policy(&[], &[])).contains("s3cret"));
        assert!("  ".parse::<Token>().is_err());
    }

    #[test]
    fn loopback_and_listed_hosts_pass() {
        let policy = policy(&["example.com", "other.test:9000"], &[]);
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "LOCALHOST:3",
            "example.com",
            "example.com:443",
            "other.test:9000",
        ] {
            assert!(policy.host_allowed(host), "{host}");
        }
        for host in [
            "evil.test",
            "other.test:9001",
            "other.test",
            "10.0.0.1:8080",
            "",
        ] {
            assert!(!policy.host_allowed(host), "{host}");
        }
    }

    #[test]
    fn loopback_and_listed_origins_pass() {
        let policy = policy(&[], &["https://app.example.com"]);
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "https://[::1]",
            "https://app.example.com",
            "https://app.example.com/",
        ] {
            assert!(policy.origin_allowed(origin), "{origin}");
        }
        for origin in [
            "https://evil.test",
            "http://app.example.com",
            "https://app.example.com:8443",
            "null",
            "localhost",
        ] {
            assert!(!policy.origin_allowed(origin), "{origin}");
        }
    }

    #[test]
    fn bad_allow_list_entries_are_refused() {
        let listen = "127.0.0.1:8080".parse().unwrap();
        assert!(Policy::new(listen, &["a b".into()], &[], None).is_err());
        assert!(Policy::new(listen, &[], &["example.com".into()], None).is_err());
        assert!(Policy::new(listen, &[], &["https://x.test/path".into()], None).is_err());
    }
}
