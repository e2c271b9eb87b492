//! Semantic checks over the typed model: what serde cannot say about a workflow.
//!
//! Each problem carries the path of the offending value and, when the workflow came from a file,
//! the line and column of that value (or of its closest ancestor written in the file, for values
//! that are missing).

use std::collections::{BTreeMap, BTreeSet};

use globset::GlobBuilder;
use serde_json::Value;

use super::Problem;
use super::de::Positions;
use super::duration::parse_duration;
use super::expr::{Expr, template_expressions};
use super::limits::{
    MAX_CONFIG_PARAMETERS, MAX_CONFIG_VALUE_BYTES, MAX_LABEL_CHARS, MAX_LABEL_PREFIX_CHARS,
    MAX_NAME_CHARS, MAX_STEP_DEPTH, MAX_STEP_NAME_CHARS, MAX_STEPS,
};
use super::model::{
    API_VERSION, Artifacts, ContainerConfig, Content, EnvVar, KIND, Parallel, ParameterSpec,
    ParameterType, Retry, Run, ServiceSpec, Step, Workflow,
};
use super::yaml::{join_index, join_key, quote_for_message};

/// Checks a workflow that was not read from a file (problems have paths but no positions).
pub fn validate(workflow: &Workflow) -> Vec<Problem> {
    validate_at(0, workflow, None)
}

/// Checks document `document` of a file, placing problems with `positions`.
pub(crate) fn validate_at(
    document: usize,
    workflow: &Workflow,
    positions: Option<&Positions>,
) -> Vec<Problem> {
    let mut v = Validator {
        document,
        positions,
        problems: Vec::new(),
        steps: 0,
    };
    v.workflow(workflow);
    v.problems
}

/// The names an expression may read at some place in the workflow.
#[derive(Debug, Clone, Default)]
struct Names {
    config: BTreeSet<String>,
    /// Inside `parallel`: the matrix and shard keys.
    parallel: Option<(BTreeSet<String>, BTreeSet<String>)>,
}

struct Validator<'a> {
    document: usize,
    positions: Option<&'a Positions>,
    problems: Vec<Problem>,
    steps: usize,
}

impl Validator<'_> {
    fn push(&mut self, path: &str, at: Option<(usize, usize)>, message: String) {
        self.problems.push(Problem {
            document: self.document,
            path: path.to_owned(),
            line: at.map(|(line, _)| line),
            column: at.map(|(_, column)| column),
            message,
        });
    }

    /// A problem with the value at `path`.
    fn at(&mut self, path: &str, message: impl Into<String>) {
        let at = self.positions.and_then(|p| p.value(path));
        self.push(path, at, message.into());
    }

    /// A problem with the key naming `path` (a config parameter's name, a label key).
    fn at_key(&mut self, path: &str, message: impl Into<String>) {
        let at = self.positions.and_then(|p| p.key(path));
        self.push(path, at, message.into());
    }

    fn workflow(&mut self, w: &Workflow) {
        if w.api_version != API_VERSION {
            let found = if w.api_version.is_empty() {
                "it is missing".to_owned()
            } else {
                format!("found {}", quote_for_message(&w.api_version))
            };
            self.at("apiVersion", format!("expected `{API_VERSION}`; {found}"));
        }
        if w.kind != KIND {
            let found = if w.kind.is_empty() {
                "it is missing".to_owned()
            } else {
                format!("found {}", quote_for_message(&w.kind))
            };
            self.at("kind", format!("expected `{KIND}`; {found}"));
        }
        self.metadata_name(&w.metadata.name);
        self.labels(&w.metadata.labels, "metadata.labels", true);
        self.labels(&w.metadata.annotations, "metadata.annotations", false);

        let spec = &w.spec;
        self.config(&spec.config, "spec.config");
        let names = Names {
            config: spec.config.keys().cloned().collect(),
            parallel: None,
        };
        if let Some(content) = &spec.content {
            self.content(content, "spec.content");
        }
        if let Some(container) = &spec.container {
            self.container(container, "spec.container", &names);
        }
        self.services(&spec.services, "spec.services", &names);
        self.steps(&spec.setup, "spec.setup", 1, &names);
        self.steps(&spec.steps, "spec.steps", 1, &names);
        self.steps(&spec.after, "spec.after", 1, &names);
        for (i, event) in spec.events.iter().enumerate() {
            if let Some(cron) = &event.cronjob
                && cron.cron.trim().is_empty()
            {
                let path = join_key(&join_index("spec.events", i), "cronjob");
                self.at(&join_key(&path, "cron"), "`cron` needs a schedule");
            }
        }
        if self.steps > MAX_STEPS {
            self.at(
                "spec",
                format!(
                    "the workflow has {} steps; the limit is {MAX_STEPS} (counting setup, after, \
                     nested and parallel steps)",
                    self.steps
                ),
            );
        }
    }

    fn metadata_name(&mut self, name: &str) {
        let path = "metadata.name";
        if name.is_empty() {
            self.at(
                path,
                "required: every workflow needs a name (lowercase letters, digits and `-`)",
            );
            return;
        }
        let mut wrong = Vec::new();
        let length = name.chars().count();
        if length > MAX_NAME_CHARS {
            wrong.push(format!(
                "it is {length} characters long; the limit is {MAX_NAME_CHARS}"
            ));
        }
        if name.chars().any(|c| c.is_ascii_uppercase()) {
            wrong.push("it has uppercase letters; use lowercase".to_owned());
        }
        let bad: BTreeSet<char> = name
            .chars()
            .filter(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
            .filter(|c| !c.is_ascii_uppercase())
            .collect();
        if !bad.is_empty() {
            let shown: Vec<String> = bad.iter().map(|c| format!("`{c}`")).collect();
            wrong.push(format!(
                "it contains {}; only lowercase letters, digits and `-` are allowed",
                shown.join(", ")
            ));
        }
        if name.starts_with('-') {
            wrong.push("it starts with `-`; it must start with a letter or digit".to_owned());
        }
        if name.ends_with('-') {
            wrong.push("it ends with `-`; it must end with a letter or digit".to_owned());
        }
        if !wrong.is_empty() {
            self.at(
                path,
                format!(
                    "{} is not a valid name (a DNS-1123 label): {}",
                    quote_for_message(name),
                    wrong.join("; ")
                ),
            );
        }
    }

    /// Kubernetes label and annotation keys (`prefix/name`), and label values.
    fn labels(&mut self, map: &BTreeMap<String, String>, path: &str, check_values: bool) {
        for (key, value) in map {
            let entry = join_key(path, key);
            if let Some(problem) = label_key_problem(key) {
                self.at_key(
                    &entry,
                    format!("invalid key {}: {problem}", quote_for_message(key)),
                );
            }
            if check_values && let Some(problem) = label_value_problem(value) {
                self.at(
                    &entry,
                    format!(
                        "invalid label value {}: {problem}",
                        quote_for_message(value)
                    ),
                );
            }
        }
    }

    fn config(&mut self, params: &BTreeMap<String, ParameterSpec>, path: &str) {
        if params.len() > MAX_CONFIG_PARAMETERS {
            self.at(
                path,
                format!(
                    "{} config parameters; the limit is {MAX_CONFIG_PARAMETERS}",
                    params.len()
                ),
            );
        }
        for (name, param) in params {
            let here = join_key(path, name);
            if !is_identifier(name) {
                self.at_key(
                    &here,
                    format!(
                        "invalid parameter name {}: use letters, digits and `_`, not starting \
                         with a digit, so that `config.<name>` can refer to it",
                        quote_for_message(name)
                    ),
                );
            }
            self.parameter(param, &here);
        }
    }

    fn parameter(&mut self, p: &ParameterSpec, path: &str) {
        let pattern = match &p.pattern {
            Some(pattern) => match regex::Regex::new(pattern) {
                Ok(regex) => Some(regex),
                Err(error) => {
                    self.at(
                        &join_key(path, "pattern"),
                        format!("invalid regular expression: {}", regex_error(&error)),
                    );
                    None
                }
            },
            None => None,
        };
        let check = |v: &mut Self, value: &Value, at: &str, what: &str| -> bool {
            if let Value::String(s) = value
                && s.len() > MAX_CONFIG_VALUE_BYTES
            {
                v.at(
                    at,
                    format!(
                        "{what} is {} bytes long; the limit is {MAX_CONFIG_VALUE_BYTES}",
                        s.len()
                    ),
                );
                return false;
            }
            if !matches_type(value, p.kind) {
                v.at(
                    at,
                    format!(
                        "{what} must be {} (the parameter's type), found {}",
                        type_name(p.kind),
                        describe(value)
                    ),
                );
                return false;
            }
            true
        };
        for (i, allowed) in p.allowed.iter().enumerate() {
            check(
                self,
                allowed,
                &join_index(&join_key(path, "enum"), i),
                "an enum value",
            );
        }
        if let Some(example) = &p.example
            && let Value::String(s) = example
            && s.len() > MAX_CONFIG_VALUE_BYTES
        {
            self.at(
                &join_key(path, "example"),
                format!(
                    "the example is {} bytes long; the limit is {MAX_CONFIG_VALUE_BYTES}",
                    s.len()
                ),
            );
        }
        let Some(default) = &p.default else { return };
        let at = join_key(path, "default");
        if !check(self, default, &at, "the default") {
            return;
        }
        if !p.allowed.is_empty() && !p.allowed.contains(default) {
            let allowed: Vec<String> = p.allowed.iter().map(describe_short).collect();
            self.at(
                &at,
                format!(
                    "the default {} is not one of the enum values: {}",
                    describe_short(default),
                    allowed.join(", ")
                ),
            );
        }
        if let Value::String(s) = default {
            if let Some(regex) = &pattern
                && !regex.is_match(s)
            {
                self.at(
                    &at,
                    format!(
                        "the default {} does not match `pattern`",
                        quote_for_message(s)
                    ),
                );
            }
            let length = s.chars().count() as u64;
            if p.min_length.is_some_and(|min| length < min)
                || p.max_length.is_some_and(|max| length > max)
            {
                self.at(
                    &at,
                    format!("the default is {length} characters long, outside minLength/maxLength"),
                );
            }
        }
        if let Some(number) = default.as_f64()
            && (p.minimum.is_some_and(|min| number < min)
                || p.maximum.is_some_and(|max| number > max))
        {
            self.at(
                &at,
                format!("the default {number} is outside minimum/maximum"),
            );
        }
    }

    fn content(&mut self, content: &Content, path: &str) {
        for (i, file) in content.files.iter().enumerate() {
            let here = join_index(&join_key(path, "files"), i);
            if file.path.trim().is_empty() {
                self.at(&join_key(&here, "path"), "a content file needs a `path`");
            }
        }
        if let Some(git) = &content.git
            && git.uri.trim().is_empty()
        {
            self.at(
                &join_key(&join_key(path, "git"), "uri"),
                "`git` content needs a `uri`",
            );
        }
    }

    fn container(&mut self, c: &ContainerConfig, path: &str, names: &Names) {
        self.optional_template(c.image.as_deref(), &join_key(path, "image"), names);
        self.optional_template(
            c.working_dir.as_deref(),
            &join_key(path, "workingDir"),
            names,
        );
        self.template_list(c.command.as_deref(), &join_key(path, "command"), names);
        self.template_list(c.args.as_deref(), &join_key(path, "args"), names);
        self.env(&c.env, &join_key(path, "env"), names);
    }

    fn run(&mut self, r: &Run, path: &str, names: &Names) {
        self.optional_template(r.image.as_deref(), &join_key(path, "image"), names);
        self.optional_template(
            r.working_dir.as_deref(),
            &join_key(path, "workingDir"),
            names,
        );
        self.optional_template(r.shell.as_deref(), &join_key(path, "shell"), names);
        self.template_list(r.command.as_deref(), &join_key(path, "command"), names);
        self.template_list(r.args.as_deref(), &join_key(path, "args"), names);
        self.env(&r.env, &join_key(path, "env"), names);
        if r.shell.is_some() && (r.command.is_some() || r.args.is_some()) {
            self.at(
                &join_key(path, "shell"),
                "`run.shell` cannot be combined with `run.command` or `run.args`: the shell \
                 script is the command",
            );
        }
    }

    fn env(&mut self, vars: &[EnvVar], path: &str, names: &Names) {
        for (i, var) in vars.iter().enumerate() {
            let here = join_index(path, i);
            if !is_env_name(&var.name) {
                let message = if var.name.is_empty() {
                    "an environment variable needs a `name`".to_owned()
                } else {
                    format!(
                        "invalid environment variable name {}: use letters, digits, `_`, `-` and \
                         `.`, not starting with a digit",
                        quote_for_message(&var.name)
                    )
                };
                self.at(&join_key(&here, "name"), message);
            }
            if var.value.is_some() && var.value_from.is_some() {
                self.at(&here, "set `value` or `valueFrom`, not both");
            }
            self.optional_template(var.value.as_deref(), &join_key(&here, "value"), names);
        }
    }

    fn services(&mut self, services: &BTreeMap<String, ServiceSpec>, path: &str, names: &Names) {
        for (name, service) in services {
            let here = join_key(path, name);
            self.env(&service.env, &join_key(&here, "env"), names);
            self.duration(service.timeout.as_deref(), &join_key(&here, "timeout"));
            self.optional_template(service.shell.as_deref(), &join_key(&here, "shell"), names);
        }
    }

    fn steps(&mut self, steps: &[Step], path: &str, depth: usize, names: &Names) {
        for (i, step) in steps.iter().enumerate() {
            self.step(step, &join_index(path, i), depth, names);
        }
    }

    fn step(&mut self, s: &Step, path: &str, depth: usize, names: &Names) {
        self.steps += 1;
        if depth > MAX_STEP_DEPTH {
            self.at(
                path,
                format!("steps nested more than {MAX_STEP_DEPTH} levels deep; the limit is {MAX_STEP_DEPTH}"),
            );
            return;
        }
        self.step_name(s.name.as_deref(), path, names);
        self.common(
            &Common {
                condition: s.condition.as_deref(),
                retry: s.retry.as_ref(),
                timeout: s.timeout.as_deref(),
                delay: s.delay.as_deref(),
                working_dir: s.working_dir.as_deref(),
                shell: s.shell.as_deref(),
                run: s.run.as_ref(),
                container: s.container.as_ref(),
                content: s.content.as_ref(),
                artifacts: s.artifacts.as_ref(),
            },
            path,
            names,
        );
        let operations: Vec<&str> = [
            (s.shell.is_some() || s.run.is_some(), "`shell`/`run`"),
            (s.execute.is_some(), "`execute`"),
            (s.parallel.is_some(), "`parallel`"),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| *name)
        .collect();
        if operations.len() > 1 {
            self.at(
                path,
                format!(
                    "a step does one operation, but this one has {}; split it into steps",
                    operations.join(" and ")
                ),
            );
        }
        self.services(&s.services, &join_key(path, "services"), names);
        if let Some(parallel) = &s.parallel {
            self.parallel(parallel, &join_key(path, "parallel"), depth, names);
        }
        self.steps(&s.setup, &join_key(path, "setup"), depth + 1, names);
        self.steps(&s.steps, &join_key(path, "steps"), depth + 1, names);
    }

    fn step_name(&mut self, name: Option<&str>, path: &str, names: &Names) {
        let Some(name) = name else { return };
        let here = join_key(path, "name");
        let length = name.chars().count();
        if length > MAX_STEP_NAME_CHARS {
            self.at(
                &here,
                format!(
                    "the step name is {length} characters long; the limit is {MAX_STEP_NAME_CHARS}"
                ),
            );
        } else {
            self.template(name, &here, names);
        }
    }

    /// The fields steps and `parallel` share.
    fn common(&mut self, c: &Common<'_>, path: &str, names: &Names) {
        if let Some(condition) = c.condition {
            self.expression(condition, &join_key(path, "condition"), names, true);
        }
        if let Some(retry) = c.retry {
            self.retry(retry, &join_key(path, "retry"), names);
        }
        self.duration(c.timeout, &join_key(path, "timeout"));
        self.duration(c.delay, &join_key(path, "delay"));
        self.optional_template(c.working_dir, &join_key(path, "workingDir"), names);
        self.optional_template(c.shell, &join_key(path, "shell"), names);
        if let Some(container) = c.container {
            self.container(container, &join_key(path, "container"), names);
        }
        if let Some(run) = c.run {
            let run_path = join_key(path, "run");
            self.run(run, &run_path, names);
            if c.shell.is_some() {
                if run.shell.is_some() {
                    self.at(
                        &join_key(path, "shell"),
                        "`shell` and `run.shell` both set the script; keep one",
                    );
                } else if run.command.is_some() || run.args.is_some() {
                    self.at(
                        &join_key(path, "shell"),
                        "`shell` cannot be combined with `run.command` or `run.args`; keep one",
                    );
                }
            }
        }
        if let Some(content) = c.content {
            self.content(content, &join_key(path, "content"));
        }
        if let Some(artifacts) = c.artifacts {
            self.artifacts(artifacts, &join_key(path, "artifacts"), names);
        }
    }

    fn retry(&mut self, retry: &Retry, path: &str, names: &Names) {
        if retry.count < 1 {
            self.at(
                &join_key(path, "count"),
                format!("`retry.count` must be at least 1, found {}", retry.count),
            );
        }
        if let Some(until) = &retry.until {
            self.expression(until, &join_key(path, "until"), names, true);
        }
    }

    fn artifacts(&mut self, a: &Artifacts, path: &str, names: &Names) {
        self.optional_template(
            a.working_dir.as_deref(),
            &join_key(path, "workingDir"),
            names,
        );
        let paths = join_key(path, "paths");
        if a.paths.is_empty() {
            self.at(&paths, "`artifacts.paths` needs at least one glob pattern");
        }
        for (i, pattern) in a.paths.iter().enumerate() {
            let here = join_index(&paths, i);
            if pattern.trim().is_empty() {
                self.at(&here, "an empty artifact pattern matches nothing");
                continue;
            }
            if let Err(error) = GlobBuilder::new(pattern).literal_separator(true).build() {
                self.at(&here, format!("invalid glob pattern: {}", error.kind()));
                continue;
            }
            self.template(pattern, &here, names);
        }
    }

    fn parallel(&mut self, p: &Parallel, path: &str, depth: usize, outer: &Names) {
        for (field, value) in [
            ("count", &p.count),
            ("maxCount", &p.max_count),
            ("parallelism", &p.parallelism),
        ] {
            if let Some(value) = value {
                self.count_value(value, &join_key(path, field), outer);
            }
        }
        for (field, map) in [("matrix", &p.matrix), ("shards", &p.shards)] {
            for (key, value) in map {
                let here = join_key(&join_key(path, field), key);
                if !is_identifier(key) {
                    self.at_key(
                        &here,
                        format!(
                            "invalid {field} key {}: use letters, digits and `_`",
                            quote_for_message(key)
                        ),
                    );
                }
                match value {
                    Value::Array(_) => {}
                    Value::String(expression) => self.expression(expression, &here, outer, false),
                    other => self.at(
                        &here,
                        format!(
                            "expected a list of values or an expression, found {}",
                            describe(other)
                        ),
                    ),
                }
            }
        }
        self.config(&p.config, &join_key(path, "config"));
        let mut names = outer.clone();
        names.config.extend(p.config.keys().cloned());
        names.parallel = Some((
            p.matrix.keys().cloned().collect(),
            p.shards.keys().cloned().collect(),
        ));
        if let Some(description) = &p.description {
            self.template(description, &join_key(path, "description"), &names);
        }
        self.step_name(p.name.as_deref(), path, &names);
        self.common(
            &Common {
                condition: p.condition.as_deref(),
                retry: p.retry.as_ref(),
                timeout: p.timeout.as_deref(),
                delay: p.delay.as_deref(),
                working_dir: p.working_dir.as_deref(),
                shell: p.shell.as_deref(),
                run: p.run.as_ref(),
                container: p.container.as_ref(),
                content: p.content.as_ref(),
                artifacts: p.artifacts.as_ref(),
            },
            path,
            &names,
        );
        for (field, transfers) in [("transfer", &p.transfer), ("fetch", &p.fetch)] {
            for (i, transfer) in transfers.iter().enumerate() {
                let here = join_index(&join_key(path, field), i);
                if transfer.from.trim().is_empty() {
                    self.at(
                        &join_key(&here, "from"),
                        format!("`{field}` needs a `from` path"),
                    );
                }
                self.template(&transfer.from, &join_key(&here, "from"), &names);
            }
        }
        self.services(&p.services, &join_key(path, "services"), &names);
        self.steps(&p.setup, &join_key(path, "setup"), depth + 1, &names);
        self.steps(&p.steps, &join_key(path, "steps"), depth + 1, &names);
        self.steps(&p.after, &join_key(path, "after"), depth + 1, &names);
    }

    /// `count`, `maxCount`, `parallelism`: a positive integer or an expression giving one.
    fn count_value(&mut self, value: &Value, path: &str, names: &Names) {
        match value {
            Value::Number(n) if n.as_u64().is_some_and(|n| n >= 1) => {}
            Value::String(expression) => self.expression(expression, path, names, false),
            other => self.at(
                path,
                format!(
                    "expected a positive integer or an expression, found {}",
                    describe(other)
                ),
            ),
        }
    }

    fn duration(&mut self, text: Option<&str>, path: &str) {
        if let Some(text) = text
            && let Err(message) = parse_duration(text)
        {
            self.at(path, message);
        }
    }

    fn optional_template(&mut self, text: Option<&str>, path: &str, names: &Names) {
        if let Some(text) = text {
            self.template(text, path, names);
        }
    }

    fn template_list(&mut self, items: Option<&[String]>, path: &str, names: &Names) {
        for (i, item) in items.unwrap_or_default().iter().enumerate() {
            self.template(item, &join_index(path, i), names);
        }
    }

    /// A string that will be rendered: every `{{ ... }}` must parse and read known names.
    fn template(&mut self, text: &str, path: &str, names: &Names) {
        match template_expressions(text) {
            Err(error) => self.at(path, error.message),
            Ok(expressions) => {
                for expr in expressions {
                    self.names_in(&expr, path, names, false);
                }
            }
        }
    }

    /// A bare expression: `condition`, `retry.until`, `parallel.count`.
    fn expression(&mut self, text: &str, path: &str, names: &Names, condition: bool) {
        match Expr::parse(text) {
            Err(error) => self.at(path, format!("invalid expression: {}", error.message)),
            Ok(expr) => self.names_in(&expr, path, names, condition),
        }
    }

    fn names_in(&mut self, expr: &Expr, path: &str, names: &Names, condition: bool) {
        for name in expr.identifiers() {
            if let Err(message) = check_name(&name, names, condition) {
                self.at(path, format!("in `{}`: {message}", expr.source()));
            }
        }
    }
}

/// The step fields `parallel` repeats.
struct Common<'a> {
    condition: Option<&'a str>,
    retry: Option<&'a Retry>,
    timeout: Option<&'a str>,
    delay: Option<&'a str>,
    working_dir: Option<&'a str>,
    shell: Option<&'a str>,
    run: Option<&'a Run>,
    container: Option<&'a ContainerConfig>,
    content: Option<&'a Content>,
    artifacts: Option<&'a Artifacts>,
}

/// Whether an expression may read `name` here.
fn check_name(name: &str, names: &Names, condition: bool) -> Result<(), String> {
    let (root, rest) = match name.split_once('.') {
        Some((root, rest)) => (root, Some(rest)),
        None => (name, None),
    };
    let in_parallel = |what: &str| format!("`{what}` is only available inside `parallel`");
    match (root, rest) {
        ("config", Some(param)) => {
            if names.config.contains(param) {
                Ok(())
            } else if names.config.is_empty() {
                Err(format!(
                    "unknown config parameter `{param}`; no parameters are declared in `config`"
                ))
            } else {
                let declared: Vec<&str> = names.config.iter().map(String::as_str).collect();
                Err(format!(
                    "unknown config parameter `{param}`; declared: {}",
                    declared.join(", ")
                ))
            }
        }
        ("env", Some(var)) if !var.contains('.') => Ok(()),
        ("execution", Some("id" | "failed_tests")) => Ok(()),
        ("index" | "count", None) => match names.parallel {
            Some(_) => Ok(()),
            None => Err(in_parallel(root)),
        },
        ("matrix" | "shard", Some(key)) => match &names.parallel {
            None => Err(in_parallel(root)),
            Some((matrix, shards)) => {
                let keys = if root == "matrix" { matrix } else { shards };
                if keys.contains(key) {
                    Ok(())
                } else {
                    let field = if root == "matrix" { "matrix" } else { "shards" };
                    Err(format!(
                        "unknown {root} key `{key}`; not declared in `parallel.{field}`"
                    ))
                }
            }
        },
        ("passed" | "failed" | "always" | "never", None) if condition => Ok(()),
        _ => {
            let mut expected = vec![
                "config.<parameter>",
                "env.<NAME>",
                "execution.id",
                "execution.failed_tests",
            ];
            if names.parallel.is_some() {
                expected.extend(["index", "count", "matrix.<key>", "shard.<key>"]);
            }
            if condition {
                expected.extend(["passed", "failed", "always", "never"]);
            }
            Err(format!(
                "unknown name `{name}`; expected one of: {}",
                expected.join(", ")
            ))
        }
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Kubernetes' rule for environment variable names (C identifiers plus `-` and `.`).
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '-' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Kubernetes "qualified name": alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn qualified_name_problem(name: &str) -> Option<String> {
    let length = name.chars().count();
    if length > MAX_LABEL_CHARS {
        return Some(format!(
            "the name part is {length} characters long; the limit is {MAX_LABEL_CHARS}"
        ));
    }
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !ends_ok(name.chars().next()) || !ends_ok(name.chars().last()) {
        return Some("it must start and end with a letter or digit".to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Some("only letters, digits, `-`, `_` and `.` are allowed".to_owned());
    }
    None
}

fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let length = prefix.chars().count();
        if length > MAX_LABEL_PREFIX_CHARS {
            return Some(format!(
                "the prefix is {length} characters long; the limit is {MAX_LABEL_PREFIX_CHARS}"
            ));
        }
        let valid = !prefix.is_empty()
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && !part.starts_with('-')
                    && !part.ends_with('-')
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if !valid {
            return Some(
                "the prefix must be a lowercase DNS subdomain such as `example.com`".to_owned(),
            );
        }
    }
    if name.is_empty() {
        return Some("the name part is empty".to_owned());
    }
    qualified_name_problem(name)
}

fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    qualified_name_problem(value).map(|p| p.replace("the name part", "the value"))
}

fn regex_error(error: &regex::Error) -> String {
    // The regex crate's messages draw a caret diagram over several lines; keep the last line,
    // which says what is wrong, so the problem stays on one line.
    let text = error.to_string();
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map_or(text.clone(), |line| {
            line.trim().trim_start_matches("error: ").to_owned()
        })
}

fn matches_type(value: &Value, kind: ParameterType) -> bool {
    match kind {
        ParameterType::String => value.is_string(),
        ParameterType::Integer => value.is_i64() || value.is_u64(),
        ParameterType::Number => value.is_number(),
        ParameterType::Boolean => value.is_boolean(),
    }
}

fn type_name(kind: ParameterType) -> &'static str {
    match kind {
        ParameterType::String => "a string",
        ParameterType::Integer => "an integer",
        ParameterType::Number => "a number",
        ParameterType::Boolean => "a boolean",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("number `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {}", quote_for_message(s)),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a map".to_owned(),
    }
}

fn describe_short(value: &Value) -> String {
    match value {
        Value::String(s) => quote_for_message(s),
        other => other.to_string(),
    }
}
