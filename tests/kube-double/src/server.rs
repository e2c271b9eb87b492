//! The REST and watch protocol.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{Change, Control, State, TOKEN, kubelet, selector};

/// Requests received, by verb and resource (`("create", "pods")`, `("get", "pods/log")`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub by_kind: BTreeMap<(String, String), u64>,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }

    pub fn get(&self, verb: &str, resource: &str) -> u64 {
        self.by_kind
            .get(&(verb.to_owned(), resource.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Every request but the log streams.
    pub fn without_logs(&self) -> u64 {
        self.by_kind
            .iter()
            .filter(|((_, resource), _)| resource != "pods/log")
            .map(|(_, count)| count)
            .sum()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

type Shared = Arc<State>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/version", get(version))
        .route(
            "/api/v1/namespaces/{ns}/{resource}",
            get(list_or_watch).post(create).delete(delete_collection),
        )
        .route(
            "/api/v1/namespaces/{ns}/{resource}/{name}",
            get(get_one).delete(delete_one),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(logs))
        .with_state(state)
}

/// A `Status` error, as the API server sends it.
pub fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    let mut response = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response();
    if code == 429 {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    response
}

/// Counts the request, checks the token and the injected failures.
fn admit(
    state: &State,
    headers: &HeaderMap,
    verb: &str,
    resource: &str,
) -> Result<(), Box<Response>> {
    *lock(&state.requests)
        .by_kind
        .entry((verb.to_owned(), resource.to_owned()))
        .or_default() += 1;
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("Bearer {TOKEN}"));
    if !authorized {
        return Err(Box::new(status(401, "Unauthorized", "Unauthorized")));
    }
    let mut faults = lock(&state.faults);
    if let Some(fault) = faults
        .failing
        .iter_mut()
        .find(|(v, r, _, count)| v == verb && r == resource && *count > 0)
    {
        fault.3 -= 1;
        let code = fault.2;
        return Err(Box::new(match code {
            429 => status(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ),
            code => status(
                code,
                "InternalError",
                "an error on the server (\"injected by the double\") has prevented the request from succeeding",
            ),
        }));
    }
    Ok(())
}

fn kind_of(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "pods" => "Pod",
        "configmaps" => "ConfigMap",
        "secrets" => "Secret",
        "services" => "Service",
        "events" => "Event",
        _ => return None,
    })
}

/// Checks `object` against the resource's Kubernetes type.
fn validate(resource: &str, object: &Value) -> Result<(), String> {
    use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Secret, Service};
    let result = match resource {
        "pods" => serde_json::from_value::<Pod>(object.clone()).map(|_| ()),
        "configmaps" => serde_json::from_value::<ConfigMap>(object.clone()).map(|_| ()),
        "secrets" => serde_json::from_value::<Secret>(object.clone()).map(|_| ()),
        "services" => serde_json::from_value::<Service>(object.clone()).map(|_| ()),
        _ => serde_json::from_value::<Event>(object.clone()).map(|_| ()),
    };
    result.map_err(|error| error.to_string())
}

pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

async fn version() -> Response {
    axum::Json(json!({"major": "1", "minor": "37", "gitVersion": "v1.37.0-double", "platform": "linux/amd64"})).into_response()
}

async fn create(
    Extract(state): Extract<Shared>,
    Path((ns, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = admit(&state, &headers, "create", &resource) {
        return *response;
    }
    let Some(kind) = kind_of(&resource) else {
        return status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({resource})"),
        );
    };
    let mut object: Value = match serde_json::from_slice(&body) {
        Ok(object) => object,
        Err(error) => return status(400, "BadRequest", &format!("the body is not JSON: {error}")),
    };
    if let Err(error) = validate(&resource, &object) {
        return status(
            400,
            "BadRequest",
            &format!("the body is not a valid {kind}: {error}"),
        );
    }
    let meta = &mut object["metadata"];
    let name = match (meta["name"].as_str(), meta["generateName"].as_str()) {
        (Some(name), _) if !name.is_empty() => name.to_owned(),
        (_, Some(prefix)) => format!("{prefix}{:05x}", rand_suffix()),
        _ => {
            return status(
                422,
                "Invalid",
                &format!(
                    "{kind} \"\" is invalid: metadata.name: Required value: name or generateName is required"
                ),
            );
        }
    };
    if resource == "pods"
        && object["spec"]["containers"]
            .as_array()
            .is_none_or(|c| c.is_empty())
    {
        return status(
            422,
            "Invalid",
            &format!("Pod \"{name}\" is invalid: spec.containers: Required value"),
        );
    }
    if state.get(&resource, &ns, &name).is_some() {
        return status(
            409,
            "AlreadyExists",
            &format!("{resource} \"{name}\" already exists"),
        );
    }
    object["apiVersion"] = json!("v1");
    object["kind"] = json!(kind);
    let meta = &mut object["metadata"];
    meta["name"] = json!(name);
    meta["namespace"] = json!(ns);
    meta["uid"] = json!(uuid());
    meta["creationTimestamp"] = json!(now());
    if resource == "secrets" {
        merge_string_data(&mut object);
    }
    if resource == "pods" {
        object["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    }
    let stored = state.put(&resource, &ns, &name, object, "ADDED");
    if resource == "pods" {
        kubelet::start(Arc::clone(&state), ns, name);
    }
    (StatusCode::CREATED, axum::Json(stored)).into_response()
}

fn merge_string_data(secret: &mut Value) {
    use base64::Engine;
    let Some(string_data) = secret.get("stringData").and_then(Value::as_object).cloned() else {
        return;
    };
    for (key, value) in string_data {
        let text = value.as_str().unwrap_or_default();
        secret["data"][key] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
    if let Some(map) = secret.as_object_mut() {
        map.remove("stringData");
    }
}

fn rand_suffix() -> u32 {
    uuid_bytes()[0] & 0xfffff
}

fn uuid_bytes() -> [u32; 4] {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    [
        n.wrapping_mul(2654435761) ^ nanos,
        n,
        nanos,
        std::process::id(),
    ]
}

fn uuid() -> String {
    let [a, b, c, d] = uuid_bytes();
    format!(
        "{a:08x}-{:04x}-4{:03x}-8{:03x}-{c:08x}{:04x}",
        b & 0xffff,
        (b >> 16) & 0xfff,
        d & 0xfff,
        d >> 16
    )
}

async fn get_one(
    Extract(state): Extract<Shared>,
    Path((ns, resource, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&state, &headers, "get", &resource) {
        return *response;
    }
    match state.get(&resource, &ns, &name) {
        Some(object) => axum::Json(object).into_response(),
        None => status(404, "NotFound", &format!("{resource} \"{name}\" not found")),
    }
}

async fn delete_one(
    Extract(state): Extract<Shared>,
    Path((ns, resource, name)): Path<(String, String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = admit(&state, &headers, "delete", &resource) {
        return *response;
    }
    let Some(object) = state.get(&resource, &ns, &name) else {
        return status(404, "NotFound", &format!("{resource} \"{name}\" not found"));
    };
    let grace = query
        .get("gracePeriodSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| {
            serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|options| options["gracePeriodSeconds"].as_u64())
        })
        .unwrap_or(30);
    (
        StatusCode::OK,
        axum::Json(delete(&state, &resource, &ns, &name, object, grace)),
    )
        .into_response()
}

/// Deletes an object; a pod's processes are stopped first (in the background, as the kubelet
/// does), and what it owns goes with it.
fn delete(
    state: &Shared,
    resource: &str,
    ns: &str,
    name: &str,
    object: Value,
    grace: u64,
) -> Value {
    if resource != "pods" {
        return state.put(resource, ns, name, object, "DELETED");
    }
    let mut marked = object;
    marked["metadata"]["deletionTimestamp"] = json!(now());
    marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
    let marked = state.put(resource, ns, name, marked, "MODIFIED");
    let state = Arc::clone(state);
    let (ns, name) = (ns.to_owned(), name.to_owned());
    tokio::spawn(async move {
        kubelet::stop(&state, &ns, &name, Duration::from_secs(grace.min(2))).await;
        if let Some(pod) = state.get("pods", &ns, &name) {
            let uid = pod["metadata"]["uid"].clone();
            state.put("pods", &ns, &name, pod, "DELETED");
            collect_garbage(&state, &ns, &uid);
        }
        lock(&state.pod_dirs).remove(&(ns.clone(), name.clone()));
        lock(&state.logs).retain(|(n, p, _), _| !(n == &ns && p == &name));
    });
    marked
}

fn collect_garbage(state: &State, ns: &str, owner_uid: &Value) {
    let owned: Vec<(String, String, Value)> = lock(&state.store)
        .objects
        .iter()
        .filter(|((_, namespace, _), object)| {
            namespace == ns
                && object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|owners| owners.iter().any(|owner| &owner["uid"] == owner_uid))
        })
        .map(|((resource, _, name), object)| (resource.clone(), name.clone(), object.clone()))
        .collect();
    for (resource, name, object) in owned {
        state.put(&resource, ns, &name, object, "DELETED");
    }
}

async fn delete_collection(
    Extract(state): Extract<Shared>,
    Path((ns, resource)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&state, &headers, "deletecollection", &resource) {
        return *response;
    }
    let Some(selector) =
        selector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
    else {
        return status(400, "BadRequest", "unable to parse the label selector");
    };
    let matching: Vec<(String, Value)> = lock(&state.store)
        .objects
        .iter()
        .filter(|((r, n, _), object)| r == &resource && n == &ns && selector.matches(object))
        .map(|((_, _, name), object)| (name.clone(), object.clone()))
        .collect();
    let mut items = Vec::new();
    for (name, object) in matching {
        items.push(delete(&state, &resource, &ns, &name, object, 0));
    }
    let kind = kind_of(&resource).unwrap_or("Object");
    axum::Json(
        json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {}, "items": items}),
    )
    .into_response()
}

async fn list_or_watch(
    Extract(state): Extract<Shared>,
    Path((ns, resource)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    if let Err(response) = admit(
        &state,
        &headers,
        if watching { "watch" } else { "list" },
        &resource,
    ) {
        return *response;
    }
    let Some(kind) = kind_of(&resource) else {
        return status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({resource})"),
        );
    };
    let Some(selector) =
        selector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
    else {
        return status(400, "BadRequest", "unable to parse the label selector");
    };
    let field_name = query
        .get("fieldSelector")
        .and_then(|f| f.strip_prefix("metadata.name="))
        .map(str::to_owned);
    let wanted = move |change_resource: &str, change_ns: &str, object: &Value| {
        change_resource == resource
            && change_ns == ns
            && selector.matches(object)
            && field_name
                .as_deref()
                .is_none_or(|name| object["metadata"]["name"].as_str() == Some(name))
    };
    if !watching {
        let store = lock(&state.store);
        let items: Vec<Value> = store
            .objects
            .iter()
            .filter(|((r, n, _), object)| wanted(r, n, object))
            .map(|(_, object)| object.clone())
            .collect();
        let rv = store.rv;
        drop(store);
        return axum::Json(json!({
            "apiVersion": "v1", "kind": format!("{kind}List"),
            "metadata": {"resourceVersion": rv.to_string()}, "items": items,
        }))
        .into_response();
    }

    let from = query.get("resourceVersion").cloned().unwrap_or_default();
    let initial_events = query.get("sendInitialEvents").map(String::as_str) == Some("true");
    let bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    // Subscribe and read the backlog under the store's lock, so that no change falls between.
    let store = lock(&state.store);
    let mut changes = state.changes.subscribe();
    let mut control = state.control.subscribe();
    let mut backlog: Vec<Value> = Vec::new();
    let mut last_rv = store.rv;
    let start_rv = from.parse::<u64>().unwrap_or(0);
    if from.is_empty() || from == "0" || initial_events {
        for ((r, n, _), object) in &store.objects {
            if wanted(r, n, object) {
                backlog.push(json!({"type": "ADDED", "object": object}));
            }
        }
        if initial_events {
            backlog.push(json!({"type": "BOOKMARK", "object": {
                "kind": kind, "apiVersion": "v1",
                "metadata": {"resourceVersion": store.rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}}}));
        }
    } else if start_rv < store.expired_before {
        backlog.push(expired(start_rv));
        last_rv = u64::MAX;
    } else {
        for change in store.history.iter().filter(|c| c.rv > start_rv) {
            if wanted(&change.resource, &change.namespace, &change.object) {
                backlog.push(json!({"type": change.kind, "object": change.object}));
            }
        }
    }
    drop(store);
    tokio::spawn(async move {
        let send = |event: Value| {
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            Ok(Bytes::from(line))
        };
        for event in backlog {
            if sender.send(send(event)).await.is_err() {
                return;
            }
        }
        if last_rv == u64::MAX {
            return;
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let until_deadline = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(Change { rv, resource, namespace, kind: change_kind, object }) => {
                        last_rv = rv;
                        if wanted(&resource, &namespace, &object)
                            && sender.send(send(json!({"type": change_kind, "object": object}))).await.is_err()
                        {
                            return;
                        }
                    }
                    // Fell behind the broadcast: the watch cannot be trusted any more.
                    Err(_) => {
                        let _ = sender.send(send(expired(last_rv))).await;
                        return;
                    }
                },
                signal = control.recv() => match signal {
                    Ok(Control::Expire) => {
                        let _ = sender.send(send(expired(last_rv))).await;
                        return;
                    }
                    Ok(Control::Drop) | Err(_) => {
                        let _ = sender.send(Err(std::io::Error::other("connection dropped by the double"))).await;
                        return;
                    }
                },
                _ = tick.tick(), if bookmarks => {
                    let bookmark = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": last_rv.to_string()}}});
                    if sender.send(send(bookmark)).await.is_err() {
                        return;
                    }
                }
                _ = until_deadline => return,
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        ))
        .unwrap_or_else(|_| status(500, "InternalError", "cannot build the response"))
}

fn expired(rv: u64) -> Value {
    json!({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {rv}"), "reason": "Expired", "code": 410}})
}

async fn logs(
    Extract(state): Extract<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&state, &headers, "get", "pods/log") {
        return *response;
    }
    let Some(pod) = state.get("pods", &ns, &name) else {
        return status(404, "NotFound", &format!("pods \"{name}\" not found"));
    };
    let names: Vec<String> = ["initContainers", "containers"]
        .iter()
        .flat_map(|key| pod["spec"][key].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    let container = match query.get("container") {
        Some(container) => container.clone(),
        None if pod["spec"]["containers"]
            .as_array()
            .is_some_and(|c| c.len() == 1) =>
        {
            pod["spec"]["containers"][0]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
        None => {
            return status(
                400,
                "BadRequest",
                &format!(
                    "a container name must be specified for pod {name}, choose one of: {names:?}"
                ),
            );
        }
    };
    if !names.contains(&container) {
        return status(
            400,
            "BadRequest",
            &format!("container {container} is not valid for pod {name}"),
        );
    }
    let key = (ns.clone(), name.clone(), container.clone());
    if !lock(&state.logs).contains_key(&key) {
        let reason = if pod["status"]["phase"] == "Pending" {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        return status(
            400,
            "BadRequest",
            &format!("container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"),
        );
    }
    let follow = matches!(query.get("follow").map(String::as_str), Some("true" | "1"));
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let mut control = state.control.subscribe();
    tokio::spawn(async move {
        let mut position = 0;
        loop {
            let notified = state.log_written.notified();
            let (chunk, ended) = match lock(&state.logs).get(&key) {
                Some(log) => (
                    log.bytes[position.min(log.bytes.len())..].to_vec(),
                    log.ended,
                ),
                // The pod was deleted: its logs are gone.
                None => (Vec::new(), true),
            };
            position += chunk.len();
            if !chunk.is_empty() && sender.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            if ended || !follow {
                return;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                signal = control.recv() => {
                    if matches!(signal, Ok(Control::Drop)) {
                        let _ = sender.send(Err(std::io::Error::other("connection dropped by the double"))).await;
                        return;
                    }
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "text/plain")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        ))
        .unwrap_or_else(|_| status(500, "InternalError", "cannot build the response"))
}
