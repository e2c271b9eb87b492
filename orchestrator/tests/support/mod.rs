//! Runs workflows through the real orchestrator, local executor and SQLite store in a temp dir.

#![allow(dead_code)]

use std::time::Duration;

use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::execution::{ExecutionRecord, StepRecord, StepStatus};
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_orchestrator::run::OrchestratorConfig;
#[path = "workflows.rs"]
mod workflows;
// Each test that includes this module uses some of them.
#[allow(unused_imports)]
pub use workflows::{process_is_gone, save, start, workflow};

pub struct Finished {
    pub orchestrator: Orchestrator,
    pub record: ExecutionRecord,
    pub steps: Vec<StepRecord>,
    pub dir: tempfile::TempDir,
}

impl Finished {
    pub fn step(&self, path: &str) -> &StepRecord {
        self.steps
            .iter()
            .find(|step| step.path == path)
            .unwrap_or_else(|| panic!("no step {path} in {:#?}", self.steps))
    }

    pub fn status(&self, path: &str) -> StepStatus {
        self.step(path).status
    }

    /// The whole log of a step, one string per line.
    pub fn log(&self, path: &str) -> Vec<String> {
        let reader = self
            .orchestrator
            .logs()
            .reader(&self.record.id, path)
            .unwrap_or_else(|error| panic!("no log for step {path}: {error}"));
        reader
            .lines(1..reader.line_count() + 1)
            .expect("read log")
            .into_iter()
            .map(|line| line.text)
            .collect()
    }

    /// How the steps saw their workspace: `/data`, or its host path where the sandbox rewrites
    /// `/data` (no namespaces on this machine).
    pub fn data_path(&self) -> String {
        match testloop_orchestrator::executor::sandbox::resolved_mode(SandboxMode::Auto) {
            SandboxMode::None => self
                .dir
                .path()
                .join("workspaces")
                .join(&self.record.id)
                .display()
                .to_string(),
            _ => "/data".to_owned(),
        }
    }

    /// The step's output without testloop's own `[testloop]` notes.
    pub fn output(&self, path: &str) -> Vec<String> {
        self.log(path)
            .into_iter()
            .filter(|line| !line.starts_with("[testloop]"))
            .collect()
    }
}

pub fn open(dir: &tempfile::TempDir, sandbox: SandboxMode) -> Orchestrator {
    Orchestrator::open(OrchestratorConfig::local(dir.path().to_path_buf(), sandbox))
        .expect("open orchestrator")
}

pub async fn run_with(yaml: &str, config: &[(&str, &str)], sandbox: SandboxMode) -> Finished {
    let dir = tempfile::tempdir().expect("tempdir");
    let orchestrator = open(&dir, sandbox);
    let name = save(&orchestrator, yaml);
    let handle = start(&orchestrator, &name, config).expect("start");
    let record = tokio::time::timeout(Duration::from_secs(120), handle.done)
        .await
        .expect("execution finished in time")
        .expect("execution task");
    let (record, steps) = orchestrator.execution(&record.id).expect("read back");
    Finished {
        orchestrator,
        record,
        steps,
        dir,
    }
}

pub async fn run(yaml: &str) -> Finished {
    run_with(yaml, &[], SandboxMode::Auto).await
}
