//! A validated workflow and its config become a plan: steps with every template resolved,
//! commands, working directories and environments settled, ready for an executor.
//!
//! Planning is a plain synchronous function: it refuses what no executor runs yet (with the field's
//! path), resolves config values against their declared types, and renders `{{ }}` templates —
//! shell scripts with [`Quoting::Shell`] so that no config value can break out of its quotes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::execution::{ExecutorKind, StepRecord, StepStatus};
use crate::executor::{
    Action, ArtifactRule, Command, ContainerSettings, PlannedStep, PodSettings, RetryPolicy, Unit,
    UnitFile, WORKSPACE_MOUNT,
};
use crate::spec::duration::parse_duration;
use crate::spec::expr::{self, Expr, Quoting, Scope};
use crate::spec::model::{self, ContainerConfig, ParameterSpec, ParameterType, Step, Workflow};

/// Longest step name derived from a command when the step has no `name`.
pub const DERIVED_NAME_CHARS: usize = 60;

/// Why a workflow cannot run as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A field whose feature no executor supports yet.
    #[error("{path}: {feature} is not supported yet by this executor")]
    Unsupported { path: String, feature: String },
    /// A config value is missing, unknown or does not fit its parameter.
    #[error("config.{name}: {message}")]
    Config { name: String, message: String },
    /// A template or expression could not be resolved.
    #[error("{path}: {message}")]
    Template { path: String, message: String },
}

pub type Result<T, E = PlanError> = std::result::Result<T, E>;

/// Everything a unit needs, minus where its files live on disk.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The resolved config values by parameter name.
    pub config: Map<String, Value>,
    pub files: Vec<UnitFile>,
    pub steps: Vec<PlannedStep>,
    pub deadline: Option<Duration>,
    /// What conditions may read: `config.<name>`, `execution.id` and `execution.failed_tests`.
    pub variables: BTreeMap<String, Value>,
    /// `spec.pod` and `spec.job`, for backends with pods.
    pub pod: PodSettings,
}

/// What a plan knows of the execution it is for: `execution.*` in templates and conditions.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionVars<'a> {
    /// `execution.id`.
    pub id: &'a str,
    /// `execution.failed_tests`: in a re-run, the names of the test cases that failed in the
    /// execution it re-runs (a list; empty otherwise). `{{ shellquote(execution.failed_tests) }}`
    /// passes them as separate arguments, `{{ join(execution.failed_tests, '|') }}` as one pattern.
    pub failed_tests: &'a [String],
    /// Where it runs: Kubernetes-only settings (`valueFrom`, `envFrom`) are refused elsewhere.
    pub executor: ExecutorKind,
}

impl<'a> ExecutionVars<'a> {
    /// An execution that is not a re-run, on the local executor.
    pub fn new(id: &'a str) -> Self {
        Self {
            id,
            failed_tests: &[],
            executor: ExecutorKind::Local,
        }
    }
}

/// Plans `workflow` with config `overrides` (`name` → text as typed by a user) for `execution`.
pub fn plan(
    workflow: &Workflow,
    overrides: &BTreeMap<String, String>,
    execution: ExecutionVars<'_>,
) -> Result<Plan> {
    refuse_unsupported_spec(workflow)?;
    let config = resolve_config(&workflow.spec.config, overrides)?;
    let mut variables: BTreeMap<String, Value> = config
        .iter()
        .map(|(name, value)| (format!("config.{name}"), value.clone()))
        .collect();
    variables.insert(
        "execution.id".to_owned(),
        Value::String(execution.id.to_owned()),
    );
    variables.insert(
        "execution.failed_tests".to_owned(),
        Value::Array(
            execution
                .failed_tests
                .iter()
                .map(|name| Value::String(name.clone()))
                .collect(),
        ),
    );
    let scope = PlanScope {
        variables: &variables,
    };

    let spec = &workflow.spec;
    let kubernetes = execution.executor == ExecutorKind::Kubernetes;
    let root = Inherited::from_container(
        spec.container.as_ref(),
        &scope,
        "spec.container",
        kubernetes,
    )?;
    let files = plan_files(spec.content.as_ref())?;
    let mut steps = Vec::new();
    let groups: [(&str, &str, &[Step], &str); 3] = [
        ("spec.setup", "setup/", &spec.setup, "passed"),
        ("spec.steps", "", &spec.steps, "passed"),
        ("spec.after", "after/", &spec.after, "always"),
    ];
    for (field, prefix, group, default_condition) in groups {
        for (index, step) in group.iter().enumerate() {
            let context = StepContext {
                field: format!("{field}[{index}]"),
                path: format!("{prefix}{}", index + 1),
                default_condition,
            };
            steps.push(plan_step(step, &context, &root, &scope)?);
        }
    }
    Ok(Plan {
        config,
        files,
        steps,
        deadline: spec
            .job
            .as_ref()
            .and_then(|job| job.active_deadline_seconds)
            .map(Duration::from_secs),
        variables,
        pod: pod_settings(workflow),
    })
}

impl Plan {
    /// The plan as the one unit of execution `execution_id`, with its workspace and artifacts
    /// at the given host paths.
    pub fn into_unit(self, execution_id: &str, workspace: PathBuf, artifacts_dir: PathBuf) -> Unit {
        Unit {
            execution_id: execution_id.to_owned(),
            path: String::new(),
            workspace,
            artifacts_dir,
            files: self.files,
            steps: self.steps,
            deadline: self.deadline,
            variables: self.variables,
            pod: self.pod,
        }
    }

    /// Makes this plan a re-run of only what did not pass in `previous` (the steps of execution
    /// `previous_id`): each top-level step of `spec.steps` that passed there is skipped, with a
    /// message naming that execution. `setup` and `after` steps always run, since the steps that
    /// do run may need what they prepare. A step re-runs whole, nested steps included, because
    /// nested steps share its workspace and may depend on each other.
    pub fn skip_steps_that_passed(&mut self, previous: &[StepRecord], previous_id: &str) {
        let passed: BTreeMap<&str, StepStatus> = previous
            .iter()
            .map(|step| (step.path.as_str(), step.status))
            .collect();
        for step in &mut self.steps {
            let top_level = !step.path.contains('/');
            if top_level && passed.get(step.path.as_str()) == Some(&StepStatus::Passed) {
                step.skip = Some(format!(
                    "passed in {previous_id}; re-running only failed steps"
                ));
            }
        }
    }
}

/// What templates and conditions read: an execution's variables (`config.x`, `execution.id`) and
/// this process's environment (`env.X`, empty when unset).
pub struct PlanScope<'a> {
    pub variables: &'a BTreeMap<String, Value>,
}

impl Scope for PlanScope<'_> {
    fn resolve(&self, name: &str) -> Option<Value> {
        match name.strip_prefix("env.") {
            Some(var) => Some(Value::String(std::env::var(var).unwrap_or_default())),
            None => self.variables.get(name).cloned(),
        }
    }
}

fn unsupported(path: impl Into<String>, feature: &str) -> PlanError {
    PlanError::Unsupported {
        path: path.into(),
        feature: feature.to_owned(),
    }
}

fn refuse_unsupported_spec(workflow: &Workflow) -> Result<()> {
    let spec = &workflow.spec;
    if !spec.use_templates.is_empty() {
        return Err(unsupported("spec.use", "`use` (templates)"));
    }
    if !spec.services.is_empty() {
        return Err(unsupported("spec.services", "`services`"));
    }
    if let Some(content) = &spec.content {
        if content.git.is_some() {
            return Err(unsupported("spec.content.git", "`content.git` (checkout)"));
        }
        if !content.tarball.is_empty() {
            return Err(unsupported("spec.content.tarball", "`content.tarball`"));
        }
    }
    if !spec.events.is_empty() {
        return Err(unsupported("spec.events", "`events` (triggers)"));
    }
    if spec.concurrency.is_some() {
        return Err(unsupported("spec.concurrency", "`concurrency`"));
    }
    Ok(())
}

/// Resolves every declared parameter from `overrides`, then its default.
pub fn resolve_config(
    declared: &BTreeMap<String, ParameterSpec>,
    overrides: &BTreeMap<String, String>,
) -> Result<Map<String, Value>> {
    if let Some(unknown) = overrides.keys().find(|name| !declared.contains_key(*name)) {
        let known = if declared.is_empty() {
            "this workflow declares no parameters".to_owned()
        } else {
            format!(
                "this workflow declares: {}",
                declared.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        return Err(PlanError::Config {
            name: unknown.clone(),
            message: format!("unknown parameter; {known}"),
        });
    }
    let mut resolved = Map::new();
    for (name, parameter) in declared {
        let config_error = |message: String| PlanError::Config {
            name: name.clone(),
            message,
        };
        let value = match (overrides.get(name), &parameter.default) {
            (Some(text), _) => parse_typed(text, parameter.kind).map_err(config_error)?,
            (None, Some(default)) => default.clone(),
            (None, None) => {
                return Err(config_error(format!(
                    "required, and has no default: pass --set {name}=VALUE"
                )));
            }
        };
        check_constraints(&value, parameter).map_err(config_error)?;
        resolved.insert(name.clone(), value);
    }
    Ok(resolved)
}

fn parse_typed(text: &str, kind: ParameterType) -> std::result::Result<Value, String> {
    match kind {
        ParameterType::String => Ok(Value::String(text.to_owned())),
        ParameterType::Integer => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("expected an integer, got `{text}`")),
        ParameterType::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("expected a number, got `{text}`")),
        ParameterType::Boolean => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, got `{text}`")),
        },
    }
}

fn check_constraints(value: &Value, parameter: &ParameterSpec) -> std::result::Result<(), String> {
    if !parameter.allowed.is_empty() && !parameter.allowed.iter().any(|allowed| allowed == value) {
        let allowed: Vec<String> = parameter.allowed.iter().map(Value::to_string).collect();
        return Err(format!(
            "{value} is not one of the allowed values: {}",
            allowed.join(", ")
        ));
    }
    if let Value::String(text) = value {
        let length = text.chars().count() as u64;
        if parameter.min_length.is_some_and(|min| length < min) {
            return Err(format!(
                "shorter than minLength {}",
                parameter.min_length.unwrap_or_default()
            ));
        }
        if parameter.max_length.is_some_and(|max| length > max) {
            return Err(format!(
                "longer than maxLength {}",
                parameter.max_length.unwrap_or_default()
            ));
        }
        if let Some(pattern) = &parameter.pattern {
            let regex = regex::Regex::new(pattern)
                .map_err(|error| format!("pattern `{pattern}` does not compile: {error}"))?;
            if !regex.is_match(text) {
                return Err(format!("`{text}` does not match the pattern `{pattern}`"));
            }
        }
    }
    if let Some(number) = value.as_f64() {
        if parameter.minimum.is_some_and(|min| number < min) {
            return Err(format!(
                "below minimum {}",
                parameter.minimum.unwrap_or_default()
            ));
        }
        if parameter.maximum.is_some_and(|max| number > max) {
            return Err(format!(
                "above maximum {}",
                parameter.maximum.unwrap_or_default()
            ));
        }
    }
    Ok(())
}

fn plan_files(content: Option<&model::Content>) -> Result<Vec<UnitFile>> {
    let Some(content) = content else {
        return Ok(Vec::new());
    };
    content
        .files
        .iter()
        .enumerate()
        .map(|(index, file)| {
            let field = format!("spec.content.files[{index}]");
            if file.content_from.is_some() {
                return Err(unsupported(
                    format!("{field}.contentFrom"),
                    "`contentFrom` (Secrets and ConfigMaps)",
                ));
            }
            let mode = match &file.mode {
                None => None,
                Some(Value::Number(number)) => number.as_u64().and_then(|m| u32::try_from(m).ok()),
                Some(Value::String(text)) => {
                    u32::from_str_radix(text.trim_start_matches("0o"), 8).ok()
                }
                Some(_) => None,
            };
            if file.mode.is_some() && mode.is_none() {
                return Err(PlanError::Template {
                    path: format!("{field}.mode"),
                    message: "expected a file mode such as 0644 or \"0755\"".to_owned(),
                });
            }
            Ok(UnitFile {
                path: absolute_in_workspace(&file.path, WORKSPACE_MOUNT),
                content: file.content.clone().unwrap_or_default(),
                mode,
            })
        })
        .collect()
}

fn pod_settings(workflow: &Workflow) -> PodSettings {
    let mut pod = workflow.spec.pod.clone().unwrap_or_default();
    if let Some(job) = &workflow.spec.job {
        for (key, value) in &job.labels {
            pod.labels
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        for (key, value) in &job.annotations {
            pod.annotations
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
    }
    PodSettings {
        workflow: workflow.metadata.name.clone(),
        pod,
    }
}

/// `path` made absolute against `base`.
fn absolute_in_workspace(path: &str, base: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else if path.is_empty() || path == "." {
        base.to_owned()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches("./")
        )
    }
}

/// What a step inherits from the spec's container and its enclosing steps.
#[derive(Debug, Clone)]
struct Inherited {
    working_dir: String,
    env: Vec<(String, String)>,
    image: Option<String>,
    container: ContainerSettings,
    /// Whether Kubernetes-only settings are allowed (the execution runs there).
    kubernetes: bool,
}

impl Inherited {
    fn from_container(
        container: Option<&ContainerConfig>,
        scope: &PlanScope<'_>,
        field: &str,
        kubernetes: bool,
    ) -> Result<Self> {
        let base = Inherited {
            working_dir: WORKSPACE_MOUNT.to_owned(),
            env: Vec::new(),
            image: None,
            container: ContainerSettings::default(),
            kubernetes,
        };
        match container {
            Some(container) => base.with_container(container, scope, field),
            None => Ok(base),
        }
    }

    fn with_container(
        &self,
        container: &ContainerConfig,
        scope: &PlanScope<'_>,
        field: &str,
    ) -> Result<Self> {
        let mut next = self.clone();
        if let Some(dir) = &container.working_dir {
            let dir = render_plain(dir, scope, &format!("{field}.workingDir"))?;
            next.working_dir = absolute_in_workspace(&dir, &self.working_dir);
        }
        if container.image.is_some() {
            next.image = container.image.clone();
        }
        next.layer(
            &ContainerLayer {
                image_pull_policy: &container.image_pull_policy,
                resources: &container.resources,
                security_context: &container.security_context,
                env: &container.env,
                env_from: &container.env_from,
            },
            scope,
            field,
        )?;
        Ok(next)
    }

    /// Applies one level's environment and container settings over what is inherited.
    fn layer(
        &mut self,
        layer: &ContainerLayer<'_>,
        scope: &PlanScope<'_>,
        field: &str,
    ) -> Result<()> {
        if !layer.env_from.is_empty() {
            if !self.kubernetes {
                return Err(unsupported(
                    format!("{field}.envFrom"),
                    "`envFrom` outside Kubernetes",
                ));
            }
            self.container
                .env_from
                .extend(layer.env_from.iter().cloned());
        }
        if let Some(policy) = layer.image_pull_policy {
            self.container.image_pull_policy = Some(policy.clone());
        }
        if let Some(resources) = layer.resources {
            self.container.resources = Some(resources.clone());
        }
        if let Some(context) = layer.security_context {
            self.container.security_context = Some(context.clone());
        }
        for (index, var) in layer.env.iter().enumerate() {
            match &var.value_from {
                Some(source) if self.kubernetes => {
                    self.env.retain(|(name, _)| *name != var.name);
                    self.container
                        .env_value_from
                        .retain(|(name, _)| *name != var.name);
                    self.container
                        .env_value_from
                        .push((var.name.clone(), source.clone()));
                }
                Some(_) => {
                    return Err(unsupported(
                        format!("{field}.env[{index}].valueFrom"),
                        "`valueFrom` (Secrets, ConfigMaps, field references) outside Kubernetes",
                    ));
                }
                None => {
                    let value = render_plain(
                        var.value.as_deref().unwrap_or_default(),
                        scope,
                        &format!("{field}.env[{index}].value"),
                    )?;
                    self.container
                        .env_value_from
                        .retain(|(name, _)| *name != var.name);
                    self.env.push((var.name.clone(), value));
                }
            }
        }
        Ok(())
    }
}

/// The settings one level (`container`, `run`) may set.
struct ContainerLayer<'a> {
    image_pull_policy: &'a Option<String>,
    resources: &'a Option<model::Resources>,
    security_context: &'a Option<Value>,
    env: &'a [model::EnvVar],
    env_from: &'a [Value],
}

fn render_plain(text: &str, scope: &PlanScope<'_>, field: &str) -> Result<String> {
    render(text, scope, field, Quoting::Plain)
}

fn render(text: &str, scope: &PlanScope<'_>, field: &str, quoting: Quoting) -> Result<String> {
    expr::render(text, scope, quoting).map_err(|error| PlanError::Template {
        path: field.to_owned(),
        message: error.to_string(),
    })
}

fn parse_condition(text: &str, field: &str) -> Result<Expr> {
    Expr::parse(text).map_err(|error| PlanError::Template {
        path: field.to_owned(),
        message: error.to_string(),
    })
}

struct StepContext {
    /// Where the step is in the YAML (`spec.steps[1].steps[0]`), for messages.
    field: String,
    /// Where the step is in the execution's tree (`2/1`).
    path: String,
    default_condition: &'static str,
}

fn refuse_unsupported_step(step: &Step, field: &str) -> Result<()> {
    let checks: [(bool, &str, &str); 7] = [
        (
            step.parallel.is_some(),
            "parallel",
            "`parallel` (workers, matrix, shards)",
        ),
        (!step.services.is_empty(), "services", "`services`"),
        (
            step.execute.is_some(),
            "execute",
            "`execute` (other workflows)",
        ),
        (step.template.is_some(), "template", "`template`"),
        (!step.use_templates.is_empty(), "use", "`use` (templates)"),
        (step.content.is_some(), "content", "`content` on a step"),
        (step.paused == Some(true), "paused", "`paused`"),
    ];
    match checks.into_iter().find(|(present, _, _)| *present) {
        Some((_, key, feature)) => Err(unsupported(format!("{field}.{key}"), feature)),
        None => Ok(()),
    }
}

fn plan_step(
    step: &Step,
    context: &StepContext,
    inherited: &Inherited,
    scope: &PlanScope<'_>,
) -> Result<PlannedStep> {
    let field = &context.field;
    refuse_unsupported_step(step, field)?;
    let mut own = match &step.container {
        Some(container) => {
            inherited.with_container(container, scope, &format!("{field}.container"))?
        }
        None => inherited.clone(),
    };
    if let Some(dir) = &step.working_dir {
        let dir = render_plain(dir, scope, &format!("{field}.workingDir"))?;
        own.working_dir = absolute_in_workspace(&dir, &own.working_dir);
    }
    let action = plan_action(step, field, &own, scope)?;

    let duration = |text: &Option<String>, key: &str| -> Result<Option<Duration>> {
        text.as_deref()
            .map(|text| {
                parse_duration(text).map_err(|message| PlanError::Template {
                    path: format!("{field}.{key}"),
                    message,
                })
            })
            .transpose()
    };
    let condition = parse_condition(
        step.condition
            .as_deref()
            .unwrap_or(context.default_condition),
        &format!("{field}.condition"),
    )?;
    let retry = step
        .retry
        .as_ref()
        .map(|retry| -> Result<RetryPolicy> {
            Ok(RetryPolicy {
                count: retry.count,
                until: parse_condition(
                    retry.until.as_deref().unwrap_or("passed"),
                    &format!("{field}.retry.until"),
                )?,
            })
        })
        .transpose()?;
    let artifacts = step
        .artifacts
        .as_ref()
        .map(|artifacts| -> Result<ArtifactRule> {
            let working_dir = match &artifacts.working_dir {
                Some(dir) => {
                    let dir = render_plain(dir, scope, &format!("{field}.artifacts.workingDir"))?;
                    absolute_in_workspace(&dir, &own.working_dir)
                }
                None => own.working_dir.clone(),
            };
            let patterns = artifacts
                .paths
                .iter()
                .enumerate()
                .map(|(index, pattern)| {
                    render_plain(pattern, scope, &format!("{field}.artifacts.paths[{index}]"))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(ArtifactRule {
                working_dir,
                patterns,
            })
        })
        .transpose()?;

    let children = step
        .steps
        .iter()
        .enumerate()
        .map(|(index, child)| {
            let child_context = StepContext {
                field: format!("{field}.steps[{index}]"),
                path: format!("{}/{}", context.path, index + 1),
                default_condition: "passed",
            };
            plan_step(child, &child_context, &own, scope)
        })
        .collect::<Result<Vec<_>>>()?;
    if !step.setup.is_empty() {
        return Err(unsupported(
            format!("{field}.setup"),
            "`setup` inside a step",
        ));
    }

    let name = step
        .name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| derive_name(action.as_ref(), &context.path));
    Ok(PlannedStep {
        path: context.path.clone(),
        name,
        action,
        children,
        condition,
        optional: step.optional,
        negative: step.negative,
        retry,
        timeout: duration(&step.timeout, "timeout")?,
        delay: duration(&step.delay, "delay")?,
        artifacts,
        skip: None,
    })
}

fn plan_action(
    step: &Step,
    field: &str,
    own: &Inherited,
    scope: &PlanScope<'_>,
) -> Result<Option<Action>> {
    let run = step.run.as_ref();
    let mut own = own.clone();
    if let Some(run) = run {
        if let Some(dir) = &run.working_dir {
            let dir = render_plain(dir, scope, &format!("{field}.run.workingDir"))?;
            own.working_dir = absolute_in_workspace(&dir, &own.working_dir);
        }
        own.layer(
            &ContainerLayer {
                image_pull_policy: &run.image_pull_policy,
                resources: &run.resources,
                security_context: &run.security_context,
                env: &run.env,
                env_from: &run.env_from,
            },
            scope,
            &format!("{field}.run"),
        )?;
        if run.image.is_some() {
            own.image = run.image.clone();
        }
    }

    let shell = step
        .shell
        .as_ref()
        .map(|shell| (shell, format!("{field}.shell")))
        .or_else(|| {
            run.and_then(|run| run.shell.as_ref())
                .map(|shell| (shell, format!("{field}.run.shell")))
        });
    let container = step.container.as_ref();
    let (command, args, command_field) = match run {
        Some(run) if run.command.is_some() || run.args.is_some() => (
            run.command.clone(),
            run.args.clone(),
            format!("{field}.run"),
        ),
        _ => (
            container.and_then(|c| c.command.clone()),
            container.and_then(|c| c.args.clone()),
            format!("{field}.container"),
        ),
    };

    let command = match (shell, command, args) {
        (Some((script, shell_field)), _, _) => {
            Command::Shell(render(script, scope, &shell_field, Quoting::Shell)?)
        }
        (None, Some(command), args) => {
            let mut words = command.into_iter().chain(args.unwrap_or_default());
            let Some(program) = words.next() else {
                return Err(PlanError::Template {
                    path: format!("{command_field}.command"),
                    message: "empty command".to_owned(),
                });
            };
            let program = render_plain(&program, scope, &format!("{command_field}.command[0]"))?;
            let args = words
                .enumerate()
                .map(|(index, arg)| {
                    render_plain(&arg, scope, &format!("{command_field}.args[{index}]"))
                })
                .collect::<Result<Vec<_>>>()?;
            Command::Exec { program, args }
        }
        (None, None, Some(_)) => {
            return Err(unsupported(
                format!("{command_field}.args"),
                "`args` without `command` (it relies on the image's entrypoint)",
            ));
        }
        (None, None, None) if run.is_some() => {
            return Err(unsupported(
                format!("{field}.run"),
                "`run` without `shell` or `command` (it relies on the image's entrypoint)",
            ));
        }
        (None, None, None) => return Ok(None),
    };
    Ok(Some(Action {
        command,
        working_dir: own.working_dir,
        env: own.env,
        image: own.image,
        container: own.container,
    }))
}

fn derive_name(action: Option<&Action>, path: &str) -> String {
    let text = match action.map(|action| &action.command) {
        Some(Command::Shell(script)) => script
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or_default()
            .to_owned(),
        Some(Command::Exec { program, args }) => std::iter::once(program.as_str())
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        None => String::new(),
    };
    if text.is_empty() {
        return format!("step {path}");
    }
    let mut name: String = text.chars().take(DERIVED_NAME_CHARS).collect();
    if text.chars().count() > DERIVED_NAME_CHARS {
        name.push('…');
    }
    name
}
