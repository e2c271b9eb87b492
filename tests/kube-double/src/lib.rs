//! A test double of the Kubernetes API server, playing the kubelet with local processes.
//!
//! It speaks the real REST and watch protocol (JSON) for what testloop's Kubernetes executor
//! uses, so that kube-rs talks to it through a generated kubeconfig exactly as to a cluster:
//!
//! - core/v1 `pods`, `configmaps`, `secrets`, `services`, `events`, namespaced: create (objects are
//!   parsed into their k8s-openapi types: a body that does not fit is a 400; the namespace comes
//!   from the URL), get, replace (`PUT`, refused with 409 `Conflict` when the body's
//!   resourceVersion is not the stored one; a pod's spec and status are not the client's to
//!   change), list with `labelSelector` (`a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
//!   `a notin (x)`, comma = and; a malformed one is a 400), delete (a pod gracefully, answered
//!   with the marked pod; anything else at once, answered with a `Status`), delete-collection by
//!   label; watch with `resourceVersion` (replayed from a bounded history; older ones get an
//!   `ERROR` event with a `410 Expired` Status), `timeoutSeconds`, and `BOOKMARK`s every second
//!   when `allowWatchBookmarks` is set. A watch with a selector sees an object entering it as
//!   `ADDED` and leaving it as `DELETED`, as the API server's watch cache sends them. List
//!   pagination (`limit`) is not applied: every list is one page, which the API allows.
//! - `pods/log` with `container`, `follow` and `timestamps` (stdout and stderr of the container
//!   together); a container that has not started yet gets the real 400 ("is waiting to start").
//! - One global, strictly increasing resourceVersion. Errors are `Status` objects.
//! - Garbage collection: deleting an object deletes what it owns (`ownerReferences` by uid),
//!   except that a dependent with another owner still present only loses the reference.
//!
//! The kubelet it plays runs each container's `command` + `args` (the image is ignored) as a
//! local process inside a bubblewrap view of this machine where the pod's volumes (`emptyDir`,
//! `configMap`) appear at their mount paths, init containers one after another, then the
//! containers; it writes real statuses (phases, conditions, waiting/running/terminated states
//! with exit codes and reasons) and honours `activeDeadlineSeconds`. `env` (`value`,
//! `valueFrom.secretKeyRef`, `configMapKeyRef`, `fieldRef` for the pod's name and namespace) and
//! `workingDir` are applied; security contexts, resources and scheduling fields are stored but
//! not enforced (processes run as the test's user).
//!
//! Faults on demand ([`Faults`]): image pull failures, OOM kills, eviction, unschedulable pods,
//! API errors (500, 429), watch expiry (410) and dropped connections. Every request is counted
//! ([`KubeDouble::requests`]), so the executor's API cost is measurable.

mod kubelet;
mod selector;
mod server;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{Notify, broadcast};

pub use server::RequestCounts;

/// The bearer token the generated kubeconfig carries; any other is refused.
pub const TOKEN: &str = "double-token";
/// Watch events kept for watches that resume from a resourceVersion.
const HISTORY: usize = 10_000;

/// A running double. Dropping it stops its server and kills every process it started.
pub struct KubeDouble {
    state: Arc<State>,
    address: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for KubeDouble {
    fn drop(&mut self) {
        self.server.abort();
        self.state.kill_everything();
    }
}

impl KubeDouble {
    /// Starts a double on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(State::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let router = server::router(Arc::clone(&state));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            state,
            address,
            server,
        })
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kubeconfig whose current context points at this double, in `namespace`.
    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {url}\n\
contexts:\n- name: double\n  context:\n    cluster: double\n    user: double\n    namespace: {namespace}\n\
current-context: double\nusers:\n- name: double\n  user:\n    token: {TOKEN}\n",
            url = self.url()
        )
    }

    /// Writes [`KubeDouble::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml(namespace))
    }

    /// What has been asked of the double so far.
    pub fn requests(&self) -> RequestCounts {
        server::lock(&self.state.requests).clone()
    }

    /// Forgets the requests counted so far.
    pub fn reset_requests(&self) {
        *server::lock(&self.state.requests) = RequestCounts::default();
    }

    /// The faults to inject.
    pub fn faults(&self) -> Faults<'_> {
        Faults { state: &self.state }
    }

    /// The stored objects of a kind (`pods`, `configmaps`, …) in `namespace`, as JSON.
    pub fn objects(&self, resource: &str, namespace: &str) -> Vec<Value> {
        server::lock(&self.state.store)
            .objects
            .iter()
            .filter(|((kind, ns, _), _)| kind == resource && ns == namespace)
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Processes the double's kubelet is running now.
    pub fn running_processes(&self) -> usize {
        server::lock(&self.state.processes)
            .values()
            .map(Vec::len)
            .sum()
    }
}

/// Fault injection.
pub struct Faults<'a> {
    state: &'a State,
}

impl Faults<'_> {
    /// Containers with this image never start: `ErrImagePull`, then `ImagePullBackOff`.
    pub fn fail_image_pull(&self, image: &str) {
        server::lock(&self.state.faults)
            .bad_images
            .insert(image.to_owned());
    }

    /// New pods stay `Pending`, `PodScheduled=False` with this message, until cleared.
    pub fn unschedulable(&self, message: Option<&str>) {
        server::lock(&self.state.faults).unschedulable = message.map(str::to_owned);
        self.state.scheduling.notify_waiters();
    }

    /// A container whose output contains `text` is killed and reported `OOMKilled` (137).
    pub fn oom_kill_on_output(&self, text: &str) {
        server::lock(&self.state.faults).oom_text = Some(text.to_owned());
    }

    /// Evicts a running pod now: its processes are killed, it is `Failed` with reason `Evicted`.
    pub fn evict(&self, namespace: &str, pod: &str) {
        kubelet::evict(self.state, namespace, pod);
    }

    /// The next `count` requests with this verb (`create`, `get`, `update`, `list`, `watch`,
    /// `delete`, `deletecollection`) on this resource (`pods`, `pods/log`, `configmaps`…) get `code`
    /// (500 `InternalError`, or 429 `TooManyRequests` with `Retry-After: 1`).
    pub fn fail_requests(&self, verb: &str, resource: &str, code: u16, count: u32) {
        server::lock(&self.state.faults).failing.push((
            verb.to_owned(),
            resource.to_owned(),
            code,
            count,
        ));
    }

    /// Every open watch gets a `410 Expired` error and ends; resuming from a resourceVersion
    /// before now gets 410 too.
    pub fn expire_watches(&self) {
        let mut store = server::lock(&self.state.store);
        store.history.clear();
        store.expired_before = store.rv;
        drop(store);
        let _ = self.state.control.send(Control::Expire);
    }

    /// Cuts every open watch and log stream without ending it properly.
    pub fn drop_connections(&self) {
        let _ = self.state.control.send(Control::Drop);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Expire,
    Drop,
}

/// A change, as a watch sends it.
#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    resource: String,
    namespace: String,
    kind: &'static str,
    object: Value,
    /// The object as it was before, for watches with a selector it entered or left.
    previous: Option<Value>,
}

#[derive(Default)]
struct Store {
    rv: u64,
    /// (resource, namespace, name) → object.
    objects: BTreeMap<(String, String, String), Value>,
    history: VecDeque<Change>,
    /// Watches from a resourceVersion at or below this get 410.
    expired_before: u64,
}

#[derive(Default)]
struct FaultState {
    bad_images: HashSet<String>,
    unschedulable: Option<String>,
    oom_text: Option<String>,
    failing: Vec<(String, String, u16, u32)>,
}

/// One container's output, as the kubelet keeps it.
#[derive(Default)]
struct ContainerLog {
    bytes: Vec<u8>,
    ended: bool,
    /// Where each line starts in `bytes`, and when its first byte came (RFC 3339 with
    /// nanoseconds, as the kubelet writes them), for `timestamps=true`.
    line_starts: Vec<(usize, String)>,
}

impl ContainerLog {
    fn append(&mut self, chunk: &[u8]) {
        let stamp = jiff::Timestamp::now().to_string();
        let mut at_line_start = self.bytes.last().is_none_or(|byte| *byte == b'\n');
        for (index, byte) in chunk.iter().enumerate() {
            if at_line_start {
                self.line_starts
                    .push((self.bytes.len() + index, stamp.clone()));
            }
            at_line_start = *byte == b'\n';
        }
        self.bytes.extend_from_slice(chunk);
    }

    /// The output from byte `from` on, each line that starts there after led by its timestamp
    /// and a space, as `pods/log?timestamps=true` gives it.
    fn stamped(&self, from: usize) -> Vec<u8> {
        let from = from.min(self.bytes.len());
        let mut out = Vec::with_capacity(self.bytes.len() - from);
        let mut position = from;
        let first = self.line_starts.partition_point(|(start, _)| *start < from);
        for (start, stamp) in &self.line_starts[first..] {
            out.extend_from_slice(&self.bytes[position..*start]);
            out.extend_from_slice(stamp.as_bytes());
            out.push(b' ');
            position = *start;
        }
        out.extend_from_slice(&self.bytes[position..]);
        out
    }
}

struct State {
    store: Mutex<Store>,
    changes: broadcast::Sender<Change>,
    control: broadcast::Sender<Control>,
    faults: Mutex<FaultState>,
    requests: Mutex<RequestCounts>,
    /// (namespace, pod, container) → output.
    logs: Mutex<HashMap<(String, String, String), ContainerLog>>,
    log_written: Notify,
    /// (namespace, pod) → process group ids of its running containers.
    processes: Mutex<HashMap<(String, String), Vec<i32>>>,
    /// Pods being deleted, deleted or evicted: their kubelet starts nothing more.
    stopping: Mutex<HashSet<(String, String)>>,
    scheduling: Notify,
    /// Per-pod host directories, removed with the pod.
    pod_dirs: Mutex<HashMap<(String, String), tempfile::TempDir>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            store: Mutex::default(),
            changes: broadcast::channel(4096).0,
            control: broadcast::channel(16).0,
            faults: Mutex::default(),
            requests: Mutex::default(),
            logs: Mutex::default(),
            log_written: Notify::new(),
            processes: Mutex::default(),
            stopping: Mutex::default(),
            scheduling: Notify::new(),
            pod_dirs: Mutex::default(),
        }
    }
}

impl State {
    fn kill_everything(&self) {
        for groups in server::lock(&self.processes).values() {
            for group in groups {
                // SAFETY: killpg takes plain integers.
                unsafe { libc::killpg(*group, libc::SIGKILL) };
            }
        }
        server::lock(&self.pod_dirs).clear();
    }

    /// Stores `object` (a new resourceVersion) and tells the watches.
    fn put(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        object: Value,
        kind: &'static str,
    ) -> Value {
        let mut store = server::lock(&self.store);
        self.put_locked(&mut store, resource, namespace, name, object, kind)
    }

    /// [`State::put`] for a caller that read what it writes from under the same lock.
    fn put_locked(
        &self,
        store: &mut Store,
        resource: &str,
        namespace: &str,
        name: &str,
        mut object: Value,
        kind: &'static str,
    ) -> Value {
        store.rv += 1;
        let rv = store.rv;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let key = (resource.to_owned(), namespace.to_owned(), name.to_owned());
        let previous = if kind == "DELETED" {
            store.objects.remove(&key)
        } else {
            store.objects.insert(key, object.clone())
        };
        let change = Change {
            rv,
            resource: resource.to_owned(),
            namespace: namespace.to_owned(),
            kind,
            object: object.clone(),
            previous,
        };
        store.history.push_back(change.clone());
        if store.history.len() > HISTORY
            && let Some(old) = store.history.pop_front()
        {
            store.expired_before = old.rv;
        }
        let _ = self.changes.send(change);
        object
    }

    fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        server::lock(&self.store)
            .objects
            .get(&(resource.to_owned(), namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Changes a stored pod's status with `change`, if the pod is still there.
    fn update_pod(&self, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let Some(mut pod) = self.get("pods", namespace, name) else {
            return;
        };
        change(&mut pod);
        self.put("pods", namespace, name, pod, "MODIFIED");
    }
}
