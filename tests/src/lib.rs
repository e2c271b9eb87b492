//! Support for end-to-end tests that drive the real `testloop` binary as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `testloop` binary built alongside these tests (`cargo test --workspace` builds it), or
/// `$TESTLOOP_BIN`.
pub fn testloop_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TESTLOOP_BIN") {
        return PathBuf::from(bin);
    }
    // Test executables live in target/<profile>/deps; the binary one level up.
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let bin = profile_dir.join("testloop");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p testloop-server` or `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// The repository's root (for `examples/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// A `testloop` command using `data_dir`.
pub fn testloop(data_dir: &Path) -> Command {
    let mut command = Command::new(testloop_bin());
    command
        .env("TESTLOOP_HOME", data_dir)
        .env_remove("TESTLOOP_SANDBOX")
        .current_dir(repo_root());
    command
}

/// What a finished command printed, for assertions and failure messages.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `testloop ARGS` to completion.
pub fn run(data_dir: &Path, args: &[&str]) -> Ran {
    testloop(data_dir)
        .args(args)
        .output()
        .expect("run testloop")
        .into()
}

/// The one execution id printed by `testloop run`.
pub fn execution_id(ran: &Ran) -> String {
    ran.stdout
        .split_whitespace()
        .skip_while(|word| *word != "execution")
        .nth(1)
        .unwrap_or_else(|| panic!("no execution id in {ran:?}"))
        .to_owned()
}
