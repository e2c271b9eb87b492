//! The real Testkube example files parse and validate without a single problem.

use std::path::PathBuf;

use serde_json::json;
use testloop_orchestrator::spec::{self, ParsedWorkflow};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/examples/testkube")
}

fn load(name: &str) -> Vec<ParsedWorkflow> {
    let path = examples().join(name);
    match spec::parse_file(&path) {
        Ok(parsed) => parsed,
        Err(problems) => {
            let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
            panic!("{name}:\n{}", shown.join("\n"));
        }
    }
}

fn names(parsed: &[ParsedWorkflow]) -> Vec<&str> {
    parsed
        .iter()
        .map(|p| p.workflow.metadata.name.as_str())
        .collect()
}

#[test]
fn every_example_file_is_valid() {
    for (file, count) in [
        ("curl.yaml", 3),
        ("junit.yaml", 3),
        ("k6.yaml", 8),
        ("playwright.yaml", 6),
        ("postman.yaml", 6),
        ("pytest.yaml", 4),
    ] {
        assert_eq!(load(file).len(), count, "{file}");
    }
}

#[test]
fn curl_values() {
    let parsed = load("curl.yaml");
    assert_eq!(
        names(&parsed),
        [
            "curl-workflow-smoke",
            "curl-workflow-smoke-private-registry",
            "curl-workflow-smoke-matrix"
        ]
    );
    let first = &parsed[0].workflow;
    assert_eq!(first.metadata.labels["tool"], "curl");
    assert_eq!(
        first.spec.job.as_ref().unwrap().active_deadline_seconds,
        Some(300)
    );
    let step = &first.spec.steps[0];
    assert_eq!(step.name.as_deref(), Some("Run tests"));
    assert_eq!(
        step.shell.as_deref(),
        Some("curl -f -LI https://testkube-test-page-lipsum.pages.dev/")
    );
    let resources = first
        .spec
        .container
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap();
    assert_eq!(resources.requests["memory"], "32Mi");
    // Each workflow keeps the text of its own document, and only that.
    assert!(
        parsed[0]
            .source
            .starts_with("apiVersion: testworkflows.testkube.io/v1\n")
    );
    assert!(!parsed[0].source.contains("---"));
    assert!(parsed[1].source.starts_with("apiVersion:"));
    assert!(
        parsed[1]
            .source
            .contains("curl-workflow-smoke-private-registry")
    );
    assert!(!parsed[1].source.contains("curl-workflow-smoke-matrix"));
    let matrix = &parsed[2].workflow.spec.steps[0]
        .parallel
        .as_ref()
        .unwrap()
        .matrix;
    assert_eq!(
        matrix["url"],
        json!([
            "https://testkube-test-page-lipsum.pages.dev/",
            "https://docs.testkube.io"
        ])
    );
    // Parsing a document's own source again gives the same workflow.
    let again = spec::parse(&parsed[2].source).unwrap();
    assert_eq!(again[0].workflow, parsed[2].workflow);
}

#[test]
fn k6_values() {
    let parsed = load("k6.yaml");
    let distributed = parsed
        .iter()
        .find(|p| p.workflow.metadata.name == "distributed-k6-workflow-smoke")
        .unwrap();
    let config = &distributed.workflow.spec.config;
    assert_eq!(config["vus"].default, Some(json!(2)));
    assert_eq!(config["duration"].default, Some(json!("2s")));
    let parallel = distributed.workflow.spec.steps[0]
        .parallel
        .as_ref()
        .unwrap();
    assert_eq!(parallel.count, Some(json!("config.workers")));
    assert_eq!(parallel.paused, Some(true));
    let shell = parallel.run.as_ref().unwrap().shell.as_deref().unwrap();
    assert!(shell.contains("--vus {{ shellquote(config.vus) }}"));
    let template = parsed[1].workflow.spec.steps[0].template.as_ref().unwrap();
    assert_eq!(template.name, "official/k6/v1");
    // `1.1.0` is not a number in YAML; it stays the text it is.
    assert_eq!(template.config["version"], json!("1.1.0"));
    let content = parsed[3].workflow.spec.content.as_ref().unwrap();
    assert!(
        content.files[0]
            .content
            .as_deref()
            .unwrap()
            .starts_with("import http")
    );
}

#[test]
fn playwright_and_postman_values() {
    let parsed = load("playwright.yaml");
    assert_eq!(
        parsed[1].workflow.description.as_deref(),
        Some("Playwright project with video recording enabled (in playwright config)")
    );
    let run = parsed[2].workflow.spec.steps[1].run.as_ref().unwrap();
    assert_eq!(run.command.as_deref(), Some(&["npx".to_owned()][..]));
    assert_eq!(run.args.as_ref().unwrap().len(), 4);
    assert_eq!(
        parsed[4].workflow.spec.steps[2].condition.as_deref(),
        Some("always")
    );

    let postman = load("postman.yaml");
    // The file ends with `---` and nothing after it: that is not a seventh document.
    assert_eq!(
        postman.last().unwrap().workflow.metadata.name,
        "postman-workflow-smoke-latest-image"
    );
    let pytest = load("pytest.yaml");
    assert_eq!(
        pytest[0].workflow.spec.steps[0].shell.as_deref(),
        Some("pip install -r requirements.txt\npytest tests/success\n")
    );
}
