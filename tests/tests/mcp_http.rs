//! `testloop serve --transport http`, driven over 127.0.0.1 by the rmcp client, by hand-written
//! handshake-era and legacy SSE clients, and by raw requests that probe each security rule and
//! each limit at its edge.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use testloop_tests::{HttpServer, sse_data, testloop};

// The limits, as `server/src/serve/limits.rs` defines them.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
const MAX_SESSIONS: usize = 64;
const MAX_IN_FLIGHT_REQUESTS: usize = 64;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const CONNECTION_CLOSE_GRACE: Duration = Duration::from_secs(2);

const TOKEN: &str = "test-token-0123456789abcdef";
/// How long any one answer may take.
const ANSWER: Duration = Duration::from_secs(20);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(ANSWER)
        .build()
        .unwrap()
}

fn initialize(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "handshake-era", "version": "1"}
        }
    })
}

/// A POST to `/mcp` as a streamable HTTP client sends it.
fn post_mcp(server: &HttpServer, token: Option<&str>) -> reqwest::RequestBuilder {
    let request = client()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// Opens a handshake-era session; its id.
async fn open_session(server: &HttpServer, token: Option<&str>) -> Result<String, String> {
    let response = post_mcp(server, token)
        .body(initialize(1).to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    match session {
        Some(session) if status == 200 => Ok(session),
        _ => Err(format!("{status}: {body}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_needs_no_token_and_names_the_version() {
    let data = tempfile::tempdir().unwrap();
    let server = HttpServer::start(data.path(), Some(TOKEN), &[]);
    let response = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        server.stderr_contains("bearer token required", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rmcp_client_lists_and_calls_tools_over_streamable_http() {
    let data = tempfile::tempdir().unwrap();
    let server = HttpServer::start(data.path(), Some(TOKEN), &[]);
    let transport = StreamableHttpClientTransport::with_client(
        client(),
        StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")).auth_header(TOKEN),
    );
    let mcp = tokio::time::timeout(ANSWER, ().serve(transport))
        .await
        .expect("connect in time")
        .expect("connect");
    let tools = tokio::time::timeout(ANSWER, mcp.list_all_tools())
        .await
        .unwrap()
        .expect("tools/list");
    assert!(
        tools.iter().any(|tool| tool.name == "list_workflows"),
        "{tools:?}"
    );
    let listed = tokio::time::timeout(
        ANSWER,
        mcp.call_tool(CallToolRequestParams::new("list_workflows")),
    )
    .await
    .unwrap()
    .expect("tools/call");
    assert_eq!(
        listed.structured_content.expect("structured output")["workflows"],
        json!([])
    );
    let _ = tokio::time::timeout(ANSWER, mcp.cancel()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handshake_era_client_gets_a_session_and_calls_a_tool() {
    let data = tempfile::tempdir().unwrap();
    let server = HttpServer::start(data.path(), None, &[]);
    let session = open_session(&server, None).await.expect("a session");

    let initialized = post_mcp(&server, None)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(initialized.status(), 202);

    let called = post_mcp(&server, None)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .body(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "list_workflows", "arguments": {}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 200);
    let messages = sse_data(&called.text().await.unwrap());
    let answer = messages
        .iter()
        .find(|message| message["id"] == 2)
        .unwrap_or_else(|| panic!("no answer in {messages:?}"));
    assert_eq!(
        answer["result"]["structuredContent"]["workflows"],
        json!([])
    );

    // Ending the session: later requests on it are refused.
    let deleted = client()
        .delete(server.url("/mcp"))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let after = post_mcp(&server, None)
        .header("mcp-session-id", &session)
        .body(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 404);
}

/// A minimal legacy HTTP+SSE client.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(server: &HttpServer, token: Option<&str>) -> Result<Self, reqwest::Response> {
        let mut request = client()
            .get(server.url("/sse"))
            .header("accept", "text/event-stream");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        if response.status() != 200 {
            return Err(response);
        }
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The next event's name and data (comments skipped).
    async fn next(&mut self) -> (String, String) {
        let deadline = Instant::now() + ANSWER;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return (event, data.join("\n"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .expect("an event in time")
                .expect("read the event stream")
                .expect("the event stream stays open");
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }

    /// The next `message` event answering `id`.
    async fn answer(&mut self, id: u64) -> Value {
        loop {
            let (event, data) = self.next().await;
            if event != "message" {
                continue;
            }
            let message: Value = serde_json::from_str(&data).expect("JSON in a message event");
            if message["id"] == id {
                return message;
            }
        }
    }
}

async fn post_message(server: &HttpServer, endpoint: &str, message: Value) -> reqwest::Response {
    client()
        .post(server.url(endpoint))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(message.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_legacy_sse_transport_carries_requests_and_answers() {
    let data = tempfile::tempdir().unwrap();
    let server = HttpServer::start(data.path(), Some(TOKEN), &[]);
    let mut events = EventStream::open(&server, Some(TOKEN)).await.unwrap();
    let (event, endpoint) = events.next().await;
    assert_eq!(event, "endpoint");
    assert!(endpoint.starts_with("/message?sessionId="), "{endpoint}");

    let mut init = initialize(1);
    init["params"]["protocolVersion"] = json!("2024-11-05");
    assert_eq!(post_message(&server, &endpoint, init).await.status(), 202);
    let initialized = events.answer(1).await;
    assert!(
        initialized["result"]["protocolVersion"].is_string(),
        "{initialized}"
    );
    let notified = post_message(
        &server,
        &endpoint,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(notified.status(), 202);

    let listed = post_message(
        &server,
        &endpoint,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(listed.status(), 202);
    let tools = events.answer(2).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    assert!(names.contains(&"list_workflows"), "{tools}");

    let called = post_message(
        &server,
        &endpoint,
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "list_workflows", "arguments": {}}}),
    )
    .await;
    assert_eq!(called.status(), 202);
    let answer = events.answer(3).await;
    assert_eq!(
        answer["result"]["structuredContent"]["workflows"],
        json!([])
    );

    // Not JSON-RPC: 400, and the session goes on. An unknown session: 404.
    let garbage = client()
        .post(server.url(&endpoint))
        .bearer_auth(TOKEN)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let unknown = post_message(
        &server,
        "/message?sessionId=nosuchsession",
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let again = post_message(
        &server,
        &endpoint,
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}),
    )
    .await;
    assert_eq!(again.status(), 202);
    assert!(events.answer(4).await["result"]["tools"].is_array());
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_origins_and_hosts_get_403_on_every_route() {
    let data = tempfile::tempdir().unwrap();
    let server = HttpServer::start(
        data.path(),
        Some(TOKEN),
        &[
            "--allowed-origin",
            "https://app.example.com",
            "--allowed-host",
            "testloop.example.com",
        ],
    );
    for path in ["/mcp", "/sse", "/message?sessionId=x", "/nowhere"] {
        let foreign_origin = client()
            .post(server.url(path))
            .bearer_auth(TOKEN)
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(foreign_origin.status(), 403, "{path}");
        assert!(foreign_origin.text().await.unwrap().contains("Origin"));

        let foreign_host = client()
            .post(server.url(path))
            .bearer_auth(TOKEN)
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(foreign_host.status(), 403, "{path}");
        assert!(foreign_host.text().await.unwrap().contains("Host"));
    }

    // Allowed: loopback origins, the listed origin, no origin; loopback hosts and the listed host.
    for origin in [
        Some("http://localhost:3000"),
        Some("https://app.example.com"),
        None,
    ] {
        let mut request = post_mcp(&server, Some(TOKEN)).body(initialize(1).to_string());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        assert_eq!(request.send().await.unwrap().status(), 200, "{origin:?}");
    }
    let port = server.address.rsplit(':').next().unwrap().to_owned();
    for host in [
        format!("localhost:{port}"),
        "testloop.example.com".to_owned(),
    ] {
        let response = post_mcp(&server, Some(TOKEN))
            .header("host", &host)
            .body(initialize(1).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_required_on_every_request_but_health() {
    let data = tempfile::tempdir().unwrap();
    // The most verbose logging there is, so that a token written anywhere would show.
    let server =
        HttpServer::start_with_env(data.path(), Some(TOKEN), &[], &[("TESTLOOP_LOG", "trace")]);
    for path in ["/mcp", "/sse", "/message?sessionId=x"] {
        let missing = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(missing.status(), 401, "{path}");
        let challenge = missing.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    for wrong in [
        "Bearer wrong",
        "Bearer test-token-0123456789abcdeX",
        "Bearer test-token-0123456789abcdef0",
        "Basic dGVzdDp0ZXN0",
        "test-token-0123456789abcdef",
    ] {
        let response = post_mcp(&server, None)
            .header("authorization", wrong)
            .body(initialize(1).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{wrong}");
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let right = post_mcp(&server, None)
        .header("authorization", format!("bearer {TOKEN}"))
        .body(initialize(1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let health = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        server.stderr_contains("DEBUG", Duration::from_secs(10))
            || server.stderr().contains("TRACE"),
        "trace logging was not on: {}",
        server.stderr()
    );
    assert!(
        !server.stderr().contains(TOKEN) && !server.stderr().contains("0123456789abcde"),
        "the token reached the log: {}",
        server.stderr()
    );
}

/// An `initialize` padded with spaces to exactly `size` bytes.
fn padded_initialize(size: usize) -> String {
    let mut body = initialize(1).to_string();
    body.push_str(&" ".repeat(size - body.len()));
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_are_capped_at_max_message_bytes() {
    let data = tempfile::tempdir().unwrap();
    let server = HttpServer::start(data.path(), Some(TOKEN), &[]);
    let at_limit = post_mcp(&server, Some(TOKEN))
        .body(padded_initialize(MAX_MESSAGE_BYTES))
        .send()
        .await
        .unwrap();
    assert_eq!(at_limit.status(), 200);

    // One byte more is refused, from its declared length: no need to send it.
    let over = raw_status(
        &server,
        "/mcp",
        &format!("Content-Length: {}\r\n", MAX_MESSAGE_BYTES + 1),
        b"",
    );
    assert_eq!(over, 413);

    // Without a Content-Length, the body is counted as it arrives.
    let mut chunked = Vec::new();
    for chunk in padded_initialize(MAX_MESSAGE_BYTES + 1)
        .as_bytes()
        .chunks(64 * 1024)
    {
        write!(chunked, "{:x}\r\n", chunk.len()).unwrap();
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    let streamed = raw_status(&server, "/mcp", "Transfer-Encoding: chunked\r\n", &chunked);
    assert_eq!(streamed, 413);

    // The same cap on the legacy transport.
    let mut events = EventStream::open(&server, Some(TOKEN)).await.unwrap();
    let (_, endpoint) = events.next().await;
    let over = raw_status(
        &server,
        &endpoint,
        &format!("Content-Length: {}\r\n", MAX_MESSAGE_BYTES + 1),
        b"",
    );
    assert_eq!(over, 413);
    let at_limit = client()
        .post(server.url(&endpoint))
        .bearer_auth(TOKEN)
        .body(padded_initialize(MAX_MESSAGE_BYTES))
        .send()
        .await
        .unwrap();
    assert_eq!(at_limit.status(), 202);
    assert!(events.answer(1).await["result"].is_object());
}

/// The status of a POST written by hand: `headers` (CRLF-terminated lines) and then `body`, sent
/// without waiting, so that a refusal can come before the body would have been read.
fn raw_status(server: &HttpServer, path: &str, headers: &str, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream.set_read_timeout(Some(ANSWER)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
         {headers}\r\n",
        server.address
    )
    .unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head).into_owned();
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head}"))
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let mut child = testloop(data.path())
        .args(["serve", "--transport", "http", "--listen", "0.0.0.0:0"])
        .env_remove("TESTLOOP_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + ANSWER;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{stderr}"
    );
    assert!(stderr.contains("TESTLOOP_TOKEN"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_sessions_are_limited_across_both_transports() {
    let data = tempfile::tempdir().unwrap();
    let server = HttpServer::start(data.path(), None, &[]);
    let mut streams = Vec::new();
    for _ in 0..2 {
        streams.push(
            EventStream::open(&server, None)
                .await
                .expect("an SSE session"),
        );
    }
    let mut sessions = Vec::new();
    for _ in 2..MAX_SESSIONS {
        sessions.push(open_session(&server, None).await.expect("a session"));
    }

    let refused = open_session(&server, None).await.unwrap_err();
    assert!(refused.starts_with("503"), "{refused}");
    assert!(refused.contains("sessions are already open"), "{refused}");
    let Err(refused) = EventStream::open(&server, None).await else {
        panic!("an SSE session beyond the limit");
    };
    assert_eq!(refused.status(), 503);

    // Requests within open sessions still pass.
    let within = post_mcp(&server, None)
        .header("mcp-session-id", &sessions[0])
        .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(within.status(), 202);

    // Closing one makes room for one.
    let deleted = client()
        .delete(server.url("/mcp"))
        .header("mcp-session-id", sessions.pop().unwrap())
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    open_session(&server, None)
        .await
        .expect("a session after one closed");
    drop(streams.pop());
    let deadline = Instant::now() + ANSWER;
    while EventStream::open(&server, None).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the dropped SSE session never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A POST whose body is only half sent: in flight until the rest comes.
fn half_sent(server: &HttpServer, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream.set_read_timeout(Some(ANSWER)).unwrap();
    let half = body.len() / 2;
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAccept: application/json, text/event-stream\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        server.address,
        body.len(),
        &body[..half]
    )
    .unwrap();
    stream.flush().unwrap();
    stream
}

/// A quick request's status.
async fn probe(server: &HttpServer) -> reqwest::StatusCode {
    post_mcp(server, None)
        .body("{}")
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_are_limited() {
    let data = tempfile::tempdir().unwrap();
    let server = HttpServer::start(data.path(), None, &[]);
    let body = initialize(1).to_string();
    let mut held: Vec<TcpStream> = (0..MAX_IN_FLIGHT_REQUESTS)
        .map(|_| half_sent(&server, &body))
        .collect();

    let deadline = Instant::now() + ANSWER;
    loop {
        let response = post_mcp(&server, None).body("{}").send().await.unwrap();
        if response.status() == 503 {
            assert_eq!(response.headers()["retry-after"], "1");
            assert!(response.text().await.unwrap().contains("in flight"));
            break;
        }
        assert!(Instant::now() < deadline, "never refused beyond the limit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Probes do not need a place.
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // One finishes: one place is free again.
    let mut finished = held.pop().unwrap();
    finished
        .write_all(&body.as_bytes()[body.len() / 2..])
        .unwrap();
    let mut head = [0u8; 12];
    finished.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    drop(finished);
    let deadline = Instant::now() + ANSWER;
    while probe(&server).await == 503 {
        assert!(Instant::now() < deadline, "the place never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(held);
}

#[test]
fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let data = tempfile::tempdir().unwrap();
    let mut server = HttpServer::start(data.path(), None, &[]);
    let body = initialize(1).to_string();
    let mut in_flight = half_sent(&server, &body);
    std::thread::sleep(Duration::from_millis(200));

    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.wait_exit(Duration::ZERO),
        None,
        "exited with a request in flight"
    );
    // No new requests meanwhile.
    let refused = match TcpStream::connect(&server.address) {
        Err(_) => true,
        Ok(mut stream) => {
            stream.set_read_timeout(Some(ANSWER)).unwrap();
            write!(
                stream,
                "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                server.address
            )
            .unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            !answer.starts_with("HTTP/1.1 200")
        }
    };
    assert!(refused, "a new request was served while draining");

    in_flight
        .write_all(&body.as_bytes()[body.len() / 2..])
        .unwrap();
    let mut answer = String::new();
    let _ = in_flight.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("protocolVersion"), "{answer}");

    let code = server.wait_exit(SHUTDOWN_GRACE + Duration::from_secs(5));
    assert_eq!(code, Some(Some(0)), "{}", server.stderr());
    assert!(
        signalled.elapsed() < SHUTDOWN_GRACE,
        "{:?}",
        signalled.elapsed()
    );
    assert!(
        server.stderr_contains("shutting down", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
}

#[test]
fn a_second_signal_quits_at_once() {
    let data = tempfile::tempdir().unwrap();
    let mut server = HttpServer::start(data.path(), None, &[]);
    let _in_flight = half_sent(&server, &initialize(1).to_string());
    std::thread::sleep(Duration::from_millis(200));
    server.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.wait_exit(Duration::ZERO), None);
    server.signal(libc::SIGINT);
    let code = server.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(Some(130)), "{}", server.stderr());
}

#[test]
fn a_request_still_in_flight_after_the_grace_is_cut_off() {
    let data = tempfile::tempdir().unwrap();
    let mut server = HttpServer::start(data.path(), None, &[]);
    let _stuck = half_sent(&server, &initialize(1).to_string());
    std::thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let code = server.wait_exit(SHUTDOWN_GRACE + CONNECTION_CLOSE_GRACE + Duration::from_secs(5));
    let waited = signalled.elapsed();
    assert_eq!(code, Some(Some(0)), "{}", server.stderr());
    assert!(
        waited >= SHUTDOWN_GRACE,
        "gave up after {waited:?}, before the grace"
    );
    assert!(
        server.stderr_contains("still in flight", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
}
