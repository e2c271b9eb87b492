//! The double against kube-rs itself, with no testloop code in between: each test states a piece
//! of API server behaviour that kube-rs (and so the executor) relies on, so that a test of the
//! executor passing against the double means something about a real cluster.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config, ResourceExt};
use serde_json::json;
use testloop_kube_double::KubeDouble;

const NS: &str = "conformance";
/// Upper bound for anything the double does on its own (a container starting, a deletion).
const DEADLINE: Duration = Duration::from_secs(20);

/// A client built the way the executor builds it: from the double's kubeconfig file.
async fn connect(double: &KubeDouble) -> Client {
    Client::try_from(config(double).await).unwrap()
}

async fn config(double: &KubeDouble) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    double.write_kubeconfig(&path, NS).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, NS);
    config
}

fn config_map(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": {"key": name},
    }))
    .unwrap()
}

fn pod(name: &str, script: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "main", "image": "busybox:1.37", "command": ["sh", "-c", script]},
        ]},
    }))
    .unwrap()
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Polls `check` until it yields a value, failing the test at [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The next item of `stream`, failing the test if none comes within [`DEADLINE`].
async fn next<S: futures::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    tokio::time::timeout(DEADLINE, stream.next())
        .await
        .expect("the stream stalled")
}

fn names<K: ResourceExt>(objects: impl IntoIterator<Item = K>) -> BTreeSet<String> {
    objects.into_iter().map(|o| o.name_any()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn rv(version: Option<&String>) -> u64 {
    version
        .expect("a resourceVersion")
        .parse()
        .expect("the double's resourceVersions are numbers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_and_their_errors() {
    let double = KubeDouble::start().await.unwrap();
    let client = connect(&double).await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client);

    let created = config_maps
        .create(&PostParams::default(), &config_map("settings", json!({})))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.namespace.as_deref(), Some(NS));
    assert!(meta.uid.as_deref().is_some_and(|uid| !uid.is_empty()));
    assert!(meta.creation_timestamp.is_some());
    let first_rv = rv(meta.resource_version.as_ref());
    let fetched = config_maps.get("settings").await.unwrap();
    assert_eq!(fetched.metadata.uid, meta.uid);
    assert_eq!(fetched.metadata.resource_version, meta.resource_version);
    assert_eq!(
        fetched.data.unwrap().get("key").map(String::as_str),
        Some("settings")
    );

    let created_pod = pods
        .create(&PostParams::default(), &pod("runner", "true"))
        .await
        .unwrap();
    let pod_meta = &created_pod.metadata;
    assert_eq!(pod_meta.namespace.as_deref(), Some(NS));
    assert!(pod_meta.creation_timestamp.is_some());
    assert_ne!(pod_meta.uid, meta.uid, "every object has its own uid");
    assert!(
        rv(pod_meta.resource_version.as_ref()) > first_rv,
        "resourceVersions grow"
    );
    assert_eq!(
        created_pod.status.and_then(|s| s.phase).as_deref(),
        Some("Pending")
    );
    let fetched = pods.get("runner").await.unwrap();
    assert_eq!(fetched.metadata.uid, pod_meta.uid);

    let conflict = api_error(
        config_maps
            .create(&PostParams::default(), &config_map("settings", json!({})))
            .await,
    );
    assert_eq!(conflict.code, 409);
    assert_eq!(conflict.reason, "AlreadyExists");
    let conflict = api_error(
        pods.create(&PostParams::default(), &pod("runner", "true"))
            .await,
    );
    assert_eq!(conflict.code, 409);
    assert_eq!(conflict.reason, "AlreadyExists");
    assert_eq!(conflict.details.map(|d| d.name).as_deref(), Some("runner"));
    // The object that was there is untouched.
    assert_eq!(pods.get("runner").await.unwrap().metadata.uid, pod_meta.uid);

    let missing = api_error(config_maps.get("absent").await);
    assert_eq!(missing.code, 404);
    assert_eq!(missing.reason, "NotFound");
    assert!(config_maps.get_opt("absent").await.unwrap().is_none());
    assert!(pods.get_opt("absent").await.unwrap().is_none());
    assert!(config_maps.get_opt("settings").await.unwrap().is_some());

    // The API server takes the namespace from the URL and refuses a body naming another one.
    let mut elsewhere = config_map("elsewhere", json!({}));
    elsewhere.metadata.namespace = Some("other".into());
    let refused = api_error(config_maps.create(&PostParams::default(), &elsewhere).await);
    assert_eq!(refused.code, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_is_optimistic() {
    let double = KubeDouble::start().await.unwrap();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(connect(&double).await);
    let post = PostParams::default();
    let original = config_maps
        .create(&post, &config_map("shared", json!({})))
        .await
        .unwrap();
    let mut mine = original.clone();
    mine.data = Some([("key".to_owned(), "mine".to_owned())].into());
    let replaced = config_maps.replace("shared", &post, &mine).await.unwrap();
    assert_eq!(replaced.metadata.uid, original.metadata.uid);
    assert_eq!(
        replaced.metadata.creation_timestamp,
        original.metadata.creation_timestamp
    );
    assert!(
        rv(replaced.metadata.resource_version.as_ref())
            > rv(original.metadata.resource_version.as_ref())
    );
    // A writer still holding the old version loses, and what the first one wrote stays.
    let mut theirs = original.clone();
    theirs.data = Some([("key".to_owned(), "theirs".to_owned())].into());
    let conflict = api_error(config_maps.replace("shared", &post, &theirs).await);
    assert_eq!(conflict.code, 409);
    assert_eq!(conflict.reason, "Conflict");
    let stored = config_maps.get("shared").await.unwrap();
    assert_eq!(
        stored.data.unwrap().get("key").map(String::as_str),
        Some("mine")
    );
    let missing = api_error(
        config_maps
            .replace("absent", &post, &config_map("absent", json!({})))
            .await,
    );
    assert_eq!(missing.code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_selects_by_labels() {
    let double = KubeDouble::start().await.unwrap();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(connect(&double).await);
    for (name, labels) in [
        ("x", json!({"a": "x", "tier": "web"})),
        ("y", json!({"a": "y"})),
        ("z", json!({"a": "z", "tier": "db"})),
        ("bare", json!({})),
    ] {
        config_maps
            .create(&PostParams::default(), &config_map(name, labels))
            .await
            .unwrap();
    }
    // Another namespace's objects are never listed.
    let other: Api<ConfigMap> = Api::namespaced(connect(&double).await, "other");
    other
        .create(&PostParams::default(), &config_map("x", json!({"a": "x"})))
        .await
        .unwrap();

    let cases: &[(&str, &[&str])] = &[
        ("", &["bare", "x", "y", "z"]),
        ("a=x", &["x"]),
        ("a==y", &["y"]),
        ("a!=x", &["bare", "y", "z"]),
        ("a in (x,y)", &["x", "y"]),
        ("a notin (x,y)", &["bare", "z"]),
        ("a", &["x", "y", "z"]),
        ("!a", &["bare"]),
        ("tier", &["x", "z"]),
        ("a,!tier", &["y"]),
        ("a in (x,z),tier!=db", &["x"]),
        ("a=nothing", &[]),
    ];
    for (selector, expected) in cases {
        let list = config_maps
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        assert_eq!(names(list.items), set(expected), "selector {selector:?}");
        assert!(
            list.metadata
                .resource_version
                .is_some_and(|rv| !rv.is_empty()),
            "a list carries the resourceVersion it was read at"
        );
    }

    // A selector the API server cannot parse is a 400, not an empty list.
    for malformed in ["a in x", "a b", "=x", "a=b=c"] {
        let error = api_error(
            config_maps
                .list(&ListParams::default().labels(malformed))
                .await,
        );
        assert_eq!(error.code, 400, "selector {malformed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_list_sees_later_changes_in_order() {
    let double = KubeDouble::start().await.unwrap();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(connect(&double).await);
    let post = PostParams::default();
    config_maps
        .create(&post, &config_map("before", json!({"app": "w"})))
        .await
        .unwrap();
    let list = config_maps
        .list(&ListParams::default().labels("app=w"))
        .await
        .unwrap();
    assert_eq!(names(list.items), set(&["before"]));
    let from = list.metadata.resource_version.unwrap();

    // Changes after the list; a change to an object outside the selector is not sent.
    config_maps
        .create(&post, &config_map("unrelated", json!({"app": "other"})))
        .await
        .unwrap();
    config_maps
        .create(&post, &config_map("later", json!({"app": "w"})))
        .await
        .unwrap();
    let mut changed = config_maps.get("later").await.unwrap();
    changed.data = Some([("key".to_owned(), "changed".to_owned())].into());
    config_maps.replace("later", &post, &changed).await.unwrap();
    config_maps
        .delete("later", &DeleteParams::default())
        .await
        .unwrap();

    let params = WatchParams::default()
        .labels("app=w")
        .disable_bookmarks()
        .timeout(2);
    let mut events = config_maps.watch(&params, &from).await.unwrap().boxed();
    let mut seen = Vec::new();
    // The server ends the watch at its timeout, which bounds this loop.
    while let Some(event) = next(&mut events).await {
        seen.push(match event.unwrap() {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            WatchEvent::Bookmark(_) => panic!("a bookmark the watch did not ask for"),
            WatchEvent::Error(status) => panic!("watch error {status:?}"),
        });
    }
    let kinds: Vec<(&str, String)> = seen.iter().map(|(k, o)| (*k, o.name_any())).collect();
    assert_eq!(
        kinds,
        [
            ("ADDED", "later".to_owned()),
            ("MODIFIED", "later".to_owned()),
            ("DELETED", "later".to_owned()),
        ]
    );
    assert_eq!(
        seen[1]
            .1
            .data
            .as_ref()
            .and_then(|d| d.get("key"))
            .map(String::as_str),
        Some("changed")
    );
    let versions: Vec<u64> = seen
        .iter()
        .map(|(_, o)| rv(o.metadata.resource_version.as_ref()))
        .collect();
    assert!(versions.is_sorted() && versions[0] > rv(Some(&from)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_objects_into_and_out_of_its_selector() {
    let double = KubeDouble::start().await.unwrap();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(connect(&double).await);
    let post = PostParams::default();
    config_maps
        .create(&post, &config_map("mover", json!({"app": "other"})))
        .await
        .unwrap();
    let from = config_maps
        .list(&ListParams::default().labels("app=w"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut mover = config_maps.get("mover").await.unwrap();
    mover.labels_mut().insert("app".into(), "w".into());
    let mover = config_maps.replace("mover", &post, &mover).await.unwrap();
    let mut away = mover.clone();
    away.labels_mut().insert("app".into(), "gone".into());
    config_maps.replace("mover", &post, &away).await.unwrap();

    let params = WatchParams::default()
        .labels("app=w")
        .disable_bookmarks()
        .timeout(2);
    let mut events = config_maps.watch(&params, &from).await.unwrap().boxed();
    let mut seen = Vec::new();
    while let Some(event) = next(&mut events).await {
        seen.push(event.unwrap());
    }
    // As the API server's watch cache does: entering the selector is an ADDED, leaving it a
    // DELETED carrying the object as it last matched, so a cache built from the watch stays
    // exact.
    match seen.as_slice() {
        [WatchEvent::Added(added), WatchEvent::Deleted(deleted)] => {
            assert_eq!(added.labels().get("app").map(String::as_str), Some("w"));
            assert_eq!(deleted.labels().get("app").map(String::as_str), Some("w"));
            assert!(
                rv(deleted.metadata.resource_version.as_ref())
                    > rv(added.metadata.resource_version.as_ref())
            );
        }
        other => panic!("expected ADDED then DELETED, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_with_bookmarks_gets_bookmarks() {
    let double = KubeDouble::start().await.unwrap();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(connect(&double).await);
    let from = config_maps
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let params = WatchParams::default().labels("app=w").timeout(30);
    let mut events = config_maps.watch(&params, &from).await.unwrap().boxed();
    config_maps
        .create(
            &PostParams::default(),
            &config_map("seen", json!({"app": "w"})),
        )
        .await
        .unwrap();
    let mut added_rv = None;
    loop {
        match next(&mut events).await.expect("the watch ended").unwrap() {
            WatchEvent::Added(object) => {
                added_rv = Some(rv(object.metadata.resource_version.as_ref()))
            }
            WatchEvent::Bookmark(bookmark) => {
                let at = rv(Some(&bookmark.metadata.resource_version));
                assert!(at >= rv(Some(&from)));
                assert_eq!(bookmark.types.kind, "ConfigMap");
                // A bookmark after an event is at or past it: resuming there loses nothing.
                if let Some(added) = added_rv {
                    assert!(at >= added);
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_relists_after_410_and_loses_nothing() {
    let double = KubeDouble::start().await.unwrap();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(connect(&double).await);
    let post = PostParams::default();
    config_maps
        .create(&post, &config_map("first", json!({"app": "w"})))
        .await
        .unwrap();

    // Polled only by this task, so the watcher acts only when the test reads from it: what
    // happens between two reads happens while it waits.
    let mut stream = watcher(
        config_maps.clone(),
        watcher::Config::default().labels("app=w"),
    )
    .boxed();
    let mut known = BTreeSet::new();
    let mut relisting = BTreeSet::new();
    let mut expired = 0;
    let mut apply = |event: watcher::Result<watcher::Event<ConfigMap>>,
                     known: &mut BTreeSet<String>,
                     expired: &mut u32| match event {
        Ok(watcher::Event::Init) => relisting.clear(),
        Ok(watcher::Event::InitApply(o)) => {
            relisting.insert(o.name_any());
        }
        Ok(watcher::Event::InitDone) => *known = std::mem::take(&mut relisting),
        Ok(watcher::Event::Apply(o)) => {
            known.insert(o.name_any());
        }
        Ok(watcher::Event::Delete(o)) => {
            known.remove(&o.name_any());
        }
        Err(watcher::Error::WatchError(status)) if status.code == 410 => *expired += 1,
        Err(error) => panic!("watcher error {error:?}"),
    };
    while known != set(&["first"]) {
        apply(next(&mut stream).await.unwrap(), &mut known, &mut expired);
    }
    config_maps
        .create(&post, &config_map("second", json!({"app": "w"})))
        .await
        .unwrap();
    while known != set(&["first", "second"]) {
        apply(next(&mut stream).await.unwrap(), &mut known, &mut expired);
    }
    assert_eq!(double.requests().get("list", "configmaps"), 1);

    double.faults().expire_watches();
    // Changes while the watch is expired: the relist must bring them all.
    config_maps
        .create(&post, &config_map("during", json!({"app": "w"})))
        .await
        .unwrap();
    config_maps
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    while known != set(&["second", "during"]) {
        apply(next(&mut stream).await.unwrap(), &mut known, &mut expired);
    }
    assert_eq!(expired, 1, "the watcher saw the 410");
    assert_eq!(
        double.requests().get("list", "configmaps"),
        2,
        "a 410 makes the watcher list again"
    );

    // And it watches again from the new list.
    config_maps
        .create(&post, &config_map("after", json!({"app": "w"})))
        .await
        .unwrap();
    while known != set(&["second", "during", "after"]) {
        apply(next(&mut stream).await.unwrap(), &mut known, &mut expired);
    }
    assert_eq!(double.requests().get("list", "configmaps"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_logs_follow_select_and_read_whole() {
    let double = KubeDouble::start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(connect(&double).await);
    let gate = tempfile::tempdir().unwrap();
    let go = gate.path().join("go");
    let script = format!(
        "echo first; while [ ! -e {go} ]; do sleep 0.02; done; echo second; echo to-stderr >&2",
        go = go.display()
    );
    let spec: Pod = serde_json::from_value(json!({
        "metadata": {"name": "talker"},
        "spec": {"restartPolicy": "Never",
            "initContainers": [{"name": "setup", "image": "busybox:1.37",
                "command": ["sh", "-c", "echo from-init"]}],
            "containers": [{"name": "main", "image": "busybox:1.37",
                "command": ["sh", "-c", script]}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &spec).await.unwrap();

    let running = |pod: &Pod| {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|s| s.first())
            .and_then(|s| s.state.as_ref())
            .is_some_and(|s| s.running.is_some())
    };
    eventually("the main container to run", || async {
        pods.get("talker").await.ok().filter(running)
    })
    .await;

    let follow = LogParams {
        container: Some("main".into()),
        follow: true,
        ..LogParams::default()
    };
    let mut lines = pods.log_stream("talker", &follow).await.unwrap().lines();
    assert_eq!(next(&mut lines).await.unwrap().unwrap(), "first");
    // The container is still waiting for the gate: the line came as it was printed, not at
    // the end.
    assert!(running(&pods.get("talker").await.unwrap()));
    std::fs::write(&go, "").unwrap();
    assert_eq!(next(&mut lines).await.unwrap().unwrap(), "second");
    assert_eq!(next(&mut lines).await.unwrap().unwrap(), "to-stderr");
    assert!(
        next(&mut lines).await.is_none(),
        "a followed log ends when its container ends"
    );

    let init = LogParams {
        container: Some("setup".into()),
        ..LogParams::default()
    };
    assert_eq!(pods.logs("talker", &init).await.unwrap(), "from-init\n");
    let whole = "first\nsecond\nto-stderr\n";
    let main = LogParams {
        container: Some("main".into()),
        ..LogParams::default()
    };
    assert_eq!(pods.logs("talker", &main).await.unwrap(), whole);
    // With one container (init containers aside), the API server picks it.
    assert_eq!(
        pods.logs("talker", &LogParams::default()).await.unwrap(),
        whole
    );
    // `timestamps`: each line led by when it was printed (RFC 3339) and a space, in order.
    let stamped = LogParams {
        container: Some("main".into()),
        timestamps: true,
        ..LogParams::default()
    };
    let stamped = pods.logs("talker", &stamped).await.unwrap();
    let mut previous = jiff::Timestamp::MIN;
    let mut texts = Vec::new();
    for line in stamped.lines() {
        let (stamp, text) = line.split_once(' ').unwrap();
        let stamp: jiff::Timestamp = stamp.parse().unwrap();
        assert!(previous <= stamp, "{stamped}");
        previous = stamp;
        texts.push(text);
    }
    assert_eq!(texts, ["first", "second", "to-stderr"]);
    let wrong = LogParams {
        container: Some("nope".into()),
        ..LogParams::default()
    };
    assert_eq!(api_error(pods.logs("talker", &wrong).await).code, 400);
    assert_eq!(
        api_error(pods.logs("absent", &LogParams::default()).await).code,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pod_collects_what_it_owns() {
    let double = KubeDouble::start().await.unwrap();
    let client = connect(&double).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client);
    let post = PostParams::default();
    let owner = pods
        .create(&post, &pod("owner", "sleep 300"))
        .await
        .unwrap();
    let keeper = config_maps
        .create(&post, &config_map("keeper", json!({})))
        .await
        .unwrap();
    let reference = |kind: &str, meta: &ObjectMeta| json!({"apiVersion": "v1", "kind": kind, "name": meta.name, "uid": meta.uid});
    let owned = |name: &str, owners: Vec<serde_json::Value>| -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": {"name": name, "ownerReferences": owners},
            "data": {},
        }))
        .unwrap()
    };
    config_maps
        .create(
            &post,
            &owned("owned", vec![reference("Pod", &owner.metadata)]),
        )
        .await
        .unwrap();
    config_maps
        .create(
            &post,
            &owned(
                "shared",
                vec![
                    reference("Pod", &owner.metadata),
                    reference("ConfigMap", &keeper.metadata),
                ],
            ),
        )
        .await
        .unwrap();
    config_maps
        .create(&post, &config_map("free", json!({})))
        .await
        .unwrap();

    let deleting = pods
        .delete("owner", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    // A pod is deleted gracefully: the API server answers with the pod, marked.
    let marked = deleting.left().expect("the pod being deleted");
    assert!(marked.metadata.deletion_timestamp.is_some());
    eventually("the pod to go", || async {
        pods.get_opt("owner").await.unwrap().is_none().then_some(())
    })
    .await;
    eventually("its ConfigMap to be collected", || async {
        config_maps
            .get_opt("owned")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(config_maps.get_opt("free").await.unwrap().is_some());
    // An object with another owner still there stays, without the reference to the gone one.
    let shared = eventually(
        "the shared ConfigMap to lose its dangling owner",
        || async {
            config_maps
                .get_opt("shared")
                .await
                .unwrap()
                .filter(|cm| cm.owner_references().len() == 1)
        },
    )
    .await;
    assert_eq!(shared.owner_references()[0].uid, keeper.uid().unwrap());

    // A ConfigMap is deleted at once: the answer is a Status naming it.
    let gone = config_maps
        .delete("free", &DeleteParams::default())
        .await
        .unwrap();
    let status = gone.right().expect("a Status for an immediate deletion");
    assert_eq!(status.details.map(|d| d.name).as_deref(), Some("free"));
    assert!(config_maps.get_opt("free").await.unwrap().is_none());
    assert_eq!(
        api_error(config_maps.delete("free", &DeleteParams::default()).await).code,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_collection_takes_exactly_the_selected() {
    let double = KubeDouble::start().await.unwrap();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(connect(&double).await);
    for (name, labels) in [
        ("a1", json!({"group": "a"})),
        ("a2", json!({"group": "a", "extra": "1"})),
        ("b1", json!({"group": "b"})),
        ("none", json!({})),
    ] {
        config_maps
            .create(&PostParams::default(), &config_map(name, labels))
            .await
            .unwrap();
    }
    let deleted = config_maps
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("group=a"),
        )
        .await
        .unwrap();
    let list = deleted.left().expect("the list of what was deleted");
    assert_eq!(names(list.items), set(&["a1", "a2"]));
    let left = config_maps.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(left.items), set(&["b1", "none"]));

    let deleted = config_maps
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("!group"),
        )
        .await
        .unwrap();
    assert_eq!(names(deleted.left().unwrap().items), set(&["none"]));
    let left = config_maps.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(left.items), set(&["b1"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_api_errors_reach_kube_as_api_errors() {
    let double = KubeDouble::start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(connect(&double).await);
    let post = PostParams::default();

    double.faults().fail_requests("create", "pods", 500, 2);
    for _ in 0..2 {
        let error = api_error(pods.create(&post, &pod("p500", "true")).await);
        assert_eq!(error.code, 500);
        assert_eq!(error.reason, "InternalError");
    }
    pods.create(&post, &pod("p500", "true")).await.unwrap();
    assert_eq!(double.requests().get("create", "pods"), 3);

    // kube's default client retries 429 itself, honouring Retry-After: without that layer the
    // errors show; with it, the create succeeds after as many tries as the double refused.
    let mut no_retry = config(&double).await;
    no_retry.default_retry = false;
    let bare: Api<Pod> = Api::default_namespaced(Client::try_from(no_retry).unwrap());
    double.faults().fail_requests("create", "pods", 429, 2);
    for _ in 0..2 {
        let error = api_error(bare.create(&post, &pod("p429", "true")).await);
        assert_eq!(error.code, 429);
        assert_eq!(error.reason, "TooManyRequests");
    }
    bare.create(&post, &pod("p429", "true")).await.unwrap();
    assert_eq!(double.requests().get("create", "pods"), 6);

    double.faults().fail_requests("create", "pods", 429, 2);
    pods.create(&post, &pod("retried", "true")).await.unwrap();
    assert_eq!(double.requests().get("create", "pods"), 9);

    // Faults are per verb and resource: other requests are untouched.
    double
        .faults()
        .fail_requests("create", "configmaps", 500, 1);
    pods.get("p500").await.unwrap();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(connect(&double).await);
    assert_eq!(
        api_error(config_maps.create(&post, &config_map("c", json!({}))).await).code,
        500
    );
    config_maps
        .create(&post, &config_map("c", json!({})))
        .await
        .unwrap();
}
