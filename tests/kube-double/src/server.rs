//! The REST and watch protocol.

use std::collections::{BTreeMap, HashSet};
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
            get(get_one).put(update).delete(delete_one),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(logs))
        .with_state(state)
}

/// A `Status` error, as the API server sends it.
pub fn status(code: u16, reason: &str, message: &str) -> Response {
    status_about(code, reason, message, None)
}

/// A `Status` error about one object: `details` names it (`kind` is the resource, as the API
/// server fills it).
fn status_about(code: u16, reason: &str, message: &str, about: Option<(&str, &str)>) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    if let Some((resource, name)) = about {
        body["details"] = json!({"name": name, "kind": resource});
    }
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

fn not_found(resource: &str, name: &str) -> Response {
    status_about(
        404,
        "NotFound",
        &format!("{resource} \"{name}\" not found"),
        Some((resource, name)),
    )
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
    let (kind, mut object) = match object_from_body(&resource, &ns, &body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
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
        return status_about(
            409,
            "AlreadyExists",
            &format!("{resource} \"{name}\" already exists"),
            Some((&resource, &name)),
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

/// The namespace comes from the URL; a body naming another one is refused, not moved.
fn check_namespace(object: &Value, ns: &str) -> Result<(), Box<Response>> {
    match object["metadata"]["namespace"].as_str() {
        Some(named) if !named.is_empty() && named != ns => Err(Box::new(status(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        ))),
        _ => Ok(()),
    }
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
        None => not_found(&resource, &name),
    }
}

/// The object a create or replace sends, with its kind: a 404 for a resource the double does not
/// serve, a 400 for a body that is not JSON, not of that type, or for another namespace.
fn object_from_body(
    resource: &str,
    ns: &str,
    body: &[u8],
) -> Result<(&'static str, Value), Box<Response>> {
    let Some(kind) = kind_of(resource) else {
        return Err(Box::new(status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({resource})"),
        )));
    };
    let object: Value = serde_json::from_slice(body).map_err(|error| {
        Box::new(status(
            400,
            "BadRequest",
            &format!("the body is not JSON: {error}"),
        ))
    })?;
    if let Err(error) = validate(resource, &object) {
        return Err(Box::new(status(
            400,
            "BadRequest",
            &format!("the body is not a valid {kind}: {error}"),
        )));
    }
    check_namespace(&object, ns)?;
    Ok((kind, object))
}

/// A replace (PUT): optimistic concurrency on `metadata.resourceVersion`, server-set metadata
/// kept, a pod's status and spec not the client's to change here.
async fn update(
    Extract(state): Extract<Shared>,
    Path((ns, resource, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = admit(&state, &headers, "update", &resource) {
        return *response;
    }
    let (kind, mut object) = match object_from_body(&resource, &ns, &body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    if object["metadata"]["name"].as_str() != Some(name.as_str()) {
        return status(
            400,
            "BadRequest",
            "the name of the object does not match the name on the URL",
        );
    }
    // Read, compare and write under one lock, so that two replaces from the same version
    // cannot both win.
    let mut store = lock(&state.store);
    let key = (resource.clone(), ns.clone(), name.clone());
    let Some(stored) = store.objects.get(&key).cloned() else {
        drop(store);
        return not_found(&resource, &name);
    };
    let expected = object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    if !expected.is_empty() && stored["metadata"]["resourceVersion"].as_str() != Some(expected) {
        drop(store);
        return status_about(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            Some((&resource, &name)),
        );
    }
    if resource == "pods" {
        use k8s_openapi::api::core::v1::Pod;
        let spec = |pod: &Value| {
            serde_json::from_value::<Pod>(pod.clone())
                .ok()
                .and_then(|p| p.spec)
        };
        if spec(&object) != spec(&stored) {
            drop(store);
            return status(
                422,
                "Invalid",
                &format!(
                    "Pod \"{name}\" is invalid: spec: Forbidden: pod updates may not change the spec (the Kubernetes API double takes none of the few changes a cluster allows)"
                ),
            );
        }
        object["spec"] = stored["spec"].clone();
        object["status"] = stored["status"].clone();
    }
    object["apiVersion"] = json!("v1");
    object["kind"] = json!(kind);
    for field in [
        "uid",
        "creationTimestamp",
        "namespace",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match stored["metadata"].get(field) {
            Some(value) => object["metadata"][field] = value.clone(),
            None => {
                if let Some(meta) = object["metadata"].as_object_mut() {
                    meta.remove(field);
                }
            }
        }
    }
    if resource == "secrets" {
        merge_string_data(&mut object);
    }
    // A replace that changes nothing writes nothing: no new version, no watch event.
    object["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"].clone();
    if object == stored {
        drop(store);
        return axum::Json(stored).into_response();
    }
    let updated = state.put_locked(&mut store, &resource, &ns, &name, object, "MODIFIED");
    drop(store);
    axum::Json(updated).into_response()
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
        return not_found(&resource, &name);
    };
    let grace = grace_period(&query, &body, &object);
    let deleted = delete(&state, &resource, &ns, &name, object, grace);
    if resource == "pods" {
        // A pod goes gracefully: the answer is the pod, marked for deletion.
        return axum::Json(deleted).into_response();
    }
    // Anything else goes at once: the answer is a Status naming what went.
    axum::Json(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "kind": resource, "uid": deleted["metadata"]["uid"]},
    }))
    .into_response()
}

/// The grace period a deletion asked for (query or `DeleteOptions` body), else the pod's own
/// `terminationGracePeriodSeconds`, else Kubernetes' default of 30 seconds.
fn grace_period(query: &BTreeMap<String, String>, body: &[u8], object: &Value) -> u64 {
    query
        .get("gracePeriodSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| {
            serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|options| options["gracePeriodSeconds"].as_u64())
        })
        .or_else(|| object["spec"]["terminationGracePeriodSeconds"].as_u64())
        .unwrap_or(30)
}

/// Deletes an object; a pod's processes are stopped first (in the background, as the kubelet
/// does), and what it owns goes with it. Returns the object as deleted (a pod: as marked).
fn delete(
    state: &Shared,
    resource: &str,
    ns: &str,
    name: &str,
    object: Value,
    grace: u64,
) -> Value {
    if resource != "pods" {
        let deleted = state.put(resource, ns, name, object, "DELETED");
        collect_garbage(state, ns, &deleted["metadata"]["uid"]);
        return deleted;
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

/// The garbage collector, once the object `owner_uid` is gone: a dependent that has another
/// owner still present only loses its reference to the gone one; a dependent with no owner
/// left is deleted, and in turn takes what it owns.
fn collect_garbage(state: &Shared, ns: &str, owner_uid: &Value) {
    let store = lock(&state.store);
    let present: HashSet<String> = store
        .objects
        .iter()
        .filter(|((_, namespace, _), _)| namespace == ns)
        .filter_map(|(_, object)| object["metadata"]["uid"].as_str().map(str::to_owned))
        .collect();
    let dependents: Vec<(String, String)> = store
        .objects
        .iter()
        .filter(|((_, namespace, _), object)| {
            namespace == ns
                && object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|owners| owners.iter().any(|owner| &owner["uid"] == owner_uid))
        })
        .map(|((resource, _, name), _)| (resource.clone(), name.clone()))
        .collect();
    drop(store);
    for (resource, name) in dependents {
        let Some(mut object) = state.get(&resource, ns, &name) else {
            continue;
        };
        let solid: Vec<Value> = object["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|owner| {
                owner["uid"]
                    .as_str()
                    .is_some_and(|uid| present.contains(uid))
            })
            .cloned()
            .collect();
        if solid.is_empty() {
            let grace = grace_period(&BTreeMap::new(), &[], &object);
            delete(state, &resource, ns, &name, object, grace);
        } else {
            object["metadata"]["ownerReferences"] = Value::Array(solid);
            state.put(&resource, ns, &name, object, "MODIFIED");
        }
    }
}

async fn delete_collection(
    Extract(state): Extract<Shared>,
    Path((ns, resource)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
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
        let grace = grace_period(&query, &body, &object);
        items.push(delete(&state, &resource, &ns, &name, object, grace));
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
            backlog.extend(watch_event(change, &wanted));
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
                    Ok(change) => {
                        last_rv = change.rv;
                        if let Some(event) = watch_event(&change, &wanted)
                            && sender.send(send(event)).await.is_err()
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

/// What a watch with this filter sees of `change`, as the API server's watch cache sends it: an
/// object entering the selection is `ADDED`, one leaving it `DELETED` (as it last matched, at
/// the change's version), so that a cache built from the watch holds exactly what a list would.
fn watch_event(change: &Change, wanted: &impl Fn(&str, &str, &Value) -> bool) -> Option<Value> {
    let matches = |object: &Value| wanted(&change.resource, &change.namespace, object);
    let now = change.kind != "DELETED" && matches(&change.object);
    let before = change.previous.as_ref().is_some_and(matches);
    match (before, now) {
        (false, true) => Some(json!({"type": "ADDED", "object": change.object})),
        (true, true) => Some(json!({"type": "MODIFIED", "object": change.object})),
        (true, false) => {
            let mut last = change.previous.clone()?;
            last["metadata"]["resourceVersion"] = json!(change.rv.to_string());
            Some(json!({"type": "DELETED", "object": last}))
        }
        (false, false) => None,
    }
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
        return not_found("pods", &name);
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
    let timestamps = matches!(
        query.get("timestamps").map(String::as_str),
        Some("true" | "1")
    );
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let mut control = state.control.subscribe();
    tokio::spawn(async move {
        let mut position = 0;
        loop {
            let notified = state.log_written.notified();
            let (chunk, ended) = match lock(&state.logs).get(&key) {
                Some(log) => {
                    let chunk = if timestamps {
                        log.stamped(position)
                    } else {
                        log.bytes[position.min(log.bytes.len())..].to_vec()
                    };
                    position = log.bytes.len();
                    (chunk, log.ended)
                }
                // The pod was deleted: its logs are gone.
                None => (Vec::new(), true),
            };
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
