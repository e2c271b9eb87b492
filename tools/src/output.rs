//! What every tool returns: structured content plus a short text rendering, or an error the agent
//! can act on. The one place where orchestrator errors become tool results.

use std::collections::BTreeMap;

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;
use testloop_orchestrator::execution::TimestampMicros;
use testloop_orchestrator::{artifacts, plan, run, store};

/// Problems listed in one error or validation result, at most.
pub const MAX_PROBLEMS: usize = 30;

/// A tool's answer: `data` becomes the structured content (described by the tool's output schema)
/// and `text` the text content, a compact rendering for models that read only text.
#[derive(Debug)]
pub struct Reply<T> {
    pub data: T,
    pub text: String,
}

impl<T> Reply<T> {
    pub fn new(data: T, text: impl Into<String>) -> Self {
        Self {
            data,
            text: text.into(),
        }
    }
}

impl<T: Serialize> IntoCallToolResult for Reply<T> {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        let value = serde_json::to_value(&self.data).map_err(|error| {
            rmcp::ErrorData::internal_error(format!("cannot serialize the result: {error}"), None)
        })?;
        let mut result = CallToolResult::success(vec![ContentBlock::text(self.text)]);
        result.structured_content = Some(value);
        Ok(result.into())
    }
}

/// An error the agent can act on: returned as a tool result with `isError: true` and a message
/// that says what went wrong and what to call instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        Ok(CallToolResult::error(vec![ContentBlock::text(self.0)]).into())
    }
}

impl From<run::Error> for ToolError {
    fn from(error: run::Error) -> Self {
        match error {
            run::Error::WorkflowNotFound(name) => Self(format!(
                "no workflow named `{name}`: call list_workflows to see the saved workflows, or \
                 create_workflow to save one"
            )),
            run::Error::Store(store::Error::NoSuchExecution { prefix }) => Self(format!(
                "no execution id starts with `{prefix}`: call list_executions to find the id"
            )),
            run::Error::Store(store::Error::AmbiguousExecutionId { prefix, candidates }) => {
                Self(format!(
                    "execution id prefix `{prefix}` matches more than one execution ({}): give \
                     more characters of the id",
                    candidates.join(", ")
                ))
            }
            run::Error::Store(store::Error::EmptyExecutionId) => Self(
                "the execution id is empty: give an id (or a unique prefix) from list_executions"
                    .to_owned(),
            ),
            run::Error::Invalid(problems) => Self(format!(
                "the workflow is invalid:\n{}\nfix these and try again (validate_workflow checks \
                 YAML without saving it)",
                render_problems(&problems)
            )),
            run::Error::Plan(plan::PlanError::Config { name, message }) => Self(format!(
                "config.{name}: {message} (in config values, pass \"{name}\": \"VALUE\"; \
                 get_workflow lists the parameters)"
            )),
            run::Error::Plan(error) => Self(format!("the workflow cannot run: {error}")),
            run::Error::NoBaseline {
                execution,
                workflow,
            } => Self(format!(
                "no execution of `{workflow}` passed before {execution}, so `last_passed` has \
                 nothing to compare with: pass another execution's id as `baseline` \
                 (list_executions with workflow `{workflow}` lists them)"
            )),
            run::Error::StillRunning(id) => Self(format!(
                "execution {id} is still running, so which steps failed is not known yet: call \
                 get_execution until it has finished, or abort_execution to stop it"
            )),
            other => Self(format!("internal error: failed: {other}")),
        }
    }
}

impl From<artifacts::Error> for ToolError {
    fn from(error: artifacts::Error) -> Self {
        match &error {
            artifacts::Error::NotFound(_) => Self(format!(
                "{error}: call list_artifacts to see the paths it holds (paths are case-sensitive)"
            )),
            artifacts::Error::IsDirectory(path) => Self(format!(
                "{error}: call list_artifacts with under=\"{path}\" to see its files, then read \
                 one of them"
            )),
            artifacts::Error::Io { .. } => Self(format!("internal error: {error}")),
            artifacts::Error::EmptyPath
            | artifacts::Error::PathTooLong { .. }
            | artifacts::Error::NulByte
            | artifacts::Error::AbsolutePath(_)
            | artifacts::Error::ParentComponent(_)
            | artifacts::Error::OutsideStore(_)
            | artifacts::Error::NotAFile(_) => {
                Self(format!("{error} (list_artifacts shows the paths it holds)"))
            }
            artifacts::Error::Binary(_) => Self(error.to_string()),
        }
    }
}

/// One problem per line, `path (line L, column C): message`, at most [`MAX_PROBLEMS`].
pub fn render_problems(problems: &[testloop_orchestrator::spec::Problem]) -> String {
    let mut lines: Vec<String> = problems
        .iter()
        .take(MAX_PROBLEMS)
        .map(|problem| format!("- {problem}"))
        .collect();
    if problems.len() > MAX_PROBLEMS {
        lines.push(format!(
            "- … and {} more problem(s)",
            problems.len() - MAX_PROBLEMS
        ));
    }
    lines.join("\n")
}

/// A tool call to make next, with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct NextCall {
    /// The tool's name.
    pub tool: String,
    /// Its arguments, ready to pass.
    pub arguments: serde_json::Value,
    /// Why this call.
    pub why: String,
}

impl NextCall {
    pub fn new(tool: &str, arguments: serde_json::Value, why: impl Into<String>) -> Self {
        Self {
            tool: tool.to_owned(),
            arguments,
            why: why.into(),
        }
    }
}

impl std::fmt::Display for NextCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.tool, self.arguments, self.why)
    }
}

/// A timestamp as RFC 3339 in UTC, to the second.
pub fn rfc3339(micros: TimestampMicros) -> String {
    jiff::Timestamp::from_microsecond(micros)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| micros.to_string())
}

/// Milliseconds between two timestamps.
pub fn millis_between(start: TimestampMicros, end: TimestampMicros) -> u64 {
    u64::try_from(end.saturating_sub(start) / 1000).unwrap_or(0)
}

/// `1.2s`, `350ms`, `2m05s`.
pub fn format_millis(millis: u64) -> String {
    run::format_duration(std::time::Duration::from_millis(millis))
}

/// `512 B`, `16 KiB`, `1.5 MiB`, `2.1 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = "KiB";
    for larger in ["MiB", "GiB", "TiB"] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = larger;
    }
    let value = format!("{value:.1}");
    format!("{} {unit}", value.strip_suffix(".0").unwrap_or(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_the_largest_unit_below_1024() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1 KiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(16 * 1024), "16 KiB");
        assert_eq!(format_bytes(16 * 1024 + 1), "16 KiB");
        assert_eq!(format_bytes(256 << 20), "256 MiB");
        assert_eq!(format_bytes(5 << 40), "5 TiB");
    }
}

/// One config value as an agent passes it: text, or a JSON number or boolean, which mean the
/// text they print as (`3`, `true`); the workflow's parameter types check it either way.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(untagged)]
pub enum ConfigValue {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl<'de> serde::Deserialize<'de> for ConfigValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => Ok(Self::Text(text)),
            serde_json::Value::Number(number) => Ok(Self::Number(number)),
            serde_json::Value::Bool(flag) => Ok(Self::Bool(flag)),
            other => Err(serde::de::Error::custom(format!(
                "a config value must be a string, a number or a boolean, got {}",
                match other {
                    serde_json::Value::Null => "null",
                    serde_json::Value::Array(_) => "a list",
                    _ => "an object",
                }
            ))),
        }
    }
}

/// Config values as the orchestrator takes them: text by parameter name.
pub fn config_text(values: BTreeMap<String, ConfigValue>) -> BTreeMap<String, String> {
    values
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                ConfigValue::Text(text) => text,
                ConfigValue::Number(number) => number.to_string(),
                ConfigValue::Bool(flag) => flag.to_string(),
            };
            (name, text)
        })
        .collect()
}
