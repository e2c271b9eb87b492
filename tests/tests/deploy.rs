//! The manifests in `deploy/`: every document parses as the Kubernetes type its `kind` names (and
//! uses no field that type lacks), and the least-privilege promises of `deploy/README.md` hold: the
//! executor's Role grants exactly what the executor uses, test pods get no API access, the server
//! meets the `restricted` Pod Security Standard, and its command line is one the real binary
//! accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, Namespace, PersistentVolumeClaim, PodSpec, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, Subject};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use testloop_tests::{repo_root, testloop_bin};

const SERVER_NAMESPACE: &str = "testloop";
const RUNS_NAMESPACE: &str = "testloop-runs";
const SERVER_ACCOUNT: &str = "testloop";
const RUNNER_ACCOUNT: &str = "testloop-runner";
const EXECUTOR_ROLE: &str = "testloop-executor";
/// The user of the image (`USER 65532:65532` in the Dockerfile).
const IMAGE_USER: i64 = 65532;

/// One document of a file in `deploy/`, typed by its `kind`.
// A dozen values in a test: boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Object {
    Namespace(Namespace),
    ServiceAccount(ServiceAccount),
    Role(Role),
    RoleBinding(RoleBinding),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    PersistentVolumeClaim(PersistentVolumeClaim),
    Deployment(Deployment),
    Service(Service),
}

#[derive(Debug)]
struct Document {
    /// `FILE#INDEX`, for messages.
    origin: String,
    object: Object,
}

fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

/// The manifest files: every `.yaml` in `deploy/` but `kustomization.yaml`, sorted.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("read deploy/")
        .map(|entry| entry.expect("deploy/ entry").path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) && path.file_name().and_then(|n| n.to_str()) != Some("kustomization.yaml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/");
    files
}

/// Parses `value` as `T` and serializes it back: a field that `T` does not know (a typo, or a field
/// of another kind) is dropped on the way and shows up as a difference.
fn typed<T>(origin: &str, value: &serde_json::Value) -> T
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let object: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|error| panic!("{origin}: not a valid {}: {error}", kind_of(value)));
    let back = serde_json::to_value(&object).expect("serialize");
    if &back != value {
        panic!(
            "{origin}: fields that {} does not have (or values it reads differently):\n{}",
            kind_of(value),
            differences(value, &back, "").join("\n")
        );
    }
    object
}

fn kind_of(value: &serde_json::Value) -> &str {
    value["kind"].as_str().unwrap_or("?")
}

/// Where `written` and `read` differ, as `path: written → read` lines.
fn differences(written: &serde_json::Value, read: &serde_json::Value, path: &str) -> Vec<String> {
    use serde_json::Value;
    match (written, read) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .flat_map(|key| {
                    let path = format!("{path}.{key}");
                    match (a.get(key), b.get(key)) {
                        (Some(x), Some(y)) => differences(x, y, &path),
                        (Some(x), None) => vec![format!("{path}: {x} is not a known field")],
                        (None, Some(y)) => vec![format!("{path}: appeared as {y}")],
                        (None, None) => vec![],
                    }
                })
                .collect()
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .flat_map(|(i, (x, y))| differences(x, y, &format!("{path}[{i}]")))
            .collect(),
        _ if written == read => vec![],
        _ => vec![format!("{path}: {written} read as {read}")],
    }
}

/// Every document of every manifest file, typed.
fn documents() -> Vec<Document> {
    let mut documents = Vec::new();
    for file in manifest_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).expect("read manifest");
        for (index, document) in yaml_serde::Deserializer::from_str(&text).enumerate() {
            let origin = format!("deploy/{name}#{index}");
            let value = serde_json::Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{origin}: not YAML: {error}"));
            if value.is_null() {
                continue;
            }
            let api_version = value["apiVersion"].as_str().unwrap_or_default();
            let object = match (api_version, kind_of(&value)) {
                ("v1", "Namespace") => Object::Namespace(typed(&origin, &value)),
                ("v1", "ServiceAccount") => Object::ServiceAccount(typed(&origin, &value)),
                ("v1", "PersistentVolumeClaim") => {
                    Object::PersistentVolumeClaim(typed(&origin, &value))
                }
                ("v1", "Service") => Object::Service(typed(&origin, &value)),
                ("apps/v1", "Deployment") => Object::Deployment(typed(&origin, &value)),
                ("rbac.authorization.k8s.io/v1", "Role") => Object::Role(typed(&origin, &value)),
                ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                    Object::RoleBinding(typed(&origin, &value))
                }
                ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                    Object::ClusterRole(typed(&origin, &value))
                }
                ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                    Object::ClusterRoleBinding(typed(&origin, &value))
                }
                (api_version, kind) => panic!(
                    "{origin}: unknown kind `{kind}` ({api_version}): add it to tests/tests/deploy.rs \
                     with the invariants it must keep"
                ),
            };
            documents.push(Document { origin, object });
        }
    }
    documents
}

/// The one object of a kind with this namespace and name.
macro_rules! find {
    ($documents:expr, $variant:ident, $namespace:expr, $name:expr) => {{
        let found: Vec<_> = $documents
            .iter()
            .filter_map(|document| match &document.object {
                Object::$variant(object) => Some(object),
                _ => None,
            })
            .filter(|object| {
                object.metadata.namespace.as_deref() == $namespace
                    && object.metadata.name.as_deref() == Some($name)
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one {} {:?}/{}, found {}",
            stringify!($variant),
            $namespace,
            $name,
            found.len()
        );
        found[0]
    }};
}

fn server_deployment(documents: &[Document]) -> &Deployment {
    find!(documents, Deployment, Some(SERVER_NAMESPACE), "testloop")
}

fn pod_spec(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .template
        .spec
        .as_ref()
        .expect("the Deployment has a pod template")
}

fn server_container(deployment: &Deployment) -> &Container {
    let containers = &pod_spec(deployment).containers;
    assert_eq!(containers.len(), 1, "one container in the server pod");
    &containers[0]
}

fn args(container: &Container) -> &[String] {
    container.args.as_deref().expect("the container has args")
}

/// The values given to `--flag` in `args` (`--flag VALUE` and `--flag=VALUE`).
fn flag_values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    let mut values = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == flag {
            values.push(iter.next().map(String::as_str).unwrap_or_default());
        } else if let Some(value) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            values.push(value);
        }
    }
    values
}

fn flag_value<'a>(args: &'a [String], flag: &str) -> &'a str {
    match flag_values(args, flag).as_slice() {
        [value] => value,
        other => panic!("expected {flag} once in {args:?}, found {other:?}"),
    }
}

fn container_port(container: &Container, name: &str) -> i32 {
    container
        .ports
        .iter()
        .flatten()
        .find(|port| port.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no container port named {name}"))
        .container_port
}

/// A port reference (`port: http` or `port: 8080`) as a number on `container`.
fn resolve_port(container: &Container, port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(number) => *number,
        IntOrString::String(name) => container_port(container, name),
    }
}

#[test]
fn every_document_is_a_known_kind_with_only_known_fields() {
    let documents = documents();
    let kinds: BTreeSet<&str> = documents
        .iter()
        .map(|document| match &document.object {
            Object::Namespace(_) => "Namespace",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::Role(_) => "Role",
            Object::RoleBinding(_) => "RoleBinding",
            Object::ClusterRole(_) => "ClusterRole",
            Object::ClusterRoleBinding(_) => "ClusterRoleBinding",
            Object::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Object::Deployment(_) => "Deployment",
            Object::Service(_) => "Service",
        })
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "Namespace",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "PersistentVolumeClaim",
            "Deployment",
            "Service",
        ]),
        "{documents:#?}"
    );
    // Everything but Namespaces is namespaced, in one of the two namespaces.
    for document in &documents {
        let namespace = match &document.object {
            Object::Namespace(_) | Object::ClusterRole(_) | Object::ClusterRoleBinding(_) => {
                continue;
            }
            Object::ServiceAccount(o) => &o.metadata.namespace,
            Object::Role(o) => &o.metadata.namespace,
            Object::RoleBinding(o) => &o.metadata.namespace,
            Object::PersistentVolumeClaim(o) => &o.metadata.namespace,
            Object::Deployment(o) => &o.metadata.namespace,
            Object::Service(o) => &o.metadata.namespace,
        };
        assert!(
            matches!(
                namespace.as_deref(),
                Some(SERVER_NAMESPACE | RUNS_NAMESPACE)
            ),
            "{}: namespace {namespace:?}",
            document.origin
        );
    }
}

#[test]
fn typos_are_caught_as_unknown_fields() {
    let value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "x", "namespace": "y"},
        "automountServiceAcountToken": false,
    });
    let caught = std::panic::catch_unwind(|| typed::<ServiceAccount>("typo", &value));
    let message = *caught
        .expect_err("a misspelt field is refused")
        .downcast::<String>()
        .expect("panic message");
    assert!(
        message.contains(".automountServiceAcountToken: false is not a known field"),
        "{message}"
    );
}

#[test]
fn kustomization_lists_every_manifest_file() {
    let text = std::fs::read_to_string(deploy_dir().join("kustomization.yaml"))
        .expect("read deploy/kustomization.yaml");
    let kustomization: serde_json::Value = yaml_serde::from_str(&text).expect("kustomization YAML");
    assert_eq!(kustomization["kind"], "Kustomization");
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|resource| resource.as_str().expect("a file name"))
        .collect();
    let files: Vec<String> = manifest_files()
        .iter()
        .map(|file| file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, files);
}

#[test]
fn both_namespaces_enforce_the_restricted_pod_security_standard() {
    let documents = documents();
    for name in [SERVER_NAMESPACE, RUNS_NAMESPACE] {
        let namespace = find!(documents, Namespace, None::<&str>, name);
        let labels = namespace.metadata.labels.clone().unwrap_or_default();
        for mode in ["enforce", "warn", "audit"] {
            assert_eq!(
                labels
                    .get(&format!("pod-security.kubernetes.io/{mode}"))
                    .map(String::as_str),
                Some("restricted"),
                "{name}: {mode}"
            );
            assert_eq!(
                labels
                    .get(&format!("pod-security.kubernetes.io/{mode}-version"))
                    .map(String::as_str),
                Some("latest"),
                "{name}: {mode}-version"
            );
        }
    }
}

/// What the Kubernetes executor does in the namespace of test pods, and nothing more.
fn expected_rules() -> BTreeMap<(String, String), BTreeSet<String>> {
    let rules: [(&str, &[&str]); 5] = [
        (
            "pods",
            &[
                "create",
                "get",
                "list",
                "watch",
                "delete",
                "deletecollection",
            ],
        ),
        ("pods/log", &["get"]),
        (
            "configmaps",
            &[
                "create",
                "get",
                "list",
                "watch",
                "delete",
                "deletecollection",
            ],
        ),
        ("services", &["create", "get", "list", "watch", "delete"]),
        ("events", &["get", "list", "watch"]),
    ];
    rules
        .into_iter()
        .map(|(resource, verbs)| {
            (
                (String::new(), resource.to_owned()),
                verbs.iter().map(|verb| (*verb).to_owned()).collect(),
            )
        })
        .collect()
}

#[test]
fn executor_role_grants_exactly_what_the_executor_uses() {
    let documents = documents();
    let role = find!(documents, Role, Some(RUNS_NAMESPACE), EXECUTOR_ROLE);
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role.rules.iter().flatten() {
        assert!(
            rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
            "{rule:?}"
        );
        let groups = rule.api_groups.as_deref().unwrap_or_default();
        let resources = rule.resources.as_deref().unwrap_or_default();
        for word in groups.iter().chain(resources).chain(&rule.verbs) {
            assert!(!word.contains('*'), "a wildcard in {rule:?}");
        }
        for resource in resources {
            assert!(
                !resource.starts_with("secrets"),
                "the server never reads Secrets: {rule:?}"
            );
            assert!(
                !["pods/exec", "pods/attach", "pods/portforward", "pods/proxy"]
                    .contains(&resource.as_str()),
                "no way into a test pod but its log: {rule:?}"
            );
        }
        for group in groups {
            for resource in resources {
                granted
                    .entry((group.clone(), resource.clone()))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    assert_eq!(granted, expected_rules());
    // No cluster-wide grant at all.
    for document in &documents {
        let name = match &document.object {
            Object::ClusterRole(role) => &role.metadata.name,
            Object::ClusterRoleBinding(binding) => &binding.metadata.name,
            _ => continue,
        };
        panic!("{}: cluster-wide RBAC ({name:?})", document.origin);
    }
}

#[test]
fn only_the_server_account_is_bound_to_the_executor_role() {
    let documents = documents();
    let binding = find!(documents, RoleBinding, Some(RUNS_NAMESPACE), EXECUTOR_ROLE);
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.name, EXECUTOR_ROLE);
    assert_eq!(
        binding.role_ref.api_group.as_deref(),
        Some("rbac.authorization.k8s.io")
    );
    let subjects = binding.subjects.as_deref().unwrap_or_default();
    assert_eq!(
        subjects,
        [Subject {
            kind: "ServiceAccount".to_owned(),
            name: SERVER_ACCOUNT.to_owned(),
            namespace: Some(SERVER_NAMESPACE.to_owned()),
            api_group: None,
        }]
    );
    // The account exists where the binding says, and is the one the server pod runs as.
    find!(
        documents,
        ServiceAccount,
        Some(SERVER_NAMESPACE),
        SERVER_ACCOUNT
    );
    assert_eq!(
        pod_spec(server_deployment(&documents))
            .service_account_name
            .as_deref(),
        Some(SERVER_ACCOUNT)
    );
}

#[test]
fn test_pods_account_has_no_token_and_no_binding() {
    let documents = documents();
    let runner = find!(
        documents,
        ServiceAccount,
        Some(RUNS_NAMESPACE),
        RUNNER_ACCOUNT
    );
    assert_eq!(runner.automount_service_account_token, Some(false));
    let names_runner = |subjects: &Option<Vec<Subject>>| {
        subjects
            .iter()
            .flatten()
            .any(|subject| subject.name == RUNNER_ACCOUNT || subject.kind != "ServiceAccount")
    };
    for document in &documents {
        let bound = match &document.object {
            Object::RoleBinding(binding) => names_runner(&binding.subjects),
            Object::ClusterRoleBinding(binding) => names_runner(&binding.subjects),
            _ => false,
        };
        assert!(
            !bound,
            "{}: binds the test pods' account (or a group or user)",
            document.origin
        );
    }
    // The server's own account does not automount either: only its pod opts in.
    let server = find!(
        documents,
        ServiceAccount,
        Some(SERVER_NAMESPACE),
        SERVER_ACCOUNT
    );
    assert_eq!(server.automount_service_account_token, Some(false));
    assert_eq!(
        pod_spec(server_deployment(&documents)).automount_service_account_token,
        Some(true),
        "the executor needs the server's token (in-cluster config)"
    );
}

#[test]
fn server_pod_meets_the_restricted_profile() {
    let documents = documents();
    let spec = pod_spec(server_deployment(&documents));
    let pod = spec
        .security_context
        .clone()
        .expect("a pod securityContext");
    assert!(spec.host_network != Some(true) && spec.host_pid != Some(true));
    assert!(spec.host_ipc != Some(true) && spec.host_users != Some(true));
    assert_eq!(pod.fs_group, Some(IMAGE_USER), "the volume is writable");
    assert!(pod.sysctls.is_none());
    for volume in spec.volumes.iter().flatten() {
        let value = serde_json::to_value(volume).unwrap();
        for key in value.as_object().unwrap().keys() {
            assert!(
                [
                    "name",
                    "configMap",
                    "csi",
                    "downwardAPI",
                    "emptyDir",
                    "ephemeral",
                    "persistentVolumeClaim",
                    "projected",
                    "secret"
                ]
                .contains(&key.as_str()),
                "volume {}: `{key}` is not allowed under restricted",
                volume.name
            );
        }
    }
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for container in containers {
        let own = container.security_context.clone().unwrap_or_default();
        let name = &container.name;
        // Container settings win over the pod's.
        let run_as_non_root = own.run_as_non_root.or(pod.run_as_non_root);
        let run_as_user = own.run_as_user.or(pod.run_as_user);
        let seccomp = own
            .seccomp_profile
            .clone()
            .or_else(|| pod.seccomp_profile.clone())
            .map(|profile| profile.type_);
        assert_eq!(run_as_non_root, Some(true), "{name}: runAsNonRoot");
        assert_eq!(run_as_user, Some(IMAGE_USER), "{name}: runAsUser");
        assert_eq!(
            own.run_as_group.or(pod.run_as_group),
            Some(IMAGE_USER),
            "{name}: runAsGroup"
        );
        assert!(
            matches!(seccomp.as_deref(), Some("RuntimeDefault" | "Localhost")),
            "{name}: seccomp {seccomp:?}"
        );
        assert_eq!(
            own.allow_privilege_escalation,
            Some(false),
            "{name}: allowPrivilegeEscalation"
        );
        assert_eq!(
            own.read_only_root_filesystem,
            Some(true),
            "{name}: readOnlyRootFilesystem"
        );
        assert_ne!(own.privileged, Some(true), "{name}: privileged");
        let capabilities = own.capabilities.clone().unwrap_or_default();
        assert_eq!(
            capabilities.drop,
            Some(vec!["ALL".to_owned()]),
            "{name}: drop ALL"
        );
        assert!(
            capabilities.add.unwrap_or_default().is_empty(),
            "{name}: adds capabilities"
        );
        for port in container.ports.iter().flatten() {
            assert!(port.host_port.is_none(), "{name}: hostPort");
        }
        let resources = container.resources.clone().unwrap_or_default();
        for key in ["cpu", "memory"] {
            assert!(
                resources
                    .requests
                    .as_ref()
                    .is_some_and(|r| r.contains_key(key)),
                "{name}: requests.{key}"
            );
            assert!(
                resources
                    .limits
                    .as_ref()
                    .is_some_and(|l| l.contains_key(key)),
                "{name}: limits.{key}"
            );
        }
    }
}

#[test]
fn server_is_one_pod_replaced_by_recreate_on_its_volume() {
    let documents = documents();
    let deployment = server_deployment(&documents);
    let spec = &deployment.spec;
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(
        spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("Recreate")
    );
    let claim = find!(
        documents,
        PersistentVolumeClaim,
        Some(SERVER_NAMESPACE),
        "testloop-data"
    );
    let claim_spec = claim.spec.as_ref().expect("a claim spec");
    assert_eq!(
        claim_spec.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_owned()][..])
    );
    assert_eq!(
        claim_spec.storage_class_name, None,
        "the cluster's default class"
    );
    // The claim is mounted where --data-dir points.
    let pod = pod_spec(deployment);
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|volume| {
            volume
                .persistent_volume_claim
                .as_ref()
                .is_some_and(|source| source.claim_name == "testloop-data")
        })
        .expect("a volume of the claim");
    let container = server_container(deployment);
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|mount| mount.name == volume.name)
        .expect("the claim is mounted");
    assert_eq!(mount.read_only, None);
    assert_eq!(flag_value(args(container), "--data-dir"), mount.mount_path);
    // With a read-only root, /tmp is a volume of its own.
    assert!(
        container
            .volume_mounts
            .iter()
            .flatten()
            .any(|mount| mount.mount_path == "/tmp")
    );
    // The template's labels are what the Deployment selects.
    let selector = spec.selector.match_labels.clone().unwrap_or_default();
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    assert!(!selector.is_empty());
    assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
}

#[test]
fn server_probes_hit_healthz_on_the_http_port() {
    let documents = documents();
    let container = server_container(server_deployment(&documents));
    let listen_port: i32 = flag_value(args(container), "--listen")
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .expect("--listen ADDR:PORT");
    assert_eq!(container_port(container, "http"), listen_port);
    let probes = [
        ("readiness", &container.readiness_probe),
        ("liveness", &container.liveness_probe),
        ("startup", &container.startup_probe),
    ];
    for (name, probe) in probes {
        if name == "startup" && probe.is_none() {
            continue;
        }
        let get = probe
            .as_ref()
            .and_then(|probe| probe.http_get.as_ref())
            .unwrap_or_else(|| panic!("{name} probe: an HTTP GET"));
        assert_eq!(get.path.as_deref(), Some("/healthz"), "{name} probe");
        assert_eq!(resolve_port(container, &get.port), listen_port, "{name}");
        assert!(
            get.scheme.as_deref().is_none_or(|s| s == "HTTP"),
            "{name}: plain HTTP"
        );
    }
}

#[test]
fn service_targets_the_server_container_port() {
    let documents = documents();
    let deployment = server_deployment(&documents);
    let service = find!(documents, Service, Some(SERVER_NAMESPACE), "testloop");
    let spec = service.spec.as_ref().expect("a service spec");
    assert!(spec.type_.as_deref().is_none_or(|t| t == "ClusterIP"));
    let pod_labels = deployment
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let selector = spec.selector.clone().unwrap_or_default();
    assert!(!selector.is_empty());
    assert!(
        selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
        "the Service selects the server's pods: {selector:?} vs {pod_labels:?}"
    );
    let ports = spec.ports.as_deref().unwrap_or_default();
    assert_eq!(ports.len(), 1);
    let port = &ports[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("http"), 80));
    let target = port.target_port.as_ref().expect("a targetPort");
    let container = server_container(deployment);
    assert_eq!(
        resolve_port(container, target),
        container_port(container, "http")
    );
}

#[test]
fn server_token_comes_from_the_secret_never_the_command_line() {
    let documents = documents();
    let container = server_container(server_deployment(&documents));
    assert!(flag_values(args(container), "--token").is_empty());
    let token = container
        .env
        .iter()
        .flatten()
        .find(|var| var.name == "TESTLOOP_TOKEN")
        .expect("TESTLOOP_TOKEN");
    assert_eq!(token.value, None);
    let secret = token
        .value_from
        .as_ref()
        .and_then(|source| source.secret_key_ref.as_ref())
        .expect("from a Secret");
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("testloop-token", "token")
    );
    assert_ne!(secret.optional, Some(true));
}

#[test]
fn server_runs_test_pods_where_the_role_and_runner_account_are() {
    let documents = documents();
    let container = server_container(server_deployment(&documents));
    let args = args(container);
    assert_eq!(args.first().map(String::as_str), Some("serve"));
    assert_eq!(flag_value(args, "--transport"), "http");
    assert_eq!(flag_value(args, "--executor"), "kubernetes");
    assert_eq!(flag_value(args, "--namespace"), RUNS_NAMESPACE);
    assert_eq!(flag_value(args, "--runner-service-account"), RUNNER_ACCOUNT);
    // The in-cluster config: no kubeconfig or context in the pod.
    assert!(flag_values(args, "--kubeconfig").is_empty());
    assert!(flag_values(args, "--context").is_empty());
    // The toolkit image (whose /testloop each test pod copies in) is the server's own image.
    let image = container.image.as_deref().expect("an image");
    assert_eq!(flag_value(args, "--toolkit-image"), image);
    assert!(
        !image.ends_with(":latest") && image.contains(':'),
        "a pinned tag: {image}"
    );
}

/// Whether a help line starts an option's description (`--flag`, `-h, --help`).
fn is_option_line(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("--")
        || line
            .strip_prefix('-')
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphanumeric()))
}

/// The lines of `help` that describe `flag`: from its own line to the next option, heading or
/// closing text.
fn flag_section(help: &str, flag: &str) -> Option<String> {
    let lines: Vec<&str> = help.lines().collect();
    let start = lines.iter().position(|line| {
        is_option_line(line)
            && line
                .trim_start()
                .split([' ', ','])
                .any(|word| word == flag || word.starts_with(&format!("{flag}=")))
    })?;
    let end = lines[start + 1..]
        .iter()
        .position(|line| {
            is_option_line(line) || (!line.is_empty() && !line.starts_with(char::is_whitespace))
        })
        .map_or(lines.len(), |offset| start + 1 + offset);
    Some(lines[start..end].join("\n"))
}

/// The values a flag accepts, when the help lists them (`[possible values: a, b]`, or a
/// `Possible values:` list of `- a: …` lines).
fn possible_values(section: &str) -> Option<Vec<String>> {
    if let Some(rest) = section.split("[possible values: ").nth(1) {
        let list = rest.split(']').next().unwrap_or_default();
        return Some(list.split(", ").map(str::to_owned).collect());
    }
    let (_, list) = section.split_once("Possible values:")?;
    Some(
        list.lines()
            .filter_map(|line| line.trim_start().strip_prefix("- "))
            .map(|item| item.split(':').next().unwrap_or_default().trim().to_owned())
            .collect(),
    )
}

#[test]
fn server_command_line_is_one_the_binary_accepts() {
    let documents = documents();
    let container = server_container(server_deployment(&documents));
    let args = args(container);
    let output = std::process::Command::new(testloop_bin())
        .args([args[0].as_str(), "--help"])
        .output()
        .expect("run testloop serve --help");
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8(output.stdout).expect("UTF-8 help");
    let mut missing = Vec::new();
    let mut iter = args[1..].iter().peekable();
    while let Some(arg) = iter.next() {
        assert!(
            arg.starts_with("--"),
            "`{arg}` is neither a flag nor a flag's value in {args:?}"
        );
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (arg.as_str(), None),
        };
        let Some(section) = flag_section(&help, flag) else {
            missing.push(flag.to_owned());
            // Skip its value, if it has one (the next argument, unless that is a flag).
            if inline.is_none() && iter.peek().is_some_and(|next| !next.starts_with("--")) {
                iter.next();
            }
            continue;
        };
        // A flag that takes a value (`--flag <VALUE>`) consumes the next argument.
        let takes_value = section.lines().next().unwrap_or_default().contains('<');
        assert!(takes_value || inline.is_none(), "{flag} takes no value");
        if !takes_value {
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => iter.next().unwrap_or_else(|| panic!("{flag} has no value")),
        };
        if let Some(values) = possible_values(&section) {
            assert!(
                values.iter().any(|possible| possible == value),
                "{flag} {value}: not one of {values:?}"
            );
        }
    }
    assert!(
        missing.is_empty(),
        "`testloop serve --help` does not mention {missing:?}:\n{help}"
    );
    // Environment variables meant for testloop are ones it reads.
    for var in container.env.iter().flatten() {
        if var.name.starts_with("TESTLOOP_") {
            assert!(
                help.contains(&format!("[env: {}]", var.name))
                    || help.contains(&format!("[env: {}=", var.name)),
                "{} is not read by `testloop serve`",
                var.name
            );
        }
    }
}

#[test]
fn image_runs_as_the_user_the_manifests_expect() {
    let dockerfile =
        std::fs::read_to_string(repo_root().join("Dockerfile")).expect("read Dockerfile");
    let final_stage = dockerfile.rsplit("\nFROM ").next().expect("a final stage");
    assert!(final_stage.starts_with("scratch"), "{final_stage}");
    let instruction = |name: &str| -> Vec<&str> {
        final_stage
            .lines()
            .filter_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .collect()
    };
    assert_eq!(
        instruction("USER "),
        [format!("{IMAGE_USER}:{IMAGE_USER}").as_str()]
    );
    // The toolkit's init container runs exactly /testloop.
    assert_eq!(instruction("ENTRYPOINT "), [r#"["/testloop"]"#]);
    assert!(dockerfile.contains("--target x86_64-unknown-linux-musl --bin testloop"));
    assert!(dockerfile.contains("/rootfs/testloop"));
    // The image's default command matches the listen address the Deployment uses.
    let documents = documents();
    let container = server_container(server_deployment(&documents));
    let listen = flag_value(args(container), "--listen");
    assert_eq!(
        instruction("CMD "),
        [format!(r#"["serve", "--transport", "http", "--listen", "{listen}"]"#).as_str()]
    );
}

#[test]
fn deploy_readme_documents_the_secret_and_the_connection() {
    let readme =
        std::fs::read_to_string(deploy_dir().join("README.md")).expect("read deploy/README.md");
    for needle in [
        "kubectl -n testloop create secret generic testloop-token",
        "kubectl -n testloop port-forward",
        "http://localhost:8080/mcp",
        "Authorization: Bearer",
        "kubectl apply -k deploy/",
    ] {
        assert!(readme.contains(needle), "deploy/README.md lacks `{needle}`");
    }
}
