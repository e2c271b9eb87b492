//! Bad workflow files: each problem is reported with its exact path, line, column and message.

use testloop_orchestrator::spec::{self, Problem};

/// The first four lines of a valid workflow; the spec starts on line 5.
const HEAD: &str =
    "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: demo\n";

fn problems(text: &str) -> Vec<Problem> {
    match spec::parse(text) {
        Ok(parsed) => panic!("expected problems, got {} workflows", parsed.len()),
        Err(problems) => problems,
    }
}

/// Asserts that `text` has exactly one problem, at `path`, `line`:`column`, whose message contains
/// every one of `words`.
#[track_caller]
fn one(text: &str, path: &str, line: usize, column: usize, words: &[&str]) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "expected one problem, got: {found:#?}");
    check(&found[0], path, line, column, words);
}

#[track_caller]
fn check(problem: &Problem, path: &str, line: usize, column: usize, words: &[&str]) {
    assert_eq!(problem.path, path, "{problem}");
    assert_eq!(
        (problem.line, problem.column),
        (Some(line), Some(column)),
        "{problem}"
    );
    for word in words {
        assert!(problem.message.contains(word), "{word:?} not in: {problem}");
    }
}

fn with_spec(spec: &str) -> String {
    format!("{HEAD}spec:\n{spec}")
}

// ---- unknown fields -------------------------------------------------------------------------

#[test]
fn unknown_top_level_field() {
    one(
        &format!("{HEAD}specs:\n  steps: []\n"),
        "specs",
        5,
        1,
        &[
            "unknown field `specs`",
            "did you mean `spec`?",
            "expected one of: apiVersion, kind, metadata, description, spec",
        ],
    );
}

#[test]
fn unknown_metadata_field() {
    one(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: demo\n  label:\n    a: b\n",
        "metadata.label",
        5,
        3,
        &["unknown field `label`", "did you mean `labels`?"],
    );
}

#[test]
fn unknown_spec_field() {
    one(
        &with_spec("  stepz:\n  - shell: echo\n"),
        "spec.stepz",
        6,
        3,
        &["unknown field `stepz`", "did you mean `steps`?"],
    );
}

#[test]
fn unknown_step_field_suggests_camel_case() {
    one(
        &with_spec("  steps:\n  - shell: echo\n    workingdir: /tmp\n"),
        "spec.steps[0].workingdir",
        8,
        5,
        &["unknown field `workingdir`", "did you mean `workingDir`?"],
    );
}

#[test]
fn unknown_nested_step_field() {
    one(
        &with_spec("  steps:\n  - name: outer\n    steps:\n    - name: inner\n      shel: echo\n"),
        "spec.steps[0].steps[0].shel",
        10,
        7,
        &["unknown field `shel`", "did you mean `shell`?"],
    );
}

#[test]
fn unknown_parallel_field() {
    one(
        &with_spec("  steps:\n  - parallel:\n      cont: 2\n      shell: echo\n"),
        "spec.steps[0].parallel.cont",
        8,
        7,
        &["unknown field `cont`", "did you mean `count`?"],
    );
}

#[test]
fn unknown_container_field() {
    one(
        &with_spec("  container:\n    imagee: alpine\n"),
        "spec.container.imagee",
        7,
        5,
        &[
            "unknown field `imagee`",
            "did you mean `image`?",
            "expected one of: image, imagePullPolicy",
        ],
    );
}

#[test]
fn unknown_field_without_a_close_name() {
    let found = problems(&with_spec("  steps:\n  - shell: echo\n    frobnicate: 1\n"));
    assert_eq!(found.len(), 1);
    check(
        &found[0],
        "spec.steps[0].frobnicate",
        8,
        5,
        &["unknown field `frobnicate`; expected one of:"],
    );
    assert!(!found[0].message.contains("did you mean"));
}

// ---- wrong types ----------------------------------------------------------------------------

#[test]
fn string_for_bool() {
    one(
        &with_spec("  steps:\n  - shell: echo\n    optional: \"yes\"\n"),
        "spec.steps[0].optional",
        8,
        15,
        &["expected a boolean", "found string \"yes\""],
    );
}

#[test]
fn yaml_1_1_yes_is_a_string_not_a_bool() {
    one(
        &with_spec("  steps:\n  - shell: echo\n    negative: yes\n"),
        "spec.steps[0].negative",
        8,
        15,
        &["expected a boolean", "found string \"yes\""],
    );
}

#[test]
fn map_for_list() {
    one(
        &with_spec("  steps:\n    name: x\n"),
        "spec.steps",
        7,
        5,
        &["expected a list, found a map"],
    );
}

#[test]
fn list_for_string() {
    one(
        &with_spec("  steps:\n  - shell: [echo, hi]\n"),
        "spec.steps[0].shell",
        7,
        12,
        &["expected a string, found a list"],
    );
}

#[test]
fn int_for_map() {
    one(
        &with_spec("  container: 5\n"),
        "spec.container",
        6,
        14,
        &["expected a map, found integer `5`"],
    );
}

#[test]
fn string_for_integer() {
    one(
        &with_spec("  steps:\n  - shell: echo\n    retry:\n      count: three\n"),
        "spec.steps[0].retry.count",
        9,
        14,
        &["expected an integer", "found string \"three\""],
    );
}

#[test]
fn negative_for_unsigned() {
    one(
        &with_spec("  job:\n    activeDeadlineSeconds: -5\n"),
        "spec.job.activeDeadlineSeconds",
        7,
        28,
        &[
            "expected an integer from 0 to 18446744073709551615",
            "found integer `-5`",
        ],
    );
}

#[test]
fn scalar_for_the_whole_spec() {
    one(
        &format!("{HEAD}spec: steps\n"),
        "spec",
        5,
        7,
        &["expected a map, found string \"steps\""],
    );
}

// ---- identity -------------------------------------------------------------------------------

#[test]
fn bad_api_version() {
    one(
        "apiVersion: testworkflows.testkube.io/v2\nkind: TestWorkflow\nmetadata:\n  name: demo\n",
        "apiVersion",
        1,
        13,
        &[
            "expected `testworkflows.testkube.io/v1`",
            "found \"testworkflows.testkube.io/v2\"",
        ],
    );
}

#[test]
fn missing_api_version() {
    one(
        "kind: TestWorkflow\nmetadata:\n  name: demo\n",
        "apiVersion",
        1,
        1,
        &["expected `testworkflows.testkube.io/v1`; it is missing"],
    );
}

#[test]
fn bad_kind() {
    one(
        "apiVersion: testworkflows.testkube.io/v1\nkind: Test\nmetadata:\n  name: demo\n",
        "kind",
        2,
        7,
        &["expected `TestWorkflow`", "found \"Test\""],
    );
}

#[test]
fn missing_name() {
    one(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  labels:\n    a: b\n",
        "metadata.name",
        4,
        3,
        &["required: every workflow needs a name"],
    );
}

#[test]
fn uppercase_name() {
    one(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: MyFlow\n",
        "metadata.name",
        4,
        9,
        &["\"MyFlow\" is not a valid name", "DNS-1123", "uppercase"],
    );
}

#[test]
fn name_with_underscore_and_leading_dash() {
    one(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: -my_flow\n",
        "metadata.name",
        4,
        9,
        &["contains `_`", "starts with `-`"],
    );
}

#[test]
fn name_with_trailing_dash() {
    one(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: flow-\n",
        "metadata.name",
        4,
        9,
        &["ends with `-`"],
    );
}

#[test]
fn bad_label_key_and_value() {
    let found = problems(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: demo\n  labels:\n    Bad.Prefix/x: ok\n    tool: -bad\n",
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    check(
        &found[0],
        "metadata.labels[\"Bad.Prefix/x\"]",
        6,
        5,
        &["invalid key", "prefix must be a lowercase DNS subdomain"],
    );
    check(
        &found[1],
        "metadata.labels.tool",
        7,
        11,
        &[
            "invalid label value \"-bad\"",
            "start and end with a letter or digit",
        ],
    );
}

// ---- durations, conditions, retry ------------------------------------------------------------

#[test]
fn bad_timeout_unit() {
    one(
        &with_spec("  steps:\n  - shell: echo\n    timeout: 5min\n"),
        "spec.steps[0].timeout",
        8,
        14,
        &["\"5min\" has an unknown unit `min`", "1h30m"],
    );
}

#[test]
fn delay_without_unit() {
    one(
        &with_spec("  steps:\n  - shell: echo\n    delay: 10\n"),
        "spec.steps[0].delay",
        8,
        12,
        &["\"10\" is missing a unit"],
    );
}

#[test]
fn condition_that_does_not_parse() {
    one(
        &with_spec("  steps:\n  - shell: echo\n    condition: passed &&\n"),
        "spec.steps[0].condition",
        8,
        16,
        &["invalid expression", "at position 10", "expected a value"],
    );
}

#[test]
fn condition_with_unknown_name() {
    one(
        &with_spec("  steps:\n  - shell: echo\n    condition: passd\n"),
        "spec.steps[0].condition",
        8,
        16,
        &["unknown name `passd`", "passed, failed, always, never"],
    );
}

#[test]
fn retry_count_zero_and_bad_until() {
    let found = problems(&with_spec(
        "  steps:\n  - shell: echo\n    retry:\n      count: 0\n      until: 'passed =='\n",
    ));
    assert_eq!(found.len(), 2, "{found:#?}");
    check(
        &found[0],
        "spec.steps[0].retry.count",
        9,
        14,
        &["`retry.count` must be at least 1, found 0"],
    );
    check(
        &found[1],
        "spec.steps[0].retry.until",
        10,
        14,
        &["invalid expression", "at position 10"],
    );
}

// ---- config ---------------------------------------------------------------------------------

#[test]
fn unknown_config_type() {
    one(
        &with_spec("  config:\n    who:\n      type: text\n"),
        "spec.config.who.type",
        8,
        13,
        &[
            "expected one of: string, integer, number, boolean",
            "found string \"text\"",
        ],
    );
}

#[test]
fn default_not_matching_type() {
    one(
        &with_spec("  config:\n    workers: {type: integer, default: two}\n"),
        "spec.config.workers.default",
        7,
        39,
        &["the default must be an integer", "found string \"two\""],
    );
}

#[test]
fn enum_value_not_matching_type() {
    one(
        &with_spec("  config:\n    flag:\n      type: boolean\n      enum: [true, 'no']\n"),
        "spec.config.flag.enum[1]",
        9,
        20,
        &["an enum value must be a boolean", "found string \"no\""],
    );
}

#[test]
fn default_not_in_enum() {
    one(
        &with_spec(
            "  config:\n    browser:\n      type: string\n      default: safari\n      enum: [chrome, firefox]\n",
        ),
        "spec.config.browser.default",
        9,
        16,
        &["the default \"safari\" is not one of the enum values: \"chrome\", \"firefox\""],
    );
}

#[test]
fn bad_regex_pattern() {
    one(
        &with_spec("  config:\n    tag:\n      type: string\n      pattern: '[a-'\n"),
        "spec.config.tag.pattern",
        9,
        16,
        &["invalid regular expression", "unclosed character class"],
    );
}

#[test]
fn parameter_name_not_an_identifier() {
    one(
        &with_spec("  config:\n    my-param: {type: string}\n"),
        "spec.config.my-param",
        7,
        5,
        &["invalid parameter name \"my-param\""],
    );
}

// ---- templates ------------------------------------------------------------------------------

#[test]
fn unknown_expression_root() {
    one(
        &with_spec("  steps:\n  - shell: echo {{ secrets.token }}\n"),
        "spec.steps[0].shell",
        7,
        12,
        &[
            "in `secrets.token`",
            "unknown name `secrets.token`",
            "config.<parameter>, env.<NAME>, execution.id",
        ],
    );
}

#[test]
fn undeclared_config_parameter() {
    one(
        &with_spec(
            "  config:\n    vus: {type: integer, default: 1}\n  steps:\n  - shell: k6 --vus {{ config.vu }}\n",
        ),
        "spec.steps[0].shell",
        9,
        12,
        &["unknown config parameter `vu`", "declared: vus"],
    );
}

#[test]
fn unterminated_template() {
    one(
        &with_spec("  steps:\n  - shell: echo {{ config.x\n"),
        "spec.steps[0].shell",
        7,
        12,
        &["unterminated `{{` at position 6", "no closing `}}`"],
    );
}

#[test]
fn unknown_function_in_env_value() {
    one(
        &with_spec("  container:\n    env:\n    - name: A\n      value: '{{ base64(env.B) }}'\n"),
        "spec.container.env[0].value",
        9,
        14,
        &["unknown function `base64`", "known functions: shellquote"],
    );
}

#[test]
fn index_outside_parallel() {
    one(
        &with_spec("  steps:\n  - shell: echo {{ index }}\n"),
        "spec.steps[0].shell",
        7,
        12,
        &["`index` is only available inside `parallel`"],
    );
}

#[test]
fn undeclared_matrix_key() {
    one(
        &with_spec(
            "  steps:\n  - parallel:\n      matrix:\n        url: [a, b]\n      shell: curl {{ matrix.uri }}\n",
        ),
        "spec.steps[0].parallel.shell",
        10,
        14,
        &["unknown matrix key `uri`"],
    );
}

// ---- step shape -----------------------------------------------------------------------------

#[test]
fn shell_and_run_shell_together() {
    one(
        &with_spec("  steps:\n  - shell: echo a\n    run:\n      shell: echo b\n"),
        "spec.steps[0].shell",
        7,
        12,
        &["`shell` and `run.shell` both set the script"],
    );
}

#[test]
fn run_shell_with_command() {
    one(
        &with_spec("  steps:\n  - run:\n      shell: echo b\n      command: [echo]\n"),
        "spec.steps[0].run.shell",
        8,
        14,
        &["`run.shell` cannot be combined with `run.command` or `run.args`"],
    );
}

#[test]
fn invalid_env_name() {
    one(
        &with_spec(
            "  steps:\n  - shell: echo\n    container:\n      env:\n      - name: 1BAD\n        value: x\n",
        ),
        "spec.steps[0].container.env[0].name",
        10,
        15,
        &["invalid environment variable name \"1BAD\""],
    );
}

#[test]
fn content_file_without_path() {
    one(
        &with_spec("  content:\n    files:\n    - content: hello\n"),
        "spec.content.files[0].path",
        8,
        7,
        &["a content file needs a `path`"],
    );
}

#[test]
fn artifacts_without_paths_and_with_a_bad_glob() {
    let found = problems(&with_spec(
        "  steps:\n  - shell: echo\n    artifacts:\n      workingDir: /tmp\n  - shell: echo\n    artifacts:\n      paths: ['reports/[a']\n",
    ));
    assert_eq!(found.len(), 2, "{found:#?}");
    check(
        &found[0],
        "spec.steps[0].artifacts.paths",
        9,
        7,
        &["needs at least one glob pattern"],
    );
    check(
        &found[1],
        "spec.steps[1].artifacts.paths[0]",
        12,
        15,
        &["invalid glob pattern", "unclosed character class"],
    );
}

#[test]
fn parallel_count_that_is_not_a_count() {
    one(
        &with_spec("  steps:\n  - parallel:\n      count: [1]\n      shell: echo\n"),
        "spec.steps[0].parallel.count",
        8,
        14,
        &["expected a positive integer or an expression, found a list"],
    );
}

// ---- YAML-level problems --------------------------------------------------------------------

#[test]
fn duplicate_keys() {
    one(
        &with_spec("  steps:\n  - shell: echo a\n    name: one\n    shell: echo b\n"),
        "spec.steps[0].shell",
        9,
        5,
        &["duplicate key `shell`", "first written on line 7"],
    );
}

#[test]
fn duplicate_workflow_names() {
    let doc = format!("{HEAD}spec:\n  steps:\n  - shell: echo\n");
    let found = problems(&format!("{doc}---\n{doc}"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].document, 1);
    check(
        &found[0],
        "metadata.name",
        12,
        9,
        &["duplicate workflow name `demo`", "document 1"],
    );
}

#[test]
fn tab_indentation_is_a_syntax_error() {
    one(
        "apiVersion: testworkflows.testkube.io/v1\nmetadata:\n\tname: demo\n",
        "",
        3,
        2,
        &["invalid YAML", "tabs"],
    );
}

#[test]
fn unclosed_flow_list_is_a_syntax_error() {
    let found = problems(&with_spec("  steps: [\n"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, "");
    assert_eq!(found[0].line, Some(7));
    assert!(found[0].message.starts_with("invalid YAML"), "{}", found[0]);
}

#[test]
fn empty_file() {
    for text in ["", "# nothing here\n", "\n\n"] {
        let found = problems(text);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].column), (None, None));
        assert!(
            found[0].message.contains("the file is empty"),
            "{}",
            found[0]
        );
    }
}

#[test]
fn document_that_is_a_list() {
    one(
        "- apiVersion: testworkflows.testkube.io/v1\n",
        "",
        1,
        1,
        &["expected a TestWorkflow", "found a list"],
    );
}

#[test]
fn empty_document_in_the_middle() {
    let doc = format!("{HEAD}spec: {{}}\n");
    let found = problems(&format!("{doc}---\n---\n{}", doc.replace("demo", "other")));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].document, 1);
    assert!(
        found[0].message.contains("the document is empty"),
        "{}",
        found[0]
    );
}

#[test]
fn unsupported_tag() {
    let found = problems(&with_spec("  pvcs:\n    a: !!binary aGk=\n"));
    check(
        &found[0],
        "spec.pvcs.a",
        7,
        8,
        &["unsupported tag `!!binary` on a scalar"],
    );
    one(
        &with_spec("  steps:\n  - shell: !secret token\n"),
        "spec.steps[0].shell",
        7,
        12,
        &["unsupported tag `!secret`"],
    );
}

#[test]
fn alias_bomb_is_refused() {
    let mut text = format!("{HEAD}spec:\n  pvcs:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("    a{i}: &a{i} [{refs}]\n"));
    }
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, "spec.pvcs.a5[0]");
    assert!(
        found[0].message.contains("more than 200000 YAML nodes"),
        "{}",
        found[0]
    );
}

#[test]
fn aliases_within_budget_are_expanded() {
    let text = format!(
        "{HEAD}spec:\n  container:\n    env: &env\n    - name: A\n      value: x\n  steps:\n  - shell: echo\n    container:\n      env: *env\n"
    );
    let parsed = spec::parse(&text).unwrap();
    let step = &parsed[0].workflow.spec.steps[0];
    assert_eq!(step.container.as_ref().unwrap().env[0].name, "A");
}

// ---- everything at once ---------------------------------------------------------------------

#[test]
fn every_independent_problem_is_reported() {
    let text = "apiVersion: testworkflows.testkube.io/v1\n\
                kind: Workflow\n\
                metadata:\n  name: Bad_Name\n\
                spec:\n  config:\n    n: {type: integer, default: x}\n\
                \x20 steps:\n\
                \x20 - shell: echo {{ config.m }}\n\
                \x20   timeout: soon\n\
                \x20   optionl: true\n\
                \x20 - run: {shell: [a]}\n\
                ---\n\
                apiVersion: testworkflows.testkube.io/v1\n\
                kind: TestWorkflow\n\
                metadata: {name: ok}\n\
                spec:\n  after:\n  - condition: 'always ||'\n";
    let found = problems(text);
    let summary: Vec<(usize, &str, Option<usize>)> = found
        .iter()
        .map(|p| (p.document, p.path.as_str(), p.line))
        .collect();
    assert_eq!(
        summary,
        [
            (0, "kind", Some(2)),
            (0, "metadata.name", Some(4)),
            (0, "spec.config.n.default", Some(7)),
            (0, "spec.steps[0].shell", Some(9)),
            (0, "spec.steps[0].timeout", Some(10)),
            (0, "spec.steps[0].optionl", Some(11)),
            (0, "spec.steps[1].run.shell", Some(12)),
            (1, "spec.after[0].condition", Some(19)),
        ],
        "{found:#?}"
    );
    // The Display form is what a user reads.
    assert_eq!(
        found[0].to_string(),
        "2:7: kind: expected `TestWorkflow`; found \"Workflow\""
    );
}

#[test]
fn nested_anchors_are_bounded_too() {
    // Every level anchored: each anchor keeps a copy of everything below it.
    let mut inner = vec!["1"; 20_000].join(",");
    for level in 0..40 {
        inner = format!("&l{level} [{inner}]");
    }
    let found = problems(&with_spec(&format!("  pvcs:\n    deep: {inner}\n")));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("anchors (`&name`) in this document hold more than 200000"),
        "{}",
        found[0]
    );
}

#[test]
fn odd_inputs_are_problems_not_panics() {
    for text in [
        "[",
        "{",
        "]",
        "*a",
        "&a",
        "a: *nope",
        "? [a, b]\n: c\n",
        "!!binary aGk=",
        "%YAML 1.2\n---\na: 1\n",
        "...\n",
        "---\n...\n---\n",
        "a: b: c",
        "- - - -",
        "\u{feff}apiVersion: x",
        "key: \"unterminated",
        "a: 'é\u{1F600}'\nb: [",
        "spec: {steps: [{parallel: {steps: [{shell: 1}]}}]}",
        "apiVersion: [1]\nkind: {a: b}\nmetadata: 3\n",
        "metadata:\n  name: demo\n  labels: [a]\n",
        "spec:\n  config:\n    x: {type: [string]}\n",
        "spec:\n  steps: [1, 'a', null, true]\n",
    ] {
        let result = spec::parse(text);
        assert!(result.is_err(), "{text:?} should not be a valid workflow");
        for problem in result.unwrap_err() {
            assert!(!problem.message.is_empty());
        }
    }
}
