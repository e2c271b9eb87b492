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

/// A `testloop serve --transport http --listen 127.0.0.1:0` running in the background, killed
/// when dropped. Its address is read from the `listening on http://…` line on stderr.
pub struct HttpServer {
    pub child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// How long a server may take to start listening.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

impl HttpServer {
    /// Starts a server on a free loopback port; `token` becomes `TESTLOOP_TOKEN`.
    pub fn start(data_dir: &Path, token: Option<&str>, extra_args: &[&str]) -> Self {
        Self::start_with_env(data_dir, token, extra_args, &[])
    }

    /// [`HttpServer::start`] with extra environment variables (such as `TESTLOOP_LOG`).
    pub fn start_with_env(
        data_dir: &Path,
        token: Option<&str>,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = testloop(data_dir);
        command
            .args(["serve", "--transport", "http", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .envs(env.iter().copied())
            .env_remove("TESTLOOP_TOKEN")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(token) = token {
            command.env("TESTLOOP_TOKEN", token);
        }
        let mut child = command.spawn().expect("start testloop serve");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (found, address) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        let collected = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let address = rest.split_whitespace().next().unwrap_or_default();
                    let _ = found.send(address.to_owned());
                }
                let mut text = collected.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        match address.recv_timeout(START_TIMEOUT) {
            Ok(address) => Self {
                child,
                address,
                stderr,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(std::time::Duration::from_millis(100));
                panic!(
                    "testloop serve did not start listening:\n{}",
                    stderr.lock().unwrap()
                );
            }
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the server's stderr contains `needle`, at most `timeout`: it is read by
    /// another thread, so a line the server has written may not have arrived yet.
    pub fn stderr_contains(&self, needle: &str, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM (or another signal).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let result = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(result, 0, "kill({})", self.child.id());
    }

    /// Waits for the server to exit, at most `timeout`; its exit code, or `None` when still
    /// running (or killed by a signal).
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<Option<i32>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for testloop serve") {
                return Some(status.code());
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON payloads of the `data:` lines of a server-sent-events text.
pub fn sse_data(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect()
}
