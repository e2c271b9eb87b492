//! Every limit at its edge: the limit itself passes, one more fails with a message naming it.

use testloop_orchestrator::spec::expr::Expr;
use testloop_orchestrator::spec::limits::*;
use testloop_orchestrator::spec::yaml::{self, Node, NodeKind};
use testloop_orchestrator::spec::{self, Problem};

fn workflow(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

#[track_caller]
fn passes(text: &str) {
    if let Err(problems) = spec::parse(text) {
        panic!("{:#?}", &problems[..problems.len().min(3)]);
    }
}

/// Asserts that the file fails with a problem at `path` whose message names `limit`.
#[track_caller]
fn fails(text: &str, path: &str, limit: usize) -> Problem {
    let problems = spec::parse(text).expect_err("expected the limit to be enforced");
    let found = problems
        .iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("no problem at {path:?}: {problems:#?}"));
    assert!(
        found.message.contains(&format!("limit is {limit}")),
        "the message does not name the limit {limit}: {found}"
    );
    found.clone()
}

#[test]
fn file_size() {
    let base = workflow("demo", "  steps:\n  - shell: echo\n");
    let pad = MAX_FILE_BYTES - base.len() - 2;
    let at_limit = format!("{base}#{}\n", "x".repeat(pad));
    assert_eq!(at_limit.len(), MAX_FILE_BYTES);
    passes(&at_limit);
    let over = format!("{base}#{}\n", "x".repeat(pad + 1));
    let problem = fails(&over, "", MAX_FILE_BYTES);
    assert_eq!(problem.line, None);
    assert!(problem.message.contains("1 MiB"));
}

#[test]
fn parse_file_refuses_a_large_file_and_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    std::fs::write(&path, "#".repeat(MAX_FILE_BYTES + 1)).unwrap();
    let problems = spec::parse_file(&path).unwrap_err();
    assert!(
        problems[0]
            .message
            .contains(&format!("limit is {MAX_FILE_BYTES}"))
    );
    let missing = spec::parse_file(&dir.path().join("missing.yaml")).unwrap_err();
    assert!(
        missing[0].message.starts_with("cannot read"),
        "{}",
        missing[0]
    );
}

fn documents(count: usize) -> String {
    (0..count)
        .map(|i| workflow(&format!("w{i}"), "  steps:\n  - shell: echo\n"))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn documents_per_file() {
    assert_eq!(
        spec::parse(&documents(MAX_DOCUMENTS)).unwrap().len(),
        MAX_DOCUMENTS
    );
    let problem = fails(&documents(MAX_DOCUMENTS + 1), "", MAX_DOCUMENTS);
    assert_eq!(problem.document, MAX_DOCUMENTS);
}

fn flat_steps(count: usize) -> String {
    // Spread over setup, steps and after, and nested, to show that all of them count.
    let mut spec = String::from(
        "  setup:\n  - shell: echo\n  after:\n  - shell: echo\n  steps:\n  - name: group\n    steps:\n",
    );
    for _ in 0..count - 3 {
        spec.push_str("    - shell: echo\n");
    }
    workflow("demo", &spec)
}

#[test]
fn steps_per_workflow() {
    passes(&flat_steps(MAX_STEPS));
    fails(&flat_steps(MAX_STEPS + 1), "spec", MAX_STEPS);
}

#[test]
fn steps_inside_parallel_count() {
    let mut spec = String::from("  steps:\n  - parallel:\n      count: 2\n      steps:\n");
    for _ in 0..MAX_STEPS {
        spec.push_str("      - shell: echo\n");
    }
    fails(&workflow("demo", &spec), "spec", MAX_STEPS);
}

fn nested_steps(depth: usize) -> String {
    let mut spec = String::from("  steps:\n");
    for level in 0..depth {
        let indent = "  ".repeat(level * 2 + 1);
        spec.push_str(&format!("{indent}- name: level{level}\n{indent}  steps:\n"));
    }
    spec.push_str(&format!("{}- shell: echo\n", "  ".repeat(depth * 2 + 1)));
    workflow("demo", &spec)
}

#[test]
fn step_depth() {
    // `depth - 1` groups around one leaf step: the leaf is at `depth`.
    passes(&nested_steps(MAX_STEP_DEPTH - 1));
    let mut path = String::from("spec.steps[0]");
    for _ in 0..MAX_STEP_DEPTH {
        path.push_str(".steps[0]");
    }
    fails(&nested_steps(MAX_STEP_DEPTH), &path, MAX_STEP_DEPTH);
}

/// A document whose deepest collection is `depth` levels down: root map (1), `spec` (2), `pvcs`
/// (3), then nested lists.
fn yaml_depth(depth: usize) -> String {
    let lists = depth - 3;
    workflow(
        "demo",
        &format!(
            "  pvcs:\n    deep: {}1{}\n",
            "[".repeat(lists),
            "]".repeat(lists)
        ),
    )
}

#[test]
fn yaml_depth_limit() {
    passes(&yaml_depth(MAX_YAML_DEPTH));
    let problem = fails(
        &yaml_depth(MAX_YAML_DEPTH + 1),
        &format!("spec.pvcs.deep{}", "[0]".repeat(MAX_YAML_DEPTH - 3)),
        MAX_YAML_DEPTH,
    );
    assert_eq!(problem.line, Some(7));
}

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// A document with `a` items in an anchored list, the same list again through an alias, and `c`
/// items in a plain list: aliases count in full against the budget.
fn lists(a: usize, c: usize) -> String {
    let items = |n: usize| vec!["1"; n].join(",");
    workflow(
        "demo",
        &format!(
            "  pvcs:\n    a: &a [{}]\n    b: *a\n    c: [{}]\n",
            items(a),
            items(c)
        ),
    )
}

#[test]
fn yaml_node_budget() {
    let stream = yaml::parse_stream(&lists(0, 0), MAX_DOCUMENTS);
    let items = MAX_YAML_NODES - count_nodes(&stream.documents[0].root);
    let (a, c) = (items / 2, items % 2);
    let at_limit = lists(a, c);
    let stream = yaml::parse_stream(&at_limit, MAX_DOCUMENTS);
    assert_eq!(count_nodes(&stream.documents[0].root), MAX_YAML_NODES);
    passes(&at_limit);
    let problem = fails(
        &lists(a, c + 1),
        &format!("spec.pvcs.c[{c}]"),
        MAX_YAML_NODES,
    );
    assert!(problem.message.contains("aliases count in full"));
}

#[test]
fn metadata_name_length() {
    passes(&workflow(&"a".repeat(MAX_NAME_CHARS), "  steps: []\n"));
    fails(
        &workflow(&"a".repeat(MAX_NAME_CHARS + 1), "  steps: []\n"),
        "metadata.name",
        MAX_NAME_CHARS,
    );
}

#[test]
fn step_name_length() {
    let spec = |n: usize| format!("  steps:\n  - name: {}\n    shell: echo\n", "s".repeat(n));
    passes(&workflow("demo", &spec(MAX_STEP_NAME_CHARS)));
    fails(
        &workflow("demo", &spec(MAX_STEP_NAME_CHARS + 1)),
        "spec.steps[0].name",
        MAX_STEP_NAME_CHARS,
    );
}

fn labelled(key: &str, value: &str) -> String {
    format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: demo\n  labels:\n    {key}: {value}\n"
    )
}

#[test]
fn label_value_length() {
    passes(&labelled("k", &"v".repeat(MAX_LABEL_CHARS)));
    fails(
        &labelled("k", &"v".repeat(MAX_LABEL_CHARS + 1)),
        "metadata.labels.k",
        MAX_LABEL_CHARS,
    );
}

#[test]
fn label_key_name_length() {
    let key = |n: usize| format!("example.com/{}", "k".repeat(n));
    passes(&labelled(&key(MAX_LABEL_CHARS), "v"));
    let long = key(MAX_LABEL_CHARS + 1);
    let problem = fails(
        &labelled(&long, "v"),
        &format!("metadata.labels[{long:?}]"),
        MAX_LABEL_CHARS,
    );
    assert_eq!((problem.line, problem.column), (Some(6), Some(5)));
}

#[test]
fn label_key_prefix_length() {
    // DNS labels of 50 characters joined by dots, cut to the wanted length.
    let prefix = |n: usize| {
        let mut p = vec!["p".repeat(49); 6].join(".");
        p.truncate(n);
        p
    };
    passes(&labelled(
        &format!("{}/k", prefix(MAX_LABEL_PREFIX_CHARS)),
        "v",
    ));
    let long = format!("{}/k", prefix(MAX_LABEL_PREFIX_CHARS + 1));
    fails(
        &labelled(&long, "v"),
        &format!("metadata.labels[{long:?}]"),
        MAX_LABEL_PREFIX_CHARS,
    );
}

#[test]
fn expression_length() {
    // `'...'` of exactly the limit, inside `{{ }}`.
    let template = |n: usize| {
        format!(
            "  steps:\n  - shell: echo {{{{ '{}' }}}}\n",
            "x".repeat(n - 2)
        )
    };
    passes(&workflow("demo", &template(MAX_EXPRESSION_CHARS)));
    fails(
        &workflow("demo", &template(MAX_EXPRESSION_CHARS + 1)),
        "spec.steps[0].shell",
        MAX_EXPRESSION_CHARS,
    );
    // A condition is one expression: `passed` then `&&passed` as often as fits under the limit.
    let k = (MAX_EXPRESSION_CHARS - 6) / 8;
    let condition = format!("passed{}", "&&passed".repeat(k));
    passes(&workflow(
        "demo",
        &format!("  steps:\n  - shell: echo\n    condition: {condition}\n"),
    ));
    let over = format!(
        "  steps:\n  - shell: echo\n    condition: '{}'\n",
        "1".repeat(MAX_EXPRESSION_CHARS + 1)
    );
    fails(
        &workflow("demo", &over),
        "spec.steps[0].condition",
        MAX_EXPRESSION_CHARS,
    );
}

#[test]
fn expression_depth() {
    // Each pair of parentheses is two levels (the ternary and the unary it contains), on top of
    // the two of the outermost expression.
    let nested = |pairs: usize| format!("{}1{}", "(".repeat(pairs), ")".repeat(pairs));
    let deepest = (MAX_EXPRESSION_DEPTH - 2) / 2;
    assert!(Expr::parse(&nested(deepest)).is_ok());
    let error = Expr::parse(&nested(deepest + 1)).unwrap_err();
    assert!(
        error
            .message
            .contains(&format!("limit is {MAX_EXPRESSION_DEPTH}")),
        "{error}"
    );
    // A hostile expression well within the length limit is refused without exhausting the stack.
    assert!(Expr::parse(&nested(2000)).is_err());
    assert!(Expr::parse(&"!".repeat(4000)).is_err());
}

fn parameters(count: usize) -> String {
    let mut spec = String::from("  config:\n");
    for i in 0..count {
        spec.push_str(&format!("    p{i}: {{type: string}}\n"));
    }
    workflow("demo", &spec)
}

#[test]
fn config_parameters() {
    passes(&parameters(MAX_CONFIG_PARAMETERS));
    fails(
        &parameters(MAX_CONFIG_PARAMETERS + 1),
        "spec.config",
        MAX_CONFIG_PARAMETERS,
    );
}

#[test]
fn config_value_length() {
    let spec = |n: usize| {
        format!(
            "  config:\n    big: {{type: string, default: '{}'}}\n",
            "v".repeat(n)
        )
    };
    passes(&workflow("demo", &spec(MAX_CONFIG_VALUE_BYTES)));
    fails(
        &workflow("demo", &spec(MAX_CONFIG_VALUE_BYTES + 1)),
        "spec.config.big.default",
        MAX_CONFIG_VALUE_BYTES,
    );
}
