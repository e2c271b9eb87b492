//! MCP prompt texts for testloop, kept as Markdown files in `prompts/texts/` (front matter: name,
//! description, arguments) and compiled into the binary. `{{argument}}` in a text is replaced by the
//! argument's value; any other `{{ … }}` (workflow expressions in a skeleton) stays as written.
//!
//! The MCP server lists and serves these; adding a prompt is adding a file here and a line in
//! [`SOURCES`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// The prompt files, compiled in.
const SOURCES: &[(&str, &str)] = &[
    (
        "debug_failed_execution.md",
        include_str!("../texts/debug_failed_execution.md"),
    ),
    (
        "write_test_workflow.md",
        include_str!("../texts/write_test_workflow.md"),
    ),
    (
        "triage_flaky_tests.md",
        include_str!("../texts/triage_flaky_tests.md"),
    ),
    ("compare_runs.md", include_str!("../texts/compare_runs.md")),
];

/// Longest value accepted for one prompt argument.
pub const MAX_ARGUMENT_BYTES: usize = 16 * 1024;

/// What can go wrong getting a prompt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No prompt by that name.
    #[error("no prompt named `{name}`; the prompts are: {known}")]
    UnknownPrompt { name: String, known: String },
    /// A required argument was not given.
    #[error("prompt `{prompt}` needs the argument `{argument}`")]
    MissingArgument { prompt: String, argument: String },
    /// An argument the prompt does not take.
    #[error("prompt `{prompt}` has no argument `{argument}`; it takes: {known}")]
    UnknownArgument {
        prompt: String,
        argument: String,
        known: String,
    },
    /// An argument longer than [`MAX_ARGUMENT_BYTES`].
    #[error("argument `{argument}` is longer than {MAX_ARGUMENT_BYTES} bytes")]
    ArgumentTooLong { argument: String },
}

/// One argument of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Argument {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub required: bool,
    /// What an optional argument stands for when it is not given.
    #[serde(default)]
    pub default: Option<String>,
}

/// A prompt: its front matter and its Markdown body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub name: String,
    pub description: String,
    pub arguments: Vec<Argument>,
    body: &'static str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    name: String,
    description: String,
    #[serde(default)]
    arguments: Vec<Argument>,
}

fn parse(file: &str, source: &'static str) -> Prompt {
    // The files are part of this crate and checked by its tests: a malformed one is a build
    // defect, not input, so failing loudly here is right.
    let rest = source
        .strip_prefix("---\n")
        .unwrap_or_else(|| panic!("{file}: no front matter"));
    let (front, body) = rest
        .split_once("\n---\n")
        .unwrap_or_else(|| panic!("{file}: unterminated front matter"));
    let front: FrontMatter = yaml_serde::from_str(front)
        .unwrap_or_else(|error| panic!("{file}: bad front matter: {error}"));
    Prompt {
        name: front.name,
        description: front.description,
        arguments: front.arguments,
        body,
    }
}

/// Every prompt, in a stable order.
pub fn all() -> &'static [Prompt] {
    static PROMPTS: OnceLock<Vec<Prompt>> = OnceLock::new();
    PROMPTS.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(file, source)| parse(file, source))
            .collect()
    })
}

/// The prompt called `name`.
pub fn get(name: &str) -> Result<&'static Prompt, Error> {
    all()
        .iter()
        .find(|prompt| prompt.name == name)
        .ok_or_else(|| Error::UnknownPrompt {
            name: name.to_owned(),
            known: all()
                .iter()
                .map(|prompt| prompt.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl Prompt {
    fn argument_names(&self) -> String {
        self.arguments
            .iter()
            .map(|argument| argument.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The text with `{{argument}}` replaced by each argument's value.
    pub fn render(&self, arguments: &BTreeMap<String, String>) -> Result<String, Error> {
        if let Some(unknown) = arguments.keys().find(|name| {
            !self
                .arguments
                .iter()
                .any(|argument| &argument.name == *name)
        }) {
            return Err(Error::UnknownArgument {
                prompt: self.name.clone(),
                argument: unknown.clone(),
                known: self.argument_names(),
            });
        }
        let mut text = self.body.trim_start().to_owned();
        for argument in &self.arguments {
            let value = match arguments.get(&argument.name) {
                Some(value) if value.len() > MAX_ARGUMENT_BYTES => {
                    return Err(Error::ArgumentTooLong {
                        argument: argument.name.clone(),
                    });
                }
                Some(value) if !value.trim().is_empty() => value.as_str(),
                _ if argument.required => {
                    return Err(Error::MissingArgument {
                        prompt: self.name.clone(),
                        argument: argument.name.clone(),
                    });
                }
                _ => argument.default.as_deref().unwrap_or_default(),
            };
            text = text.replace(&format!("{{{{{}}}}}", argument.name), value);
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_prompt_file_parses_and_names_its_arguments() {
        let names: Vec<&str> = all().iter().map(|prompt| prompt.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "debug_failed_execution",
                "write_test_workflow",
                "triage_flaky_tests",
                "compare_runs"
            ]
        );
        for prompt in all() {
            assert!(!prompt.description.is_empty());
            for argument in &prompt.arguments {
                assert!(
                    prompt.body.contains(&format!("{{{{{}}}}}", argument.name)),
                    "{} never uses {}",
                    prompt.name,
                    argument.name
                );
            }
        }
    }

    #[test]
    fn rendering_fills_arguments_and_leaves_workflow_expressions_alone() {
        let text = get("write_test_workflow")
            .unwrap()
            .render(&args(&[(
                "project",
                "A Rust crate tested with cargo nextest",
            )]))
            .unwrap();
        assert!(text.contains("A Rust crate tested with cargo nextest"));
        assert!(text.contains("{{ config.filter }}"));
        assert!(!text.contains("{{project}}"));
        let debug = get("debug_failed_execution")
            .unwrap()
            .render(&args(&[("execution_id", "01ABC")]))
            .unwrap();
        assert!(debug.contains("`get_execution` with `id: \"01ABC\"`"));
        assert!(debug.starts_with("Execution `01ABC` did not pass"));
    }

    #[test]
    fn an_optional_argument_left_out_takes_its_default() {
        let compare = get("compare_runs").unwrap();
        let text = compare.render(&args(&[("execution_id", "01ABC")])).unwrap();
        assert!(text.contains(r#"`execution: "01ABC"` and `baseline: "last_passed"`"#));
        let text = compare
            .render(&args(&[("execution_id", "01ABC"), ("baseline", "01XYZ")]))
            .unwrap();
        assert!(text.contains(r#"`baseline: "01XYZ"`"#));
        let triage = get("triage_flaky_tests").unwrap();
        let text = triage.render(&args(&[("workflow", "calc")])).unwrap();
        assert!(text.contains(r#"`workflow: "calc"` and `last: 20`"#));
        assert!(
            text.contains("{{ execution.failed_tests }}"),
            "workflow expressions stay as written"
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        assert_eq!(
            get("nope").unwrap_err().to_string(),
            "no prompt named `nope`; the prompts are: debug_failed_execution, write_test_workflow, \
             triage_flaky_tests, compare_runs"
        );
        let prompt = get("debug_failed_execution").unwrap();
        assert_eq!(
            prompt.render(&args(&[])).unwrap_err().to_string(),
            "prompt `debug_failed_execution` needs the argument `execution_id`"
        );
        assert_eq!(
            prompt
                .render(&args(&[("execution_id", "x"), ("extra", "y")]))
                .unwrap_err()
                .to_string(),
            "prompt `debug_failed_execution` has no argument `extra`; it takes: execution_id"
        );
        let at_limit = "a".repeat(MAX_ARGUMENT_BYTES);
        assert!(prompt.render(&args(&[("execution_id", &at_limit)])).is_ok());
        let over = "a".repeat(MAX_ARGUMENT_BYTES + 1);
        assert_eq!(
            prompt.render(&args(&[("execution_id", &over)])),
            Err(Error::ArgumentTooLong {
                argument: "execution_id".to_owned()
            })
        );
    }
}
