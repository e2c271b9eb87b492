//! The kubelet the double plays: runs a pod's containers as local processes in bubblewrap views
//! where its volumes appear at their mount paths, and writes real statuses.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::server::{lock, now};
use crate::{ContainerLog, State};

type Key = (String, String);

pub fn start(state: Arc<State>, namespace: String, name: String) {
    tokio::spawn(async move { run_pod(state, namespace, name).await });
}

fn stopping(state: &State, key: &Key) -> bool {
    lock(&state.stopping).contains(key)
}

async fn run_pod(state: Arc<State>, ns: String, name: String) {
    let key = (ns.clone(), name.clone());
    // The scheduler.
    let mut said_unschedulable = false;
    loop {
        if stopping(&state, &key) || state.get("pods", &ns, &name).is_none() {
            return;
        }
        let message = lock(&state.faults).unschedulable.clone();
        let Some(message) = message else { break };
        if !said_unschedulable {
            said_unschedulable = true;
            state.update_pod(&ns, &name, |pod| {
                pod["status"]["conditions"] = json!([{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": message, "lastTransitionTime": now(),
                }]);
            });
        }
        let notified = state.scheduling.notified();
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    let Some(pod) = state.get("pods", &ns, &name) else {
        return;
    };
    let spec = pod["spec"].clone();
    let init: Vec<Value> = spec["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let main: Vec<Value> = spec["containers"].as_array().cloned().unwrap_or_default();
    let waiting = |containers: &[Value], reason: &str| -> Value {
        Value::Array(
            containers
                .iter()
                .map(|c| {
                    json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false,
                    "restartCount": 0, "started": false, "state": {"waiting": {"reason": reason}}})
                })
                .collect(),
        )
    };
    let init_statuses = waiting(&init, "PodInitializing");
    let main_statuses = waiting(
        &main,
        if init.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        },
    );
    state.update_pod(&ns, &name, |pod| {
        pod["spec"]["nodeName"] = json!("double-node");
        pod["status"] = json!({
            "phase": "Pending", "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": now(),
            "qosClass": "BestEffort",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
                {"type": "Initialized", "status": if init.is_empty() { "True" } else { "False" }, "lastTransitionTime": now()},
            ],
            "initContainerStatuses": init_statuses,
            "containerStatuses": main_statuses,
        });
    });
    if let Some(seconds) = spec["activeDeadlineSeconds"].as_u64() {
        let state = Arc::clone(&state);
        let (ns, name) = (ns.clone(), name.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            let running = state.get("pods", &ns, &name).is_some_and(|pod| {
                matches!(pod["status"]["phase"].as_str(), Some("Pending" | "Running"))
            });
            if running {
                fail_pod(
                    &state,
                    &ns,
                    &name,
                    "DeadlineExceeded",
                    "Pod was active on the node longer than the specified deadline",
                );
            }
        });
    }

    // Volumes: a host directory each, kept until the pod is deleted.
    let Ok(root) = tempfile::Builder::new()
        .prefix("kube-double-pod-")
        .tempdir()
    else {
        return;
    };
    let mut volumes: HashMap<String, PathBuf> = HashMap::new();
    for volume in spec["volumes"].as_array().cloned().unwrap_or_default() {
        let Some(volume_name) = volume["name"].as_str() else {
            continue;
        };
        let dir = root.path().join(volume_name);
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        let source = if volume["configMap"].is_object() {
            Some(("configmaps", &volume["configMap"]))
        } else if volume["secret"].is_object() {
            Some(("secrets", &volume["secret"]))
        } else {
            None
        };
        if let Some((resource, source)) = source {
            let object_name = source["name"]
                .as_str()
                .or_else(|| source["secretName"].as_str())
                .unwrap_or_default();
            // The kubelet retries until the object exists (it may be created after the pod).
            let object = loop {
                if stopping(&state, &key) || state.get("pods", &ns, &name).is_none() {
                    return;
                }
                if let Some(object) = state.get(resource, &ns, object_name) {
                    break Some(object);
                }
                if source["optional"].as_bool() == Some(true) {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            if let Some(object) = object {
                for (file, bytes) in volume_files(resource, &object) {
                    let _ = std::fs::write(dir.join(file), bytes);
                }
            }
        }
        volumes.insert(volume_name.to_owned(), dir);
    }
    lock(&state.pod_dirs).insert(key.clone(), root);

    for (index, container) in init.iter().enumerate() {
        match run_container(
            &state,
            &ns,
            &name,
            container,
            "initContainerStatuses",
            index,
            &volumes,
        )
        .await
        {
            Ran::Exited(0) => {}
            Ran::Exited(_) => {
                if !stopping(&state, &key) {
                    state.update_pod(&ns, &name, |pod| pod["status"]["phase"] = json!("Failed"));
                }
                return;
            }
            Ran::Stuck | Ran::Stopped => return,
        }
    }
    state.update_pod(&ns, &name, |pod| {
        set_condition(pod, "Initialized", "True");
        pod["status"]["phase"] = json!("Running");
    });
    let runs = main.iter().enumerate().map(|(index, container)| {
        let state = &state;
        let volumes = &volumes;
        let (ns, name) = (&ns, &name);
        async move {
            run_container(
                state,
                ns,
                name,
                container,
                "containerStatuses",
                index,
                volumes,
            )
            .await
        }
    });
    let results = futures::future::join_all(runs).await;
    if stopping(&state, &key)
        || results
            .iter()
            .any(|r| matches!(r, Ran::Stuck | Ran::Stopped))
    {
        return;
    }
    let phase = if results.iter().all(|r| matches!(r, Ran::Exited(0))) {
        "Succeeded"
    } else {
        "Failed"
    };
    state.update_pod(&ns, &name, |pod| {
        pod["status"]["phase"] = json!(phase);
        set_condition(pod, "Ready", "False");
        set_condition(pod, "ContainersReady", "False");
    });
}

fn volume_files(resource: &str, object: &Value) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for (key, value) in object["data"].as_object().into_iter().flatten() {
        let text = value.as_str().unwrap_or_default();
        let bytes = if resource == "secrets" {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_default()
        } else {
            text.as_bytes().to_vec()
        };
        files.push((key.clone(), bytes));
    }
    files
}

fn set_condition(pod: &mut Value, kind: &str, status: &str) {
    let conditions = &mut pod["status"]["conditions"];
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    if let Some(list) = conditions.as_array_mut() {
        list.retain(|c| c["type"] != kind);
        list.push(json!({"type": kind, "status": status, "lastTransitionTime": now()}));
    }
}

fn set_state(
    state: &State,
    ns: &str,
    name: &str,
    field: &str,
    index: usize,
    container_state: Value,
    extra: impl FnOnce(&mut Value),
) {
    state.update_pod(ns, name, |pod| {
        let status = &mut pod["status"][field][index];
        status["state"] = container_state;
        extra(status);
    });
}

enum Ran {
    Exited(i32),
    /// Never started (image pull, configuration): the pod stays pending.
    Stuck,
    /// Stopped by a deletion, eviction or the deadline.
    Stopped,
}

fn stuck(
    state: &State,
    ns: &str,
    name: &str,
    field: &str,
    index: usize,
    reason: &str,
    message: &str,
) -> Ran {
    set_state(
        state,
        ns,
        name,
        field,
        index,
        json!({"waiting": {"reason": reason, "message": message}}),
        |_| {},
    );
    Ran::Stuck
}

async fn run_container(
    state: &Arc<State>,
    ns: &str,
    name: &str,
    container: &Value,
    field: &str,
    index: usize,
    volumes: &HashMap<String, PathBuf>,
) -> Ran {
    let key = (ns.to_owned(), name.to_owned());
    let container_name = container["name"].as_str().unwrap_or_default().to_owned();
    let image = container["image"].as_str().unwrap_or_default().to_owned();
    if lock(&state.faults).bad_images.contains(&image) {
        stuck(
            state,
            ns,
            name,
            field,
            index,
            "ErrImagePull",
            &format!(
                "failed to pull and unpack image \"docker.io/library/{image}\": failed to resolve reference \"docker.io/library/{image}\": not found"
            ),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        return stuck(
            state,
            ns,
            name,
            field,
            index,
            "ImagePullBackOff",
            &format!("Back-off pulling image \"{image}\""),
        );
    }
    let mut argv: Vec<String> = Vec::new();
    for part in ["command", "args"] {
        argv.extend(
            container[part]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned)),
        );
    }
    if container["command"].as_array().is_none_or(|c| c.is_empty()) {
        return stuck(
            state,
            ns,
            name,
            field,
            index,
            "CreateContainerError",
            "the Kubernetes API double cannot run an image's entrypoint: the container needs a command",
        );
    }
    let env = match resolve_env(state, ns, name, container) {
        Ok(env) => env,
        Err(message) => {
            return stuck(
                state,
                ns,
                name,
                field,
                index,
                "CreateContainerConfigError",
                &message,
            );
        }
    };

    let mut bwrap = tokio::process::Command::new("bwrap");
    bwrap.args(view(container, volumes));
    if let Some(dir) = container["workingDir"].as_str() {
        bwrap.arg("--chdir").arg(dir);
    }
    bwrap.arg("--").args(&argv);
    bwrap.env_clear();
    bwrap.env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    bwrap.env("HOSTNAME", name);
    bwrap.env("HOME", "/root");
    bwrap.envs(env);
    let (reader, writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(error) => {
            return stuck(
                state,
                ns,
                name,
                field,
                index,
                "CreateContainerError",
                &error.to_string(),
            );
        }
    };
    let writer = OwnedFd::from(writer);
    let Ok(second) = writer.try_clone() else {
        return stuck(
            state,
            ns,
            name,
            field,
            index,
            "CreateContainerError",
            "cannot share the output pipe",
        );
    };
    bwrap
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(second));
    bwrap.process_group(0);
    bwrap.kill_on_drop(true);
    if stopping(state, &key) {
        return Ran::Stopped;
    }
    let mut child = match bwrap.spawn() {
        Ok(child) => child,
        Err(error) => {
            return stuck(
                state,
                ns,
                name,
                field,
                index,
                "StartError",
                &format!("cannot start bwrap: {error}"),
            );
        }
    };
    drop(bwrap);
    let group = child.id().map(|id| id as i32).unwrap_or_default();
    // Registered under the locks `mark_stopping` takes, so that a deletion either sees this
    // container (and stops it) or this container sees the deletion (and stops itself).
    {
        let mut processes = lock(&state.processes);
        if lock(&state.stopping).contains(&key) {
            // SAFETY: killpg takes plain integers.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        } else {
            processes.entry(key.clone()).or_default().push(group);
        }
    }
    let log_key = (ns.to_owned(), name.to_owned(), container_name.clone());
    lock(&state.logs).insert(log_key.clone(), ContainerLog::default());
    let started_at = now();
    set_state(
        state,
        ns,
        name,
        field,
        index,
        json!({"running": {"startedAt": started_at}}),
        |status| {
            status["started"] = json!(true);
            status["containerID"] = json!(format!("double://{group}"));
            status["imageID"] = json!(format!("double://{image}"));
        },
    );

    // Output, as the container writes it; the OOM fault watches it.
    let oom_text = lock(&state.faults).oom_text.clone();
    let reader_state = Arc::clone(state);
    let reader_key = log_key.clone();
    let reading = tokio::spawn(async move {
        let mut pipe = match tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))
        {
            Ok(pipe) => pipe,
            Err(_) => return false,
        };
        let mut buffer = vec![0u8; 64 * 1024];
        let mut oom = false;
        loop {
            match pipe.read(&mut buffer).await {
                Ok(0) | Err(_) => return oom,
                Ok(read) => {
                    let mut logs = lock(&reader_state.logs);
                    if let Some(log) = logs.get_mut(&reader_key) {
                        log.append(&buffer[..read]);
                        if let Some(text) = &oom_text
                            && !oom
                            && log.bytes.windows(text.len()).any(|w| w == text.as_bytes())
                        {
                            oom = true;
                            // SAFETY: killpg takes plain integers.
                            unsafe { libc::killpg(group, libc::SIGKILL) };
                        }
                    }
                    drop(logs);
                    reader_state.log_written.notify_waiters();
                }
            }
        }
    });
    let status = child.wait().await;
    // What the container's processes left running dies with it.
    // SAFETY: killpg takes plain integers.
    unsafe { libc::killpg(group, libc::SIGKILL) };
    let oom = reading.await.unwrap_or(false);
    if let Some(groups) = lock(&state.processes).get_mut(&key) {
        groups.retain(|g| *g != group);
    }
    if let Some(log) = lock(&state.logs).get_mut(&log_key) {
        log.ended = true;
    }
    state.log_written.notify_waiters();
    let code = match status {
        Ok(status) => status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(9)),
        Err(_) => 128 + 9,
    };
    let reason = if oom {
        "OOMKilled"
    } else if code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let code = if oom { 137 } else { code };
    set_state(
        state,
        ns,
        name,
        field,
        index,
        json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started_at, "finishedAt": now(), "containerID": format!("double://{group}")}}),
        |status| status["started"] = json!(false),
    );
    if stopping(state, &key) {
        Ran::Stopped
    } else {
        Ran::Exited(code)
    }
}

/// bubblewrap arguments for a view of this machine with the container's volumes mounted.
fn view(container: &Value, volumes: &HashMap<String, PathBuf>) -> Vec<OsString> {
    let mounts: Vec<(String, PathBuf, bool)> = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|mount| {
            let host = volumes.get(mount["name"].as_str()?)?.clone();
            Some((
                mount["mountPath"].as_str()?.to_owned(),
                host,
                mount["readOnly"].as_bool() == Some(true),
            ))
        })
        .collect();
    let mount_tops: Vec<String> = mounts
        .iter()
        .filter_map(|(path, _, _)| {
            path.trim_start_matches('/')
                .split('/')
                .next()
                .map(str::to_owned)
        })
        .collect();
    let mut args: Vec<OsString> = ["--die-with-parent", "--unshare-pid", "--new-session"]
        .map(OsString::from)
        .to_vec();
    if let Ok(entries) = std::fs::read_dir("/") {
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let file_name = entry.file_name();
            if matches!(file_name.as_bytes(), b"proc" | b"dev")
                || mount_tops
                    .iter()
                    .any(|top| top.as_bytes() == file_name.as_bytes())
            {
                continue;
            }
            let path = Path::new("/").join(&file_name);
            match std::fs::read_link(&path) {
                Ok(target) => args.extend(["--symlink".into(), target.into(), path.into()]),
                Err(_) => args.extend(["--bind".into(), path.clone().into(), path.into()]),
            }
        }
    }
    args.extend(["--dev", "/dev", "--proc", "/proc"].map(OsString::from));
    let mut mounts = mounts;
    mounts.sort_by_key(|(path, _, _)| path.len());
    for (path, host, read_only) in mounts {
        args.push(if read_only { "--ro-bind" } else { "--bind" }.into());
        args.push(host.into());
        args.push(path.into());
    }
    args
}

/// The container's environment as the kubelet builds it; a missing Secret or key is the
/// configuration error the kubelet reports.
fn resolve_env(
    state: &State,
    ns: &str,
    pod: &str,
    container: &Value,
) -> Result<Vec<(String, String)>, String> {
    let pod_object = state.get("pods", ns, pod).unwrap_or_default();
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let Some(var_name) = var["name"].as_str() else {
            continue;
        };
        let value = if let Some(value) = var["value"].as_str() {
            expand(value, &env)
        } else if let Some(reference) = var["valueFrom"]["secretKeyRef"].as_object() {
            match key_ref(state, ns, "secrets", "Secret", reference)? {
                Some(value) => value,
                None => continue,
            }
        } else if let Some(reference) = var["valueFrom"]["configMapKeyRef"].as_object() {
            match key_ref(state, ns, "configmaps", "ConfigMap", reference)? {
                Some(value) => value,
                None => continue,
            }
        } else if let Some(path) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "metadata.name" => pod.to_owned(),
                "metadata.namespace" => ns.to_owned(),
                "metadata.uid" => pod_object["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                "spec.nodeName" => "double-node".to_owned(),
                "status.podIP" => "127.0.0.1".to_owned(),
                other => return Err(format!("unsupported fieldRef {other}")),
            }
        } else {
            String::new()
        };
        env.retain(|(name, _)| name != var_name);
        env.push((var_name.to_owned(), value));
    }
    Ok(env)
}

fn key_ref(
    state: &State,
    ns: &str,
    resource: &str,
    kind: &str,
    reference: &serde_json::Map<String, Value>,
) -> Result<Option<String>, String> {
    let name = reference
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key = reference
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let optional = reference.get("optional").and_then(Value::as_bool) == Some(true);
    let Some(object) = state.get(resource, ns, name) else {
        return if optional {
            Ok(None)
        } else {
            Err(format!("{} \"{name}\" not found", kind.to_lowercase()))
        };
    };
    let Some(value) = object["data"][key].as_str() else {
        return if optional {
            Ok(None)
        } else {
            Err(format!("couldn't find key {key} in {kind} {ns}/{name}"))
        };
    };
    Ok(Some(if resource == "secrets" {
        String::from_utf8_lossy(
            &base64::engine::general_purpose::STANDARD
                .decode(value)
                .unwrap_or_default(),
        )
        .into_owned()
    } else {
        value.to_owned()
    }))
}

/// `$(VAR)` expanded from the variables defined before, as Kubernetes does.
fn expand(value: &str, env: &[(String, String)]) -> String {
    let mut out = value.to_owned();
    for (name, replacement) in env {
        out = out.replace(&format!("$({name})"), replacement);
    }
    out
}

/// Kills a pod's processes: SIGTERM, then SIGKILL after `grace`.
pub async fn stop(state: &State, ns: &str, name: &str, grace: Duration) {
    let key = (ns.to_owned(), name.to_owned());
    mark_stopping(state, &key);
    state.scheduling.notify_waiters();
    signal_all(state, &key, libc::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline && has_processes(state, &key) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal_all(state, &key, libc::SIGKILL);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline && has_processes(state, &key) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lock(&state.processes).remove(&key);
    // `stopping` stays set: a container the kubelet was about to start when the deletion began
    // must see it and not start.
}

/// From now on the pod's kubelet starts nothing (see `run_container`).
fn mark_stopping(state: &State, key: &Key) {
    let _processes = lock(&state.processes);
    lock(&state.stopping).insert(key.clone());
}

fn has_processes(state: &State, key: &Key) -> bool {
    lock(&state.processes)
        .get(key)
        .is_some_and(|groups| !groups.is_empty())
}

fn signal_all(state: &State, key: &Key, signal: i32) {
    for group in lock(&state.processes).get(key).into_iter().flatten() {
        // SAFETY: killpg takes plain integers.
        unsafe { libc::killpg(*group, signal) };
    }
}

/// Kills the pod's processes now and marks it failed with `reason`, as the kubelet does on
/// eviction and at the deadline.
fn fail_pod(state: &State, ns: &str, name: &str, reason: &str, message: &str) {
    let key = (ns.to_owned(), name.to_owned());
    mark_stopping(state, &key);
    signal_all(state, &key, libc::SIGKILL);
    state.update_pod(ns, name, |pod| {
        pod["status"]["phase"] = json!("Failed");
        pod["status"]["reason"] = json!(reason);
        pod["status"]["message"] = json!(message);
    });
}

pub fn evict(state: &State, ns: &str, name: &str) {
    fail_pod(
        state,
        ns,
        name,
        "Evicted",
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi.",
    );
}
