//! The runner inside a unit's pod, as the real binary runs it, without Kubernetes: every path of
//! the pod is a temporary directory (`TESTLOOP_POD_DIR`, `TESTLOOP_PLAN_DIR`, `TESTLOOP_WORKSPACE`),
//! the containers run one after the other as the kubelet would start them, and their output is
//! read back with the server's decoder.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use testloop_orchestrator::execution::{StepRecord, StepStatus};
use testloop_orchestrator::executor::kubernetes::podplan::{
    ContainerPlan, PLAN_KEY, PodPlan, file_key,
};
use testloop_orchestrator::executor::kubernetes::protocol::{Decoded, Decoder, Event};
use testloop_orchestrator::executor::local::LocalExecutor;
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_orchestrator::executor::{
    Executor, PlannedStep, StepOutput, Unit, UnitOutcome, UnitSink,
};
use testloop_orchestrator::logs::{self, LogStore};
use testloop_orchestrator::plan::{ExecutionVars, plan};
use testloop_orchestrator::spec;
use testloop_tests::testloop_bin;

const NONCE: &str = "5eed5eed5eed5eed";
const EXECUTION: &str = "01TESTPODRUNNER";

fn workflow(spec_body: &str) -> String {
    let mut yaml = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: pod\nspec:\n".to_owned();
    for line in spec_body.lines() {
        yaml.push_str("  ");
        yaml.push_str(line);
        yaml.push('\n');
    }
    yaml
}

/// The unit the planner makes of `spec_body`, as the local executor would get it.
fn unit(spec_body: &str, workspace: &Path, artifacts: &Path) -> Unit {
    let parsed = spec::parse(&workflow(spec_body)).expect("a valid workflow");
    let planned = plan(
        &parsed[0].workflow,
        &BTreeMap::new(),
        ExecutionVars::new(EXECUTION),
    )
    .expect("a plan");
    Unit {
        execution_id: EXECUTION.to_owned(),
        path: String::new(),
        workspace: workspace.to_path_buf(),
        artifacts_dir: artifacts.to_path_buf(),
        files: planned.files,
        steps: planned.steps,
        deadline: planned.deadline,
        variables: planned.variables,
        pod: planned.pod,
    }
}

/// The paths of the steps with an action, in walk order.
fn action_paths(steps: &[PlannedStep], paths: &mut Vec<String>) {
    for step in steps {
        if step.action.is_some() {
            paths.push(step.path.clone());
        }
        action_paths(&step.children, paths);
    }
}

/// A pod's volumes in a temporary directory.
struct Pod {
    dir: tempfile::TempDir,
    containers: usize,
}

impl Pod {
    /// A pod for `spec_body`, its actions split into containers at the given step paths (each
    /// starts a container); no split: one container.
    fn new(spec_body: &str, splits: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut unit = unit(
            spec_body,
            Path::new("/data"),
            Path::new("/.testloop/artifacts"),
        );
        let mut actions = Vec::new();
        action_paths(&unit.steps, &mut actions);
        let mut containers: Vec<ContainerPlan> = Vec::new();
        for path in actions {
            if containers.is_empty() || splits.contains(&path.as_str()) {
                containers.push(ContainerPlan {
                    name: format!("steps-{}", containers.len()),
                    steps: Vec::new(),
                });
            }
            containers.last_mut().unwrap().steps.push(path);
        }
        let plan_dir = dir.path().join("plan");
        std::fs::create_dir_all(&plan_dir).unwrap();
        for (index, file) in unit.files.iter_mut().enumerate() {
            std::fs::write(plan_dir.join(file_key(index)), &file.content).unwrap();
            file.content.clear();
        }
        let count = containers.len();
        let plan = PodPlan {
            nonce: NONCE.to_owned(),
            unit,
            containers,
        };
        std::fs::write(plan_dir.join(PLAN_KEY), serde_json::to_vec(&plan).unwrap()).unwrap();
        Self {
            dir,
            containers: count,
        }
    }

    fn pod_dir(&self) -> PathBuf {
        self.dir.path().join("pod")
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(testloop_bin());
        command
            .args(args)
            .env("TESTLOOP_POD_DIR", self.pod_dir())
            .env("TESTLOOP_PLAN_DIR", self.dir.path().join("plan"))
            .env("TESTLOOP_WORKSPACE", self.workspace())
            .env_remove("TESTLOOP_LOG")
            .stdin(Stdio::null());
        command
    }

    fn init(&self) -> Report {
        Report::of(&mut self.command(&["pod-init"]))
    }

    fn run(&self, container: usize) -> Report {
        Report::of(&mut self.command(&["pod-run", "--container", &container.to_string()]))
    }

    /// pod-init, then every container in turn; each must end with `Done`.
    fn run_all(&self) -> Vec<Report> {
        let init = self.init();
        assert_eq!(init.code, Some(0), "{init:?}");
        assert!(init.done().is_some(), "{init:?}");
        (0..self.containers)
            .map(|container| {
                let report = self.run(container);
                assert_eq!(report.code, Some(0), "container {container}: {report:?}");
                assert!(report.done().is_some(), "container {container}: {report:?}");
                assert!(
                    report.stray.is_empty() && report.malformed.is_empty(),
                    "{report:?}"
                );
                assert_eq!(report.stderr, "", "the runner is quiet");
                report
            })
            .collect()
    }
}

/// What one container printed, decoded.
#[derive(Default)]
struct Report {
    code: Option<i32>,
    events: Vec<Event>,
    output: BTreeMap<String, Vec<Vec<u8>>>,
    stray: Vec<Vec<u8>>,
    malformed: Vec<String>,
    stderr: String,
    elapsed: Duration,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "exit {:?} after {:?}", self.code, self.elapsed)?;
        for event in &self.events {
            writeln!(f, "  {event:?}")?;
        }
        for (step, lines) in &self.output {
            for line in lines {
                writeln!(f, "  [{step}] {}", String::from_utf8_lossy(line))?;
            }
        }
        writeln!(
            f,
            "  stray: {:?}\n  malformed: {:?}",
            self.stray, self.malformed
        )?;
        write!(f, "--- stderr\n{}", self.stderr)
    }
}

impl Report {
    fn of(command: &mut Command) -> Self {
        let started = Instant::now();
        let output = command.output().expect("run testloop");
        let mut report = Self::decode(&output.stdout);
        report.code = output.status.code();
        report.stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        report.elapsed = started.elapsed();
        report
    }

    fn decode(stdout: &[u8]) -> Self {
        let mut report = Self::default();
        let mut decoder = Decoder::new(NONCE);
        let body = stdout.strip_suffix(b"\n").unwrap_or(stdout);
        if body.is_empty() {
            return report;
        }
        for line in body.split(|&b| b == b'\n') {
            report.take(decoder.decode(line));
        }
        report
    }

    fn take(&mut self, decoded: Decoded<'_>) {
        match decoded {
            Decoded::Event(Event::Log { .. }) => {}
            Decoded::Event(event) => self.events.push(event),
            Decoded::Output {
                step: Some(step),
                line,
            } => self.output.entry(step).or_default().push(line.to_vec()),
            Decoded::Output { step: None, line } => self.stray.push(line.to_vec()),
            Decoded::Malformed { reason } => self.malformed.push(reason),
        }
    }

    fn done(&self) -> Option<UnitOutcome> {
        self.events.iter().find_map(|event| match event {
            Event::Done { outcome } => Some(*outcome),
            _ => None,
        })
    }

    fn finished(&self) -> impl Iterator<Item = &StepRecord> {
        self.events.iter().filter_map(|event| match event {
            Event::Finished { record } => Some(record),
            _ => None,
        })
    }

    fn started(&self) -> impl Iterator<Item = &StepRecord> {
        self.events.iter().filter_map(|event| match event {
            Event::Started { record } => Some(record),
            _ => None,
        })
    }

    fn errors(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::Error { message } => Some(message.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// What a unit did, step by step, whoever reported it.
#[derive(Debug, PartialEq)]
struct Results {
    /// Path → (status, exit code, attempts, message).
    steps: BTreeMap<String, (StepStatus, Option<i32>, u32, Option<String>)>,
    /// Path → output lines (lossy text, as the log store shows them).
    output: BTreeMap<String, Vec<String>>,
}

fn key(record: &StepRecord) -> (StepStatus, Option<i32>, u32, Option<String>) {
    (
        record.status,
        record.exit_code,
        record.attempts,
        record.message.clone(),
    )
}

/// The results of a pod's containers together, checking that each step was reported finished
/// exactly once.
fn pod_results(reports: &[Report]) -> Results {
    let mut steps = BTreeMap::new();
    let mut output: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (container, report) in reports.iter().enumerate() {
        for record in report.finished() {
            let before = steps.insert(record.path.clone(), key(record));
            assert!(
                before.is_none(),
                "step {} finished twice (again in container {container}): {reports:#?}",
                record.path
            );
        }
        for (step, lines) in &report.output {
            output.entry(step.clone()).or_default().extend(
                lines
                    .iter()
                    .map(|line| String::from_utf8_lossy(line).into_owned()),
            );
        }
    }
    Results { steps, output }
}

/// The same unit through the local executor (sandbox `none`, as in the pod).
fn local_results(spec_body: &str) -> (Results, UnitOutcome) {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit(
        spec_body,
        &dir.path().join("data"),
        &dir.path().join("artifacts"),
    );
    let sink = Recording {
        logs: LogStore::new(dir.path().join("logs")),
        finished: std::sync::Mutex::new(Vec::new()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime
        .block_on(LocalExecutor::new(SandboxMode::None).run(
            unit,
            &sink,
            tokio_util::sync::CancellationToken::new(),
        ))
        .expect("the local executor runs the unit");
    let mut steps = BTreeMap::new();
    for record in sink.finished.lock().unwrap().iter() {
        steps.insert(record.path.clone(), key(record));
    }
    let mut output = BTreeMap::new();
    for step in sink.logs.steps(EXECUTION).unwrap() {
        let reader = sink.logs.reader(EXECUTION, &step).unwrap();
        let lines = reader.lines(1..reader.line_count() + 1).unwrap();
        output.insert(step, lines.into_iter().map(|line| line.text).collect());
    }
    (Results { steps, output }, outcome)
}

struct Recording {
    logs: LogStore,
    finished: std::sync::Mutex<Vec<StepRecord>>,
}

impl UnitSink for Recording {
    fn log(&self, step_path: &str) -> logs::Result<Box<dyn StepOutput>> {
        Ok(Box::new(self.logs.writer(EXECUTION, step_path)?))
    }
    fn step_started(&self, _record: &StepRecord) {}
    fn step_finished(&self, record: &StepRecord) {
        self.finished.lock().unwrap().push(record.clone());
    }
}

/// Every control a step has, and nesting, conditions and `after`.
const CONTROLS: &str = r#"steps:
- name: retried
  retry:
    count: 3
  shell: |
    n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n
    echo "attempt $n"
    [ "$n" -ge 3 ]
- name: optional
  optional: true
  shell: echo optional; exit 3
- name: negative
  negative: true
  delay: 300ms
  shell: echo negative; exit 2
- name: group
  steps:
  - shell: echo in-group
  - name: times out
    timeout: 1s
    shell: echo sleeping; sleep 5
  - name: skipped after the timeout
    shell: echo never
- name: on failure
  condition: failed
  shell: echo on-failure
- name: not run
  shell: echo never
after:
- name: cleanup
  shell: printf 'no newline at the end'
"#;

#[test]
fn one_container_runs_every_control_as_the_local_executor_does() {
    let pod = Pod::new(CONTROLS, &[]);
    let reports = pod.run_all();
    let results = pod_results(&reports);
    let (local, local_outcome) = local_results(CONTROLS);
    assert_eq!(results, local, "{reports:#?}");
    assert_eq!(reports[0].done(), Some(local_outcome));
    assert_eq!(local_outcome, UnitOutcome::Failed);

    let step = |path: &str| &results.steps[path];
    assert_eq!(step("1"), &(StepStatus::Passed, Some(0), 3, None));
    assert_eq!(step("2").0, StepStatus::Failed);
    assert_eq!(step("3").0, StepStatus::Passed);
    assert_eq!(step("3").1, Some(2));
    assert_eq!(step("4").0, StepStatus::Failed);
    assert_eq!(
        step("4/2"),
        &(
            StepStatus::TimedOut,
            None,
            1,
            Some("timed out after 1.0s".to_owned())
        )
    );
    assert_eq!(step("4/3").0, StepStatus::Skipped);
    assert_eq!(step("5").0, StepStatus::Passed);
    assert_eq!(step("6").0, StepStatus::Skipped);
    assert_eq!(step("after/1").0, StepStatus::Passed);
    assert_eq!(
        results.output["1"].first().map(String::as_str),
        Some("attempt 1")
    );
    assert!(results.output["1"].contains(&"attempt 3".to_owned()));
    assert_eq!(results.output["4/1"], vec!["in-group"]);
    assert_eq!(results.output["after/1"], vec!["no newline at the end"]);
    assert!(!results.output.contains_key("6"));
    // Attempts are announced as they start.
    let attempts: Vec<u32> = reports[0]
        .started()
        .filter(|record| record.path == "1")
        .map(|record| record.attempts)
        .collect();
    assert_eq!(attempts, vec![1, 2, 3]);
}

#[test]
fn a_unit_split_into_containers_reports_each_step_once_with_the_same_results() {
    let (local, local_outcome) = local_results(CONTROLS);
    // Splits inside a group, before a skipped step, before steps that only a failure runs, and
    // one container whose only step is skipped.
    let splits: [&[&str]; 3] = [&["3", "4/2"], &["2", "4/3", "5", "after/1"], &["4/3", "6"]];
    for split in splits {
        let pod = Pod::new(CONTROLS, split);
        assert_eq!(pod.containers, split.len() + 1);
        let reports = pod.run_all();
        assert_eq!(
            pod_results(&reports),
            local,
            "split at {split:?}: {reports:#?}"
        );
        assert_eq!(reports.last().unwrap().done(), Some(local_outcome));
        // Every step, groups included, is reported once; a started step ends in the same
        // container or a later one.
        let mut started_in: BTreeMap<String, usize> = BTreeMap::new();
        for (container, report) in reports.iter().enumerate() {
            for record in report.started() {
                let first = *started_in.entry(record.path.clone()).or_insert(container);
                assert_eq!(
                    first, container,
                    "{} started in two containers",
                    record.path
                );
            }
            for record in report.finished() {
                if let Some(&start) = started_in.get(&record.path) {
                    assert!(start <= container);
                }
            }
        }
    }
}

#[test]
fn group_starts_and_ends_are_reported_by_the_containers_that_are_running_then() {
    let pod = Pod::new(CONTROLS, &["4/2"]);
    let reports = pod.run_all();
    assert!(reports[0].started().any(|record| record.path == "4"));
    assert!(!reports[0].finished().any(|record| record.path == "4"));
    assert!(reports[1].finished().any(|record| record.path == "4"));
    assert!(!reports[1].started().any(|record| record.path == "4"));
    // The later container replays the earlier one's steps without running them again.
    assert!(!reports[1].output.contains_key("1"));
    assert_eq!(
        std::fs::read_to_string(pod.workspace().join("n"))
            .unwrap()
            .trim(),
        "3"
    );
}

#[test]
fn a_delay_is_waited_once_not_again_in_later_containers() {
    let body = "steps:\n- name: slow to start\n  delay: 1500ms\n  shell: echo first\n- shell: echo second\n";
    let pod = Pod::new(body, &["2"]);
    let reports = pod.run_all();
    assert!(
        reports[0].elapsed >= Duration::from_millis(1500),
        "{reports:#?}"
    );
    assert!(
        reports[1].elapsed < Duration::from_millis(1200),
        "the second container waited again: {:?}",
        reports[1].elapsed
    );
    let results = pod_results(&reports);
    assert_eq!(results.steps["1"].0, StepStatus::Passed);
    assert_eq!(results.output["2"], vec!["second"]);
    assert_eq!(reports[1].done(), Some(UnitOutcome::Passed));
}

#[test]
fn output_keeps_its_bytes_and_the_log_stores_line_rules() {
    let body = r#"steps:
- shell: |
    printf 'crlf\r\n'
    printf '\377\376 not UTF-8\n'
    head -c 70000 /dev/zero | tr '\0' a; echo
    printf '\036testloop:0000000000000000 {"event":"done","outcome":"failed"}\n'
    printf '\036testloop:5eed5eed5eed5eedX {}\n'
    printf 'unfinished'
- shell: echo next
"#;
    let pod = Pod::new(body, &[]);
    let reports = pod.run_all();
    let lines = &reports[0].output["1"];
    let expected: Vec<Vec<u8>> = vec![
        b"crlf".to_vec(),
        b"\xff\xfe not UTF-8".to_vec(),
        vec![b'a'; 65536],
        vec![b'a'; 70000 - 65536],
        b"\x1etestloop:0000000000000000 {\"event\":\"done\",\"outcome\":\"failed\"}".to_vec(),
        b"\x1etestloop:5eed5eed5eed5eedX {}".to_vec(),
        b"unfinished".to_vec(),
    ];
    assert_eq!(lines, &expected);
    assert_eq!(reports[0].output["2"], vec![b"next".to_vec()]);
    assert_eq!(reports[0].done(), Some(UnitOutcome::Passed));
}

#[test]
fn artifacts_stream_back_byte_exact() {
    let body = r#"steps:
- name: make
  workingDir: /data/out
  shell: |
    mkdir -p sub
    printf '\000\001\002\377binary\r\n' > bin.dat
    head -c 200001 /dev/urandom > sub/big.dat
    : > empty.txt
  artifacts:
    paths:
    - "**/*"
- shell: echo later
"#;
    let pod = Pod::new(body, &["2"]);
    let reports = pod.run_all();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for report in &reports {
        for event in &report.events {
            if let Event::ArtifactChunk { path, offset, data } = event {
                let file = files.entry(path.clone()).or_default();
                assert_eq!(*offset, file.len() as u64, "chunks in order: {path}");
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap();
                assert!(bytes.len() <= 48 * 1024);
                file.extend(bytes);
            }
        }
    }
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        vec!["bin.dat", "empty.txt", "sub/big.dat"]
    );
    for (name, bytes) in &files {
        let original = std::fs::read(pod.workspace().join("out").join(name)).unwrap();
        assert!(&original == bytes, "{name} differs");
    }
    // Sent by the container that collected them, and only once.
    assert!(
        reports[1]
            .events
            .iter()
            .all(|event| !matches!(event, Event::ArtifactChunk { .. }))
    );
    let results = pod_results(&reports);
    assert_eq!(results.steps["1"].0, StepStatus::Passed);
    assert!(results.output["1"][0].contains("3 file(s)"), "{results:?}");
}

#[test]
fn sigterm_aborts_the_running_step_promptly() {
    let body = "steps:\n- shell: echo ready; sleep 30\n- shell: echo never\n";
    let pod = Pod::new(body, &[]);
    assert_eq!(pod.init().code, Some(0));
    let mut child = pod
        .command(&["pod-run", "--container", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut report = Report::default();
    let mut decoder = Decoder::new(NONCE);
    let mut line = Vec::new();
    // Read until the step has printed, so that it is surely running.
    loop {
        line.clear();
        assert!(
            stdout.read_until(b'\n', &mut line).unwrap() > 0,
            "output ended early"
        );
        let text = line.strip_suffix(b"\n").unwrap_or(&line).to_vec();
        report.take(decoder.decode(&text));
        if report
            .output
            .get("1")
            .is_some_and(|lines| !lines.is_empty())
        {
            break;
        }
    }
    let signalled = Instant::now();
    // SAFETY: signalling the child we started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(status.code(), Some(0));
    for line in rest.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        report.take(decoder.decode(line));
    }
    let finished: BTreeMap<&str, &StepRecord> = report
        .finished()
        .map(|record| (record.path.as_str(), record))
        .collect();
    assert_eq!(finished["1"].status, StepStatus::Aborted, "{report:?}");
    assert_eq!(finished["2"].status, StepStatus::Skipped);
    assert_eq!(report.done(), Some(UnitOutcome::Aborted));
}

#[test]
fn init_copies_the_runner_and_the_plan_and_writes_content_files_with_their_modes() {
    let body = r#"content:
  files:
  - path: /data/bin/run.sh
    content: |
      #!/bin/sh
      echo run
    mode: "0755"
  - path: /data/conf/app.conf
    content: "secret=1"
    mode: "0600"
steps:
- shell: /data/bin/run.sh; cat /data/conf/app.conf
"#;
    let pod = Pod::new(body, &[]);
    let reports = pod.run_all();
    let mode = |path: PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(pod.workspace().join("bin/run.sh")), 0o755);
    assert_eq!(mode(pod.workspace().join("conf/app.conf")), 0o600);
    assert_eq!(
        std::fs::read_to_string(pod.workspace().join("conf/app.conf")).unwrap(),
        "secret=1"
    );
    assert_eq!(mode(pod.pod_dir().join("bin/testloop")), 0o755);
    assert_eq!(
        std::fs::read(pod.pod_dir().join("bin/testloop"))
            .unwrap()
            .len(),
        std::fs::read(testloop_bin()).unwrap().len()
    );
    assert!(pod.pod_dir().join("plan.json").is_file());
    assert_eq!(pod_results(&reports).output["1"], vec!["run", "secret=1"]);
}

#[test]
fn init_refuses_a_content_file_outside_the_workspace() {
    let body = r#"content:
  files:
  - path: /etc/testloop-pod-runner-test
    content: "no"
steps:
- shell: "true"
"#;
    let pod = Pod::new(body, &[]);
    let init = pod.init();
    assert_ne!(init.code, Some(0), "{init:?}");
    let errors = init.errors();
    assert_eq!(errors.len(), 1, "{init:?}");
    assert!(
        errors[0].contains("/etc/testloop-pod-runner-test"),
        "{errors:?}"
    );
    assert!(errors[0].contains("/data"), "{errors:?}");
    assert!(init.done().is_none());
    assert!(!Path::new("/etc/testloop-pod-runner-test").exists());
}

#[test]
fn a_container_without_a_plan_fails_and_says_why() {
    let pod = Pod::new("steps:\n- shell: \"true\"\n", &[]);
    // No init: the plan was never copied into the pod's volume.
    let report = pod.run(0);
    assert_ne!(report.code, Some(0));
    assert!(report.stderr.contains("plan.json"), "{report:?}");
}

#[test]
fn init_refuses_a_plan_that_splits_a_retried_step_across_containers() {
    let body = "steps:\n- name: retried group\n  retry:\n    count: 1\n  steps:\n  - shell: echo a\n  - shell: echo b\n";
    let pod = Pod::new(body, &["1/2"]);
    let init = pod.init();
    assert_ne!(init.code, Some(0), "{init:?}");
    let errors = init.errors();
    assert!(
        errors.len() == 1 && errors[0].contains("retried"),
        "{init:?}"
    );
}

#[test]
fn as_pid_1_the_runner_reaps_what_steps_leave_behind() {
    let body = "steps:\n- shell: sleep 30 >/dev/null 2>&1 & echo left\n- shell: sleep 1\n- shell: echo zombies $(cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == \"Z\"' | wc -l)\n";
    let pod = Pod::new(body, &[]);
    assert_eq!(pod.init().code, Some(0));
    // A PID namespace of its own makes the runner PID 1, as in its container.
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status();
    if !matches!(probe, Ok(status) if status.success()) {
        eprintln!("skipped: cannot make a PID namespace here (needs root and unshare)");
        return;
    }
    let run = pod.command(&["pod-run", "--container", "0"]);
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(run.get_program())
        .args(run.get_args());
    for (name, value) in run.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let report = Report::of(&mut command);
    assert_eq!(report.done(), Some(UnitOutcome::Passed), "{report:?}");
    assert_eq!(
        report.output["3"],
        vec![b"zombies 0".to_vec()],
        "{report:?}"
    );
}
