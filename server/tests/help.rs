//! The help texts teach by example. (Being an integration test of this package also makes
//! `cargo test --workspace` build the `testloop` binary that the end-to-end tests in `tests/` run.)

use std::process::Command;

fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_testloop"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run testloop --help");
    assert!(output.status.success(), "{args:?} --help failed");
    String::from_utf8(output.stdout).expect("utf-8 help")
}

#[test]
fn every_command_has_examples_that_use_it() {
    let top = help(&[]);
    for command in ["run", "validate", "executions", "logs", "serve"] {
        assert!(
            top.contains(&format!("  {command} ")),
            "`{command}` missing from:\n{top}"
        );
        let text = help(&[command]);
        let examples = text
            .split_once("Examples:")
            .map(|(_, examples)| examples)
            .unwrap_or_else(|| panic!("no examples in `testloop {command} --help`:\n{text}"));
        assert!(
            examples.contains(&format!("testloop {command}")),
            "the examples of `{command}` do not use it:\n{examples}"
        );
    }
}

#[test]
fn run_help_states_the_exit_statuses() {
    let text = help(&["run"]);
    assert!(
        text.contains("Exit status: 0 when the execution passed, 1 when it failed"),
        "{text}"
    );
}
