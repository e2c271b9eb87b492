//! Workflow tools: list, read, validate, save and delete TestWorkflow definitions.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use testloop_orchestrator::executor::{Command, PlannedStep};
use testloop_orchestrator::plan;
use testloop_orchestrator::spec::{self, Problem, Workflow, model::Step};
use testloop_orchestrator::store::WorkflowSummary;
use testloop_orchestrator::summary::{MASK, cut_line};

use crate::output::{
    ConfigValue, MAX_PROBLEMS, Reply, ToolError, config_text, render_problems, rfc3339,
};
use crate::{NextCall, TestloopServer};

/// Workflows one `list_workflows` call returns when no `limit` is given.
pub const DEFAULT_WORKFLOW_PAGE: usize = 50;

/// Workflows one `list_workflows` call returns at most; larger limits are clamped.
pub const MAX_WORKFLOW_PAGE: usize = 200;

/// Characters of a command shown in a resolved plan; longer commands are cut and marked `…`.
pub const MAX_COMMAND_CHARS: usize = 500;

/// Characters of a description shown in a workflow list row.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListWorkflowsArgs {
    /// Only workflows with this label, written `key=value` (for example `team=payments`).
    #[serde(default)]
    pub label: Option<String>,
    /// Only workflows whose name or description contains this text (case-insensitive).
    #[serde(default)]
    pub search: Option<String>,
    /// The `next_cursor` of the previous page, to get the next one.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Workflows per page (default 50, at most 200).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One saved workflow (its latest version).
#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkflowRow {
    pub name: String,
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// When the latest version was saved (RFC 3339).
    pub updated_at: String,
}

/// A page of saved workflows, by name.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkflowList {
    pub workflows: Vec<WorkflowRow>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WorkflowNameArgs {
    /// The workflow's name (`metadata.name`), as list_workflows shows it.
    pub name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetWorkflowArgs {
    /// The workflow's name (`metadata.name`), as list_workflows shows it.
    pub name: String,
    /// A specific saved version (1, 2, …); default the latest.
    #[serde(default)]
    pub version: Option<u32>,
}

/// A step of a workflow, in plan numbering.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StepOutline {
    /// `1`, `2/1`, `setup/1`, `after/1`: the path get_execution and get_logs use.
    pub path: String,
    pub name: String,
}

/// A config parameter (`spec.config.<name>`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ParameterInfo {
    pub name: String,
    /// `string`, `integer`, `number` or `boolean`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether a value must be given (no default).
    pub required: bool,
    /// The default (masked when sensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    pub sensitive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The allowed values, when restricted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "scalar_list_schema")]
    pub allowed: Vec<Value>,
}

/// Parameter values are scalars; saying so keeps the output schema portable to clients that refuse
/// an unconstrained `true` schema.
fn scalar_list_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
    })
}

/// A saved workflow: its YAML and what it contains.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkflowDetail {
    pub name: String,
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// When this version was saved (RFC 3339).
    pub saved_at: String,
    pub steps: Vec<StepOutline>,
    pub config: Vec<ParameterInfo>,
    /// The YAML exactly as saved.
    pub yaml: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ValidateWorkflowArgs {
    /// TestWorkflow YAML (apiVersion testworkflows.testkube.io/v1, kind TestWorkflow); several
    /// documents separated by `---` are checked together.
    pub yaml: String,
    /// Config values to resolve the plan with, by parameter name (`{"retries": 3}`, or as
    /// text); parameters not given take their defaults.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
}

/// One thing wrong with a workflow file.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProblemInfo {
    /// 0-based YAML document index in the file.
    pub document: usize,
    /// Where in the document, as `spec.steps[2].timeout`; empty for the file as a whole.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
}

impl From<&Problem> for ProblemInfo {
    fn from(problem: &Problem) -> Self {
        Self {
            document: problem.document,
            path: problem.path.clone(),
            line: problem.line,
            column: problem.column,
            message: problem.message.clone(),
        }
    }
}

/// A step as it would run.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PlannedStepInfo {
    pub path: String,
    pub name: String,
    /// The shell script or the program and arguments; absent for a group of nested steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// When the step runs: `passed` (default), `always`, `failed`, or an expression.
    pub condition: String,
    pub optional: bool,
    pub negative: bool,
    /// Attempts after the first, when `retry` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
}

/// One workflow of the file, resolved into what would run.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ResolvedWorkflow {
    pub name: String,
    /// The config each parameter would get (given values, else defaults; sensitive masked).
    pub config: Map<String, Value>,
    /// Every step, nested steps after their parent, in run order.
    pub steps: Vec<PlannedStepInfo>,
    /// Why no plan could be made (for example a required config value not given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_error: Option<String>,
}

/// The verdict on a workflow file.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Validation {
    pub valid: bool,
    pub problems: Vec<ProblemInfo>,
    /// On success, the resolved plan of each workflow in the file.
    pub workflows: Vec<ResolvedWorkflow>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateWorkflowArgs {
    /// TestWorkflow YAML; a workflow with the same `metadata.name` is updated (a new version,
    /// the old ones kept). Several documents separated by `---` save several workflows.
    pub yaml: String,
}

/// One saved workflow.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SavedWorkflow {
    pub name: String,
    pub version: u32,
    /// Whether a new version was made (`false`: identical to the latest version).
    pub created: bool,
}

/// What create_workflow saved.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SavedWorkflows {
    pub saved: Vec<SavedWorkflow>,
}

/// What delete_workflow did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeletedWorkflow {
    pub name: String,
    pub deleted: bool,
}

#[tool_router(router = workflow_tools, vis = "pub(crate)")]
impl TestloopServer {
    /// List saved test workflows (latest version of each), by name, with description and labels.
    /// Use it to find the name to pass to run_workflow or get_workflow. Filter by a label
    /// (`key=value`) or by text in the name or description; pages through `next_cursor`.
    #[tool(
        output_schema = schema_for_output::<WorkflowList>(),
        annotations(
            title = "List workflows",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn list_workflows(
        &self,
        Parameters(args): Parameters<ListWorkflowsArgs>,
    ) -> Result<Reply<WorkflowList>, ToolError> {
        let label = match args.label.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.split_once('=').ok_or_else(|| {
                ToolError::new(format!(
                    "label filter `{text}` is not `key=value`: write it like `team=payments`"
                ))
            })?),
        };
        let search = args
            .search
            .as_deref()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty());
        let limit = args
            .limit
            .unwrap_or(DEFAULT_WORKFLOW_PAGE)
            .clamp(1, MAX_WORKFLOW_PAGE);
        let all = self
            .orchestrator
            .store()
            .list_workflows()
            .map_err(|e| ToolError::from(testloop_orchestrator::run::Error::from(e)))?;
        let matching = all.into_iter().filter(|w| {
            args.cursor.as_deref().is_none_or(|c| w.name.as_str() > c)
                && label.is_none_or(|(k, v)| {
                    w.labels
                        .get(k.trim())
                        .is_some_and(|value| value == v.trim())
                })
                && search.as_deref().is_none_or(|s| matches_search(w, s))
        });
        let mut page: Vec<WorkflowSummary> = matching.take(limit + 1).collect();
        let next_cursor = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|w| w.name.clone())
        } else {
            None
        };
        let workflows: Vec<WorkflowRow> = page
            .into_iter()
            .map(|w| WorkflowRow {
                name: w.name,
                version: w.latest_version,
                description: w
                    .description
                    .map(|d| cut_line(d.trim(), MAX_DESCRIPTION_CHARS).into_owned()),
                labels: w.labels,
                updated_at: rfc3339(w.updated_at),
            })
            .collect();

        let mut text = if workflows.is_empty() {
            "no saved workflows match; create_workflow saves one".to_owned()
        } else {
            format!("{} workflow(s):\n", workflows.len())
        };
        for w in &workflows {
            let _ = write!(text, "- {} (v{})", w.name, w.version);
            if let Some(description) = &w.description {
                let _ = write!(text, ": {description}");
            }
            if !w.labels.is_empty() {
                let labels: Vec<String> =
                    w.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = write!(text, " [{}]", labels.join(", "));
            }
            text.push('\n');
        }
        if let Some(cursor) = &next_cursor {
            let _ = write!(text, "more: list_workflows with cursor=\"{cursor}\"");
        }
        Ok(Reply::new(
            WorkflowList {
                workflows,
                next_cursor,
            },
            text.trim_end(),
        ))
    }

    /// Show a saved workflow: its YAML, version, labels, step names with their paths, and config
    /// parameters (type, default, whether required; sensitive defaults masked). Use it before
    /// run_workflow to see which config values it takes, or before editing it with
    /// create_workflow.
    #[tool(
        output_schema = schema_for_output::<WorkflowDetail>(),
        annotations(
            title = "Get a workflow",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_workflow(
        &self,
        Parameters(args): Parameters<GetWorkflowArgs>,
    ) -> Result<Reply<WorkflowDetail>, ToolError> {
        let stored = self
            .orchestrator
            .store()
            .get_workflow(&args.name, args.version)
            .map_err(|e| ToolError::from(testloop_orchestrator::run::Error::from(e)))?
            .ok_or_else(|| match args.version {
                Some(version) => ToolError::new(format!(
                    "workflow `{}` has no version {version}: call get_workflow without a version \
                     for the latest, or list_workflows for the names",
                    args.name
                )),
                None => ToolError::from(testloop_orchestrator::run::Error::WorkflowNotFound(
                    args.name.clone(),
                )),
            })?;
        let workflow = spec::parse(&stored.yaml)
            .map_err(testloop_orchestrator::run::Error::Invalid)?
            .into_iter()
            .next()
            .map(|parsed| parsed.workflow)
            .ok_or_else(|| ToolError::new("the stored workflow has no document"))?;
        let steps = outline(&workflow);
        let config = parameters(&workflow);

        let mut text = format!("workflow {} v{}", stored.name, stored.version);
        if let Some(description) = &stored.description {
            let _ = write!(text, ": {description}");
        }
        text.push('\n');
        if !config.is_empty() {
            text.push_str("config:\n");
            for p in &config {
                let _ = write!(text, "- {} ({})", p.name, p.kind);
                match &p.default {
                    Some(default) => {
                        let _ = write!(text, " default {default}");
                    }
                    None => text.push_str(" required"),
                }
                if p.sensitive {
                    text.push_str(", sensitive");
                }
                text.push('\n');
            }
        }
        text.push_str("steps:\n");
        for step in &steps {
            let _ = writeln!(text, "- {} {}", step.path, step.name);
        }
        let _ = write!(text, "yaml:\n{}", stored.yaml.trim_end());
        Ok(Reply::new(
            WorkflowDetail {
                name: stored.name,
                version: stored.version,
                description: stored.description,
                labels: stored.labels,
                saved_at: rfc3339(stored.created_at),
                steps,
                config,
                yaml: stored.yaml,
            },
            text,
        ))
    }

    /// Check TestWorkflow YAML without saving or running it. Returns every problem at once, each
    /// with its path (`spec.steps[2].timeout`), line, column and message; when the YAML is valid,
    /// the resolved plan: each step's path, name, command, condition, and the config values it
    /// would run with (defaults expanded; pass `config` to try values). Use it while writing a
    /// workflow, before create_workflow.
    #[tool(
        output_schema = schema_for_output::<Validation>(),
        annotations(
            title = "Validate a workflow",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn validate_workflow(
        &self,
        Parameters(args): Parameters<ValidateWorkflowArgs>,
    ) -> Result<Reply<Validation>, ToolError> {
        let config = config_text(args.config);
        let parsed = match spec::parse(&args.yaml) {
            Ok(parsed) => parsed,
            Err(problems) => {
                let text = format!(
                    "invalid: {} problem(s)\n{}",
                    problems.len(),
                    render_problems(&problems)
                );
                return Ok(Reply::new(
                    Validation {
                        valid: false,
                        problems: problems.iter().take(MAX_PROBLEMS).map(Into::into).collect(),
                        workflows: Vec::new(),
                    },
                    text,
                ));
            }
        };
        let workflows: Vec<ResolvedWorkflow> = parsed
            .iter()
            .map(|p| resolve(&p.workflow, &config))
            .collect();
        let mut text = format!("valid: {} workflow(s)\n", workflows.len());
        for w in &workflows {
            let _ = writeln!(text, "workflow {}", w.name);
            if !w.config.is_empty() {
                let values: Vec<String> =
                    w.config.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(text, "config: {}", values.join(" "));
            }
            if let Some(error) = &w.plan_error {
                let _ = writeln!(text, "no plan: {error}");
            }
            for step in &w.steps {
                let _ = write!(text, "- {} {}", step.path, step.name);
                if step.condition != "passed" {
                    let _ = write!(text, " [if {}]", step.condition);
                }
                if let Some(command) = &step.command {
                    let _ = write!(text, ": {}", command.replace('\n', "⏎ "));
                }
                text.push('\n');
            }
        }
        Ok(Reply::new(
            Validation {
                valid: true,
                problems: Vec::new(),
                workflows,
            },
            text.trim_end(),
        ))
    }

    /// Save TestWorkflow YAML: creates the workflow, or updates the one with the same
    /// `metadata.name` as a new version (older versions stay; saving identical YAML makes no new
    /// version). Returns each workflow's name, version and whether a new version was made.
    /// Invalid YAML is refused with every problem listed (path, line, column, message).
    #[tool(
        output_schema = schema_for_output::<SavedWorkflows>(),
        annotations(
            title = "Create or update a workflow",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn create_workflow(
        &self,
        Parameters(args): Parameters<CreateWorkflowArgs>,
    ) -> Result<Reply<SavedWorkflows>, ToolError> {
        let parsed = spec::parse(&args.yaml).map_err(testloop_orchestrator::run::Error::Invalid)?;
        let mut saved = Vec::new();
        for workflow in &parsed {
            let version = self.orchestrator.save_workflow(workflow)?;
            saved.push(SavedWorkflow {
                name: version.name,
                version: version.version,
                created: version.created,
            });
        }
        let lines: Vec<String> = saved
            .iter()
            .map(|s| {
                let what = if s.created {
                    "saved as"
                } else {
                    "unchanged at"
                };
                format!("{} {what} version {}", s.name, s.version)
            })
            .collect();
        let next = saved.first().map(|s| {
            NextCall::new(
                "run_workflow",
                serde_json::json!({"name": s.name, "wait_seconds": 60}),
                "run it",
            )
        });
        let mut text = lines.join("\n");
        if let Some(next) = next {
            let _ = write!(text, "\nnext: {next}");
        }
        Ok(Reply::new(SavedWorkflows { saved }, text))
    }

    /// Delete a saved workflow: it is no longer listed or runnable, while its past executions
    /// (which keep their own copy of the YAML) stay readable and re-runnable.
    #[tool(
        output_schema = schema_for_output::<DeletedWorkflow>(),
        annotations(
            title = "Delete a workflow",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn delete_workflow(
        &self,
        Parameters(args): Parameters<WorkflowNameArgs>,
    ) -> Result<Reply<DeletedWorkflow>, ToolError> {
        let deleted = self
            .orchestrator
            .store()
            .delete_workflow(&args.name)
            .map_err(|e| ToolError::from(testloop_orchestrator::run::Error::from(e)))?;
        if !deleted {
            return Err(testloop_orchestrator::run::Error::WorkflowNotFound(args.name).into());
        }
        let text = format!(
            "deleted workflow {}; its executions stay (list_executions)",
            args.name
        );
        Ok(Reply::new(
            DeletedWorkflow {
                name: args.name,
                deleted,
            },
            text,
        ))
    }
}

fn matches_search(workflow: &WorkflowSummary, needle: &str) -> bool {
    workflow.name.to_lowercase().contains(needle)
        || workflow
            .description
            .as_deref()
            .is_some_and(|d| d.to_lowercase().contains(needle))
}

/// Step paths and names from the workflow itself (no config needed).
fn outline(workflow: &Workflow) -> Vec<StepOutline> {
    fn walk(steps: &[Step], prefix: &str, out: &mut Vec<StepOutline>) {
        for (index, step) in steps.iter().enumerate() {
            let path = format!("{prefix}{}", index + 1);
            let name = step
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .or_else(|| {
                    step.shell
                        .as_deref()
                        .and_then(|s| s.lines().find(|l| !l.trim().is_empty()))
                        .map(|l| cut_line(l.trim(), 60).into_owned())
                })
                .unwrap_or_else(|| format!("step {path}"));
            out.push(StepOutline {
                path: path.clone(),
                name,
            });
            walk(&step.steps, &format!("{path}/"), out);
        }
    }
    let mut out = Vec::new();
    walk(&workflow.spec.setup, "setup/", &mut out);
    walk(&workflow.spec.steps, "", &mut out);
    walk(&workflow.spec.after, "after/", &mut out);
    out
}

fn parameters(workflow: &Workflow) -> Vec<ParameterInfo> {
    workflow
        .spec
        .config
        .iter()
        .map(|(name, p)| ParameterInfo {
            name: name.clone(),
            kind: serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            required: p.default.is_none(),
            default: p.default.as_ref().map(|d| {
                if p.sensitive {
                    Value::String(MASK.to_owned())
                } else {
                    d.clone()
                }
            }),
            sensitive: p.sensitive,
            description: p.description.clone(),
            allowed: p.allowed.clone(),
        })
        .collect()
}

fn resolve(workflow: &Workflow, config: &BTreeMap<String, String>) -> ResolvedWorkflow {
    let name = workflow.metadata.name.clone();
    match plan::plan(workflow, config, plan::ExecutionVars::new("VALIDATE")) {
        Ok(plan) => {
            let mut steps = Vec::new();
            for step in &plan.steps {
                flatten(step, &mut steps);
            }
            let config = plan
                .config
                .into_iter()
                .map(|(k, v)| {
                    let sensitive = workflow.spec.config.get(&k).is_some_and(|p| p.sensitive);
                    let shown = if sensitive {
                        Value::String(MASK.to_owned())
                    } else {
                        v
                    };
                    (k, shown)
                })
                .collect();
            ResolvedWorkflow {
                name,
                config,
                steps,
                plan_error: None,
            }
        }
        Err(error) => ResolvedWorkflow {
            name,
            config: Map::new(),
            steps: Vec::new(),
            plan_error: Some(error.to_string()),
        },
    }
}

fn flatten(step: &PlannedStep, out: &mut Vec<PlannedStepInfo>) {
    let command = step.action.as_ref().map(|action| {
        let text = match &action.command {
            Command::Shell(script) => script.trim().to_owned(),
            Command::Exec { program, args } => std::iter::once(program.as_str())
                .chain(args.iter().map(String::as_str))
                .map(|word| {
                    if word.is_empty() || word.contains(char::is_whitespace) {
                        format!("'{}'", word.replace('\'', "'\\''"))
                    } else {
                        word.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        };
        cut_line(&text, MAX_COMMAND_CHARS).into_owned()
    });
    out.push(PlannedStepInfo {
        path: step.path.clone(),
        name: step.name.clone(),
        command,
        working_dir: step.action.as_ref().map(|a| a.working_dir.clone()),
        condition: step.condition.source().to_owned(),
        optional: step.optional,
        negative: step.negative,
        retries: step.retry.as_ref().map(|r| r.count),
        timeout_seconds: step.timeout.map(|t| t.as_secs_f64()),
    });
    for child in &step.children {
        flatten(child, out);
    }
}
