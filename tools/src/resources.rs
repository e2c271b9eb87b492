//! MCP resources: workflows, executions and step logs addressed by `testloop://` URIs.
//!
//! - `testloop://workflows/{name}`: the latest saved YAML of a workflow.
//! - `testloop://executions/{id}`: an execution and its step tree, as JSON.
//! - `testloop://executions/{id}/logs/{step}`: the last lines of a step's log (`step` is a step path
//!   such as `2/1`), capped like `get_logs`.
//!
//! Listing shows the saved workflows and the most recent executions; step logs are reached through
//! the URI template.

use std::fmt;

use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::store::ExecutionFilter;

/// The URI scheme of every testloop resource.
pub const SCHEME: &str = "testloop://";
/// Executions listed as resources (the most recent).
pub const LISTED_EXECUTIONS: usize = 50;
/// Lines of a step log a resource read returns (its tail).
pub const LOG_RESOURCE_LINES: u64 = 200;
/// Bytes of a step log a resource read returns at most.
pub const LOG_RESOURCE_BYTES: usize = 16 * 1024;

/// What a `testloop://` URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceUri {
    Workflow(String),
    Execution(String),
    StepLog { execution: String, step: String },
}

/// Why a resource cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// The URI is not one of testloop's forms.
    #[error(
        "`{0}` is not a testloop resource: expected testloop://workflows/NAME, \
         testloop://executions/ID or testloop://executions/ID/logs/STEP"
    )]
    BadUri(String),
    /// The URI is well formed but names nothing that exists.
    #[error("{0}")]
    NotFound(String),
}

impl ResourceUri {
    pub fn parse(uri: &str) -> Result<Self, ResourceError> {
        let bad = || ResourceError::BadUri(uri.to_owned());
        let rest = uri.strip_prefix(SCHEME).ok_or_else(bad)?;
        if let Some(name) = rest.strip_prefix("workflows/") {
            if name.is_empty() || name.contains('/') {
                return Err(bad());
            }
            return Ok(Self::Workflow(name.to_owned()));
        }
        let rest = rest.strip_prefix("executions/").ok_or_else(bad)?;
        match rest.split_once('/') {
            None if !rest.is_empty() => Ok(Self::Execution(rest.to_owned())),
            Some((execution, step)) => match step.strip_prefix("logs/") {
                Some(step) if !execution.is_empty() && !step.is_empty() => Ok(Self::StepLog {
                    execution: execution.to_owned(),
                    step: step.to_owned(),
                }),
                _ => Err(bad()),
            },
            None => Err(bad()),
        }
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Workflow(name) => write!(f, "{SCHEME}workflows/{name}"),
            Self::Execution(id) => write!(f, "{SCHEME}executions/{id}"),
            Self::StepLog { execution, step } => {
                write!(f, "{SCHEME}executions/{execution}/logs/{step}")
            }
        }
    }
}

/// A listed resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedResource {
    pub uri: String,
    pub name: String,
    pub description: String,
    pub mime_type: &'static str,
}

/// A resource's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceText {
    pub uri: String,
    pub mime_type: &'static str,
    pub text: String,
}

/// The saved workflows and the most recent executions.
pub fn list(orchestrator: &Orchestrator) -> Result<Vec<ListedResource>, String> {
    let mut listed = Vec::new();
    for workflow in orchestrator
        .store()
        .list_workflows()
        .map_err(|error| error.to_string())?
    {
        listed.push(ListedResource {
            uri: ResourceUri::Workflow(workflow.name.clone()).to_string(),
            description: workflow.description.clone().unwrap_or_else(|| {
                format!(
                    "Workflow {} (version {})",
                    workflow.name, workflow.latest_version
                )
            }),
            name: workflow.name,
            mime_type: "application/yaml",
        });
    }
    let executions = orchestrator
        .executions(&ExecutionFilter {
            limit: LISTED_EXECUTIONS,
            ..ExecutionFilter::default()
        })
        .map_err(|error| error.to_string())?;
    for execution in executions {
        listed.push(ListedResource {
            uri: ResourceUri::Execution(execution.id.clone()).to_string(),
            name: format!("{} {}", execution.workflow, execution.id),
            description: format!(
                "Execution of {} (version {}): {}",
                execution.workflow, execution.workflow_version, execution.status
            ),
            mime_type: "application/json",
        });
    }
    Ok(listed)
}

/// Reads the resource at `uri`.
pub fn read(orchestrator: &Orchestrator, uri: &str) -> Result<ResourceText, ResourceError> {
    let parsed = ResourceUri::parse(uri)?;
    match &parsed {
        ResourceUri::Workflow(name) => {
            let stored = orchestrator
                .store()
                .get_workflow(name, None)
                .map_err(|error| ResourceError::NotFound(error.to_string()))?
                .ok_or_else(|| {
                    ResourceError::NotFound(format!(
                        "no workflow named `{name}`: list_workflows shows the saved ones"
                    ))
                })?;
            Ok(ResourceText {
                uri: parsed.to_string(),
                mime_type: "application/yaml",
                text: stored.yaml,
            })
        }
        ResourceUri::Execution(id) => {
            let (record, steps) = orchestrator.execution(id).map_err(|error| {
                ResourceError::NotFound(format!("{error}: list_executions shows recent ones"))
            })?;
            let text = serde_json::to_string_pretty(&serde_json::json!({
                "id": record.id,
                "workflow": record.workflow,
                "workflow_version": record.workflow_version,
                "status": record.status,
                "trigger": record.trigger,
                "created_at": record.created_at,
                "started_at": record.started_at,
                "finished_at": record.finished_at,
                "error": record.error,
                "rerun_of": record.rerun_of,
                "steps": steps,
            }))
            .map_err(|error| ResourceError::NotFound(error.to_string()))?;
            Ok(ResourceText {
                uri: ResourceUri::Execution(record.id).to_string(),
                mime_type: "application/json",
                text,
            })
        }
        ResourceUri::StepLog { execution, step } => {
            let (record, _) = orchestrator.execution(execution).map_err(|error| {
                ResourceError::NotFound(format!("{error}: list_executions shows recent ones"))
            })?;
            let reader = orchestrator
                .logs()
                .reader(&record.id, step)
                .map_err(|error| ResourceError::NotFound(error.to_string()))?;
            let total = reader.line_count();
            let lines = reader
                .tail(LOG_RESOURCE_LINES)
                .map_err(|error| ResourceError::NotFound(error.to_string()))?;
            let mut text = String::new();
            let first = lines.first().map_or(1, |line| line.number);
            if first > 1 {
                text.push_str(&format!(
                    "[testloop] showing lines {first}-{total} of {total}; get_logs reads the rest\n"
                ));
            }
            let mut body = String::new();
            for line in lines.iter().rev() {
                if body.len() + line.text.len() + 1 > LOG_RESOURCE_BYTES {
                    body.insert_str(
                        0,
                        &format!(
                            "[testloop] earlier lines cut at {LOG_RESOURCE_BYTES} bytes; get_logs reads them\n"
                        ),
                    );
                    break;
                }
                body.insert_str(0, &format!("{}\n", line.text));
            }
            text.push_str(&body);
            Ok(ResourceText {
                uri: ResourceUri::StepLog {
                    execution: record.id,
                    step: step.clone(),
                }
                .to_string(),
                mime_type: "text/plain",
                text,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_print_back() {
        for uri in [
            "testloop://workflows/hello",
            "testloop://executions/01ABC",
            "testloop://executions/01ABC/logs/2/1",
            "testloop://executions/01ABC/logs/after/1",
        ] {
            assert_eq!(ResourceUri::parse(uri).unwrap().to_string(), uri);
        }
        assert_eq!(
            ResourceUri::parse("testloop://executions/01ABC/logs/2/1").unwrap(),
            ResourceUri::StepLog {
                execution: "01ABC".into(),
                step: "2/1".into()
            }
        );
    }

    #[test]
    fn malformed_uris_are_refused_with_the_forms() {
        for uri in [
            "http://workflows/x",
            "testloop://workflows/",
            "testloop://workflows/a/b",
            "testloop://executions/",
            "testloop://executions/01ABC/steps/1",
            "testloop://executions/01ABC/logs/",
            "testloop://other/x",
        ] {
            let error = ResourceUri::parse(uri).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("expected testloop://workflows/NAME"),
                "{uri}: {error}"
            );
        }
    }
}
