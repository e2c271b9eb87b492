//! The legacy HTTP+SSE transport (MCP 2024-11-05), for clients that predate streamable HTTP.
//!
//! `GET /sse` opens a session: an event stream whose first event, `endpoint`, names where to
//! post (`/message?sessionId=…`). Each JSON-RPC message posted there is answered `202 Accepted`;
//! its response travels as a `message` event on the stream. The session ends when the client
//! drops the stream or the server shuts down. rmcp 3 has no server for this transport, so each
//! session is a [`Transport`] over two channels, served by rmcp like any other.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::StatusCode;
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, RequestId, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServiceExt};
use testloop_tools::TestloopServer;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::limits::{SSE_CHANNEL_CAPACITY, SSE_KEEP_ALIVE};
use super::security::Load;

/// Where clients post their messages.
pub const MESSAGE_PATH: &str = "/message";

/// The open legacy sessions.
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    server: TestloopServer,
    /// Cancelled when serving ends: every session and stream stops.
    stop: CancellationToken,
}

#[derive(Clone)]
struct Session {
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    /// The in-flight places of the requests this session has not answered yet.
    pending: Arc<Mutex<HashMap<RequestId, OwnedSemaphorePermit>>>,
}

impl Sessions {
    pub fn new(server: TestloopServer, stop: CancellationToken) -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
            server,
            stop,
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.open).len()
    }

    fn get(&self, id: &str) -> Option<Session> {
        lock(&self.open).get(id).cloned()
    }
}

/// The state of the SSE routes.
#[derive(Clone)]
pub struct Legacy {
    pub sessions: Arc<Sessions>,
    pub load: Arc<Load>,
}

/// `GET /sse`: opens a session and streams its messages.
pub async fn open(State(legacy): State<Legacy>) -> Response {
    let sessions = legacy.sessions;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (to_server, from_client) = mpsc::channel(SSE_CHANNEL_CAPACITY);
    let (to_client, for_client) = mpsc::channel(SSE_CHANNEL_CAPACITY);
    let pending = Arc::new(Mutex::new(HashMap::new()));
    lock(&sessions.open).insert(
        id.clone(),
        Session {
            to_server,
            pending: Arc::clone(&pending),
        },
    );
    let stop = sessions.stop.child_token();
    let transport = SessionTransport {
        to_client,
        from_client,
        pending,
    };
    let server = sessions.server.clone();
    let session_stop = stop.clone();
    tokio::spawn(async move {
        match server.serve_with_ct(transport, session_stop.clone()).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "a legacy SSE session ended before it began"),
        }
        session_stop.cancel();
    });
    tracing::debug!(session = %id, "legacy SSE session opened");

    let closing = Closing {
        id: id.clone(),
        sessions: Arc::clone(&sessions),
        stop: stop.clone(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("{MESSAGE_PATH}?sessionId={id}"));
    let messages = ReceiverStream::new(for_client).map(move |message| {
        let _held = &closing;
        Event::default()
            .event("message")
            .json_data(&message)
            .or_else(|error| {
                tracing::error!(%error, "cannot encode a message for a legacy SSE client");
                Ok::<_, Infallible>(Event::default().comment("unencodable message dropped"))
            })
    });
    let stream = futures::stream::once(async move { Ok::<_, Infallible>(endpoint) })
        .chain(messages)
        .take_until(stop.cancelled_owned());
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE))
        .into_response()
}

/// Ends a session when its stream is dropped: the client went away, or serving ended.
struct Closing {
    id: String,
    sessions: Arc<Sessions>,
    stop: CancellationToken,
}

impl Drop for Closing {
    fn drop(&mut self) {
        lock(&self.sessions.open).remove(&self.id);
        self.stop.cancel();
        tracing::debug!(session = %self.id, "legacy SSE session closed");
    }
}

#[derive(serde::Deserialize)]
pub struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// `POST /message?sessionId=…`: hands one JSON-RPC message to its session.
pub async fn post(
    State(legacy): State<Legacy>,
    Query(query): Query<MessageQuery>,
    body: Bytes,
) -> Response {
    let Some(session) = legacy.sessions.get(&query.session_id) else {
        return (
            StatusCode::NOT_FOUND,
            "Not Found: no such session; open one with GET /sse\n",
        )
            .into_response();
    };
    let message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("Bad Request: not a JSON-RPC message: {error}\n"),
            )
                .into_response();
        }
    };
    if let JsonRpcMessage::Request(request) = &message {
        let Some(permit) = legacy.load.admit() else {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(http::header::RETRY_AFTER, "1")],
                format!(
                    "Service Unavailable: {} requests are already in flight; retry shortly\n",
                    super::limits::MAX_IN_FLIGHT_REQUESTS
                ),
            )
                .into_response();
        };
        lock(&session.pending).insert(request.id.clone(), permit);
    }
    let id = match &message {
        JsonRpcMessage::Request(request) => Some(request.id.clone()),
        _ => None,
    };
    if session.to_server.send(message).await.is_err() {
        if let Some(id) = id {
            lock(&session.pending).remove(&id);
        }
        return (StatusCode::GONE, "Gone: the session has ended\n").into_response();
    }
    (StatusCode::ACCEPTED, "Accepted\n").into_response()
}

/// The server's side of one session: messages in from `POST /message`, out to the stream.
struct SessionTransport {
    to_client: mpsc::Sender<ServerJsonRpcMessage>,
    from_client: mpsc::Receiver<ClientJsonRpcMessage>,
    pending: Arc<Mutex<HashMap<RequestId, OwnedSemaphorePermit>>>,
}

/// The client's stream is gone.
#[derive(Debug)]
pub struct StreamClosed;

impl std::fmt::Display for StreamClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the legacy SSE stream is closed")
    }
}

impl std::error::Error for StreamClosed {}

impl Transport<RoleServer> for SessionTransport {
    type Error = StreamClosed;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let to_client = self.to_client.clone();
        let pending = Arc::clone(&self.pending);
        async move {
            let answered = match &item {
                JsonRpcMessage::Response(response) => Some(response.id.clone()),
                JsonRpcMessage::Error(error) => error.id.clone(),
                _ => None,
            };
            let result = to_client.send(item).await.map_err(|_| StreamClosed);
            if let Some(id) = answered {
                lock(&pending).remove(&id);
            }
            result
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        self.from_client.recv().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.from_client.close();
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
