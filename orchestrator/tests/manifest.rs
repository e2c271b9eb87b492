//! What a workflow becomes on Kubernetes: the ConfigMap and Pod of its unit, pinned by snapshots a
//! reviewer can read (`tests/snapshots/*.yaml`; `TESTLOOP_UPDATE_SNAPSHOTS=1` rewrites them), and
//! checked against the Kubernetes API types and the restricted Pod Security profile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use testloop_orchestrator::diff::logdiff::{DiffOptions, diff_lines};
use testloop_orchestrator::execution::ExecutorKind;
use testloop_orchestrator::executor::kubernetes::manifest::{self, ManifestError, PodOptions};
use testloop_orchestrator::executor::kubernetes::podplan::PodPlan;
use testloop_orchestrator::plan::{self, ExecutionVars, PlanError};
use testloop_orchestrator::spec;

#[path = "support/workflows.rs"]
mod workflows;
use workflows::workflow;

fn options() -> PodOptions {
    PodOptions {
        namespace: "tests".to_owned(),
        ..PodOptions::default()
    }
}

enum Failure {
    Plan(PlanError),
    Manifest(ManifestError),
}

fn build(yaml: &str, executor: ExecutorKind) -> Result<manifest::UnitObjects, Failure> {
    let parsed = spec::parse(yaml).expect("valid workflow");
    let workflow = &parsed[0].workflow;
    let plan = plan::plan(
        workflow,
        &BTreeMap::new(),
        ExecutionVars {
            executor,
            ..ExecutionVars::new("01JD3QXAMPLE")
        },
    )
    .map_err(Failure::Plan)?;
    let unit = plan.into_unit("01JD3QXAMPLE", PathBuf::new(), PathBuf::new());
    manifest::build(&unit, &options(), "snapshot").map_err(Failure::Manifest)
}

fn objects(yaml: &str) -> manifest::UnitObjects {
    match build(yaml, ExecutorKind::Kubernetes) {
        Ok(objects) => objects,
        Err(Failure::Plan(error)) => panic!("plan: {error}"),
        Err(Failure::Manifest(error)) => panic!("manifest: {error}"),
    }
}

fn render(objects: &manifest::UnitObjects) -> String {
    format!(
        "---\n{}---\n{}",
        yaml_serde::to_string(&objects.config_map).unwrap(),
        yaml_serde::to_string(&objects.pod).unwrap()
    )
}

/// Compares `actual` with the snapshot `name`, showing the difference.
fn assert_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.yaml"));
    if std::env::var_os("TESTLOOP_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run with TESTLOOP_UPDATE_SNAPSHOTS=1 and review it",
            path.display()
        )
    });
    if expected != actual {
        let old: Vec<&str> = expected.lines().collect();
        let new: Vec<&str> = actual.lines().collect();
        let diff = diff_lines(&old, &new, &DiffOptions::default());
        panic!(
            "{} differs (TESTLOOP_UPDATE_SNAPSHOTS=1 rewrites it):\n{}",
            path.display(),
            diff.to_unified()
        );
    }
}

/// Every object survives a trip through its Kubernetes type unchanged, so no field was lost
/// or invented; the pod meets the restricted profile unless the workflow set its own contexts.
fn check(objects: &manifest::UnitObjects, restricted: bool) {
    let pod_json = serde_json::to_value(&objects.pod).unwrap();
    let again: Pod = serde_json::from_value(pod_json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap(), pod_json);
    let cm_json = serde_json::to_value(&objects.config_map).unwrap();
    let again: ConfigMap = serde_json::from_value(cm_json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap(), cm_json);

    let name = objects.pod.metadata.name.as_deref().unwrap();
    assert!(
        name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    );
    for value in objects.pod.metadata.labels.as_ref().unwrap().values() {
        assert!(value.len() <= 63, "label value {value}");
    }
    let spec = objects.pod.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.automount_service_account_token, Some(false));
    let containers: Vec<_> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let mut names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), containers.len(), "container names are unique");
    if restricted {
        let pod = spec.security_context.as_ref().unwrap();
        assert_eq!(pod.run_as_non_root, Some(true));
        assert_eq!(
            pod.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        for container in containers {
            let context = container.security_context.as_ref().unwrap();
            assert_eq!(context.allow_privilege_escalation, Some(false));
            assert_eq!(
                context.capabilities.as_ref().unwrap().drop.as_deref(),
                Some(&["ALL".to_owned()][..])
            );
        }
    }
    // The plan in the ConfigMap is what the runner reads.
    let plan: PodPlan = serde_json::from_str(
        objects
            .config_map
            .data
            .as_ref()
            .unwrap()
            .get("plan.json")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(plan.containers, objects.plan.containers);
}

#[test]
fn the_hello_example_becomes_one_pod_with_one_step_container() {
    let yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/workflows/hello.yaml"),
    )
    .unwrap();
    let objects = objects(&yaml);
    check(&objects, true);
    assert_eq!(objects.plan.containers.len(), 1);
    assert_snapshot("hello", &render(&objects));
}

#[test]
fn steps_with_different_images_get_containers_in_order() {
    let objects = objects(&workflow(
        "images",
        "container:\n  image: python:3.13\nsteps:\n- shell: pip --version\n- shell: python -V\n- run:\n    image: node:24\n    shell: node -v\n- shell: python -c 'print(1)'\nafter:\n- run:\n    image: node:24\n    shell: echo done",
    ));
    check(&objects, true);
    let containers: Vec<(String, Vec<String>)> = objects
        .plan
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.steps.clone()))
        .collect();
    assert_eq!(
        containers,
        vec![
            ("step-1".to_owned(), vec!["1".to_owned(), "2".to_owned()]),
            ("step-2".to_owned(), vec!["3".to_owned()]),
            ("step-3".to_owned(), vec!["4".to_owned()]),
            ("step-4".to_owned(), vec!["after/1".to_owned()]),
        ]
    );
    let spec = objects.pod.spec.as_ref().unwrap();
    let images: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| c.image.as_deref().unwrap())
        .collect();
    assert_eq!(
        images,
        vec![
            "ghcr.io/testloop/testloop:0.1.0",
            "python:3.13",
            "node:24",
            "python:3.13",
            "node:24"
        ]
    );
    assert_snapshot("images", &render(&objects));
}

#[test]
fn pod_and_container_settings_pass_through_and_secrets_stay_references() {
    let objects = objects(&workflow(
        "settings",
        "pod:\n  labels: {team: qa}\n  annotations: {owner: qa@example.com}\n  serviceAccountName: tests\n  nodeSelector: {pool: tests}\n  tolerations:\n  - {key: dedicated, operator: Equal, value: tests, effect: NoSchedule}\n  imagePullSecrets:\n  - {name: registry}\njob:\n  labels: {suite: smoke}\n  activeDeadlineSeconds: 600\ncontainer:\n  image: alpine:3.22\n  resources:\n    requests: {cpu: 100m, memory: 64Mi}\n    limits: {memory: 256Mi}\n  env:\n  - name: API_TOKEN\n    valueFrom:\n      secretKeyRef: {name: api, key: token}\n  - {name: MODE, value: smoke}\nsteps:\n- shell: echo $MODE",
    ));
    check(&objects, true);
    let spec = objects.pod.spec.as_ref().unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("tests"));
    assert_eq!(spec.active_deadline_seconds, Some(600));
    let labels = objects.pod.metadata.labels.as_ref().unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("qa"));
    assert_eq!(labels.get("suite").map(String::as_str), Some("smoke"));
    let step = &spec.containers[0];
    let env = step.env.as_ref().unwrap();
    assert_eq!(env.len(), 1, "only the secret reference is container env");
    assert_eq!(env[0].name, "API_TOKEN");
    assert!(env[0].value.is_none());
    let memory = &step.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"];
    assert_eq!(memory.0, "256Mi");
    // Plain values travel in the plan; the secret's reference is in the plan's settings of the
    // step (the runner ignores it) and in the pod's env, its value nowhere.
    let plan = &objects.config_map.data.as_ref().unwrap()["plan.json"];
    assert!(plan.contains("\"MODE\""));
    let pod_env = &spec.containers[0].env.as_ref().unwrap()[0];
    let reference = pod_env
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (reference.name.as_str(), reference.key.as_str()),
        ("api", "token")
    );
    assert_snapshot("settings", &render(&objects));
}

#[test]
fn the_workflows_own_security_context_replaces_the_restricted_default() {
    let objects = objects(&workflow(
        "root",
        "pod:\n  securityContext: {runAsUser: 0}\ncontainer:\n  securityContext: {privileged: true}\nsteps:\n- shell: id -u",
    ));
    check(&objects, false);
    let spec = objects.pod.spec.as_ref().unwrap();
    assert_eq!(spec.security_context.as_ref().unwrap().run_as_user, Some(0));
    assert_eq!(
        spec.containers[0]
            .security_context
            .as_ref()
            .unwrap()
            .privileged,
        Some(true)
    );
}

#[test]
fn kubernetes_only_settings_are_refused_locally_with_the_field_named() {
    let yaml = workflow(
        "secret",
        "steps:\n- run:\n    env:\n    - name: TOKEN\n      valueFrom: {secretKeyRef: {name: api, key: token}}\n    shell: echo",
    );
    match build(&yaml, ExecutorKind::Local) {
        Err(Failure::Plan(error)) => {
            assert!(
                error
                    .to_string()
                    .contains("spec.steps[0].run.env[0].valueFrom"),
                "{error}"
            )
        }
        _ => panic!("valueFrom must be refused locally"),
    }
    assert!(build(&yaml, ExecutorKind::Kubernetes).is_ok());
}

#[test]
fn a_retry_across_images_is_refused_with_the_step_and_images_named() {
    let result = build(
        &workflow(
            "split-retry",
            "steps:\n- retry: {count: 2}\n  steps:\n  - run: {image: 'a:1', shell: echo a}\n  - run: {image: 'b:1', shell: echo b}",
        ),
        ExecutorKind::Kubernetes,
    );
    match result {
        Err(Failure::Manifest(error)) => {
            let text = error.to_string();
            assert!(text.contains("step 1") && text.contains("retry"), "{text}");
            assert!(text.contains("a:1") && text.contains("b:1"), "{text}");
        }
        _ => panic!("a retry split across containers must be refused"),
    }
}

#[test]
fn a_value_that_does_not_fit_its_kubernetes_type_names_the_field() {
    let result = build(
        &workflow(
            "bad-toleration",
            "pod:\n  tolerations:\n  - {key: a, tolerationSeconds: soon}\nsteps:\n- shell: echo",
        ),
        ExecutorKind::Kubernetes,
    );
    match result {
        Err(Failure::Manifest(error)) => {
            assert!(
                error.to_string().starts_with("spec.pod.tolerations[0]:"),
                "{error}"
            )
        }
        _ => panic!("a bad toleration must be refused"),
    }
}

#[test]
fn a_configmap_over_one_mebibyte_is_refused_naming_the_big_files() {
    // A workflow file is at most 1 MiB, so only a unit built some other way (a future template
    // expansion, say) can get here: build one directly.
    let yaml = workflow(
        "big",
        "content:\n  files:\n  - {path: a.txt, content: a}\n  - {path: b.txt, content: b}\nsteps:\n- shell: echo",
    );
    let parsed = spec::parse(&yaml).unwrap();
    let plan = plan::plan(
        &parsed[0].workflow,
        &BTreeMap::new(),
        ExecutionVars {
            executor: ExecutorKind::Kubernetes,
            ..ExecutionVars::new("01JD3QXAMPLE")
        },
    )
    .unwrap();
    let mut unit = plan.into_unit("01JD3QXAMPLE", PathBuf::new(), PathBuf::new());
    unit.files[0].content = "x".repeat(700 * 1024);
    unit.files[1].content = "y".repeat(400 * 1024);
    let error = manifest::build(&unit, &options(), "n").unwrap_err();
    let text = error.to_string();
    assert!(text.contains("over Kubernetes' limit of 1048576"), "{text}");
    assert!(
        text.contains("/data/a.txt (716800 bytes), /data/b.txt (409600 bytes)"),
        "{text}"
    );
}

#[test]
fn names_are_dns_labels_and_stable() {
    assert_eq!(
        manifest::object_name("01JD3QXAMPLE", ""),
        "tl-01jd3qxample-main"
    );
    assert_eq!(
        manifest::object_name("01JD3QXAMPLE", "2/shard-3"),
        "tl-01jd3qxample-2-shard-3"
    );
    assert!(manifest::object_name(&"A".repeat(80), "x").len() <= 63);
    assert_eq!(manifest::label_value("my workflow/v2!"), "my_workflow_v2");
}
