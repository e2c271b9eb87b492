//! Saving, starting and writing test workflows: shared by the orchestrator's tests
//! (`support/mod.rs`, `manifest.rs`) and the end-to-end suites
//! (`tests/tests/semantics/backend.rs`), which include this file.

// Each includer uses some of these.
#![allow(dead_code)]

use std::collections::BTreeMap;

use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::execution::Trigger;
use testloop_orchestrator::run::{RunHandle, RunRequest};
use testloop_orchestrator::spec;

/// Saves the (first) workflow of `yaml`; its name.
pub fn save(orchestrator: &Orchestrator, yaml: &str) -> String {
    let parsed = spec::parse(yaml).unwrap_or_else(|problems| {
        panic!(
            "invalid test workflow:\n{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let first = parsed.into_iter().next().expect("one workflow");
    orchestrator.save_workflow(&first).expect("save workflow");
    first.workflow.metadata.name
}

/// Starts the saved workflow `name` with `config`.
pub fn start(
    orchestrator: &Orchestrator,
    name: &str,
    config: &[(&str, &str)],
) -> Result<RunHandle, testloop_orchestrator::run::Error> {
    orchestrator.start(RunRequest {
        workflow: name.to_owned(),
        config: config
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect::<BTreeMap<_, _>>(),
        trigger: Trigger::Cli,
        executor: None,
    })
}

/// A workflow document around the given `spec:` body (indented by two spaces).
pub fn workflow(name: &str, spec_body: &str) -> String {
    let mut yaml = format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: {name}\nspec:\n"
    );
    for line in spec_body.lines() {
        yaml.push_str("  ");
        yaml.push_str(line);
        yaml.push('\n');
    }
    yaml
}

/// Whether a process is gone (or a zombie waiting for a reaper that never comes).
pub fn process_is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}
