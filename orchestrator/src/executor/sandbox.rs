//! How a local unit's workspace appears at `/data` without touching the host's `/data`.
//!
//! Testkube workflows hard-code `/data/repo`, `/data/artifacts`. Three ways to honour that, best
//! first:
//!
//! - **namespace** (running as root): each unit gets a private mount namespace whose root is a
//!   tmpfs holding binds of the host's top-level directories, plus the workspace at `/data` (the
//!   view bubblewrap would build; testloop builds it itself, see [`super::mountns`]). Each step
//!   joins that namespace with `setns(2)` just before `exec`, so a step costs one `fork`+`exec`,
//!   as without a sandbox.
//! - **bwrap** (bubblewrap works without root, through user namespaces): each step is started
//!   inside its own bubblewrap with the same view. Correct, a few milliseconds slower per step.
//! - **none** (no namespaces here): `/data` is rewritten to the workspace's host path in working
//!   directories, commands, arguments, environment values, file and artifact paths. Best effort: a
//!   path computed at run time by the test itself is not rewritten.
//!
//! `auto` picks the first that works on this machine; `TESTLOOP_SANDBOX` or `--sandbox` forces one.

use std::ffi::OsString;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::OnceLock;

use super::spawn::{Environment, ProcessSpec};
use super::{Action, Command, ExecutorError, WORKSPACE_MOUNT};

/// Which isolation to use for `/data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxMode {
    #[default]
    Auto,
    Namespace,
    Bwrap,
    None,
}

impl FromStr for SandboxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "namespace" => Ok(Self::Namespace),
            "bwrap" => Ok(Self::Bwrap),
            "none" => Ok(Self::None),
            other => Err(format!(
                "unknown sandbox `{other}`: expected auto, namespace, bwrap or none"
            )),
        }
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Namespace => "namespace",
            Self::Bwrap => "bwrap",
            Self::None => "none",
        })
    }
}

/// A unit's view of the filesystem, alive as long as the unit runs.
pub struct Sandbox {
    workspace: PathBuf,
    kind: Kind,
    /// This process's environment when the unit started, which every step starts from.
    inherited_env: Environment,
}

enum Kind {
    Namespace {
        /// The mount namespace (see [`super::mountns`]); open, it keeps the namespace alive.
        namespace: OwnedFd,
    },
    Bwrap {
        view: Vec<OsString>,
    },
    Rewrite,
}

impl Sandbox {
    /// Prepares the view of `workspace` at `/data` in the given mode.
    pub fn start(mode: SandboxMode, workspace: &Path) -> Result<Self, ExecutorError> {
        let inherited_env = Environment::new(std::env::vars_os())
            .map_err(|error| ExecutorError::Sandbox(error.to_string()))?;
        let mode = match mode {
            SandboxMode::Auto => match detected_mode(workspace) {
                // Detecting the namespace mode started this unit's sandbox already.
                Detected::Started(kind) => {
                    return Ok(Self {
                        workspace: workspace.to_path_buf(),
                        kind,
                        inherited_env,
                    });
                }
                Detected::Mode(mode) => mode,
            },
            forced => forced,
        };
        let kind = match mode {
            SandboxMode::Namespace => start_namespace(workspace)?,
            SandboxMode::Bwrap => Kind::Bwrap {
                view: bwrap_view(workspace),
            },
            SandboxMode::None | SandboxMode::Auto => Kind::Rewrite,
        };
        Ok(Self {
            workspace: workspace.to_path_buf(),
            kind,
            inherited_env,
        })
    }

    /// The mode actually in use.
    pub fn mode(&self) -> SandboxMode {
        match self.kind {
            Kind::Namespace { .. } => SandboxMode::Namespace,
            Kind::Bwrap { .. } => SandboxMode::Bwrap,
            Kind::Rewrite => SandboxMode::None,
        }
    }

    /// Where a path as the steps see it lives on the host.
    pub fn host_path(&self, step_path: &str) -> PathBuf {
        match step_path.strip_prefix(WORKSPACE_MOUNT) {
            Some("") => self.workspace.clone(),
            Some(rest) if rest.starts_with('/') => {
                self.workspace.join(rest.trim_start_matches('/'))
            }
            _ => PathBuf::from(step_path),
        }
    }

    /// How to start `action` in this sandbox: program, arguments, the whole environment (this
    /// process's when the unit started, then the action's), working directory and namespace.
    pub fn process(&self, action: &Action) -> ProcessSpec {
        let (program, args) = match &action.command {
            Command::Shell(script) => (
                "/bin/sh".to_owned(),
                vec!["-c".to_owned(), format!("set -e\n{script}")],
            ),
            Command::Exec { program, args } => (program.clone(), args.clone()),
        };
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        let mut process = ProcessSpec {
            inherited_env: self.inherited_env.clone(),
            ..ProcessSpec::default()
        };
        match &self.kind {
            Kind::Namespace { namespace, .. } => {
                process.program = program.into();
                process.args = args.into_iter().map(Into::into).collect();
                process.namespace = Some(namespace.as_raw_fd());
                process.cwd = Some(PathBuf::from(&action.working_dir));
                env.extend(action.env.iter().map(|(k, v)| (k.into(), v.into())));
            }
            Kind::Bwrap { view } => {
                process.program = "bwrap".into();
                process.args = view.clone();
                process.args.extend(
                    [
                        "--chdir",
                        action.working_dir.as_str(),
                        "--",
                        program.as_str(),
                    ]
                    .into_iter()
                    .map(OsString::from),
                );
                process.args.extend(args.into_iter().map(Into::into));
                env.extend(action.env.iter().map(|(k, v)| (k.into(), v.into())));
            }
            Kind::Rewrite => {
                let rewrite = |text: &str| rewrite_workspace_paths(text, &self.workspace);
                process.program = rewrite(&program).into();
                process.args = args.iter().map(|arg| rewrite(arg).into()).collect();
                process.cwd = Some(self.host_path(&action.working_dir));
                env.extend(
                    action
                        .env
                        .iter()
                        .map(|(k, v)| (k.into(), rewrite(v).into())),
                );
                env.push((
                    "TESTLOOP_WORKSPACE".into(),
                    self.workspace.clone().into_os_string(),
                ));
            }
        }
        process.env = env;
        process
    }
}

/// The mode `mode` stands for on this machine: itself, or for `auto` what detection found (a
/// probe runs if no unit has started yet).
pub fn resolved_mode(mode: SandboxMode) -> SandboxMode {
    if mode != SandboxMode::Auto {
        return mode;
    }
    match detected_mode(&std::env::temp_dir()) {
        Detected::Mode(mode) => mode,
        Detected::Started(_) => SandboxMode::Namespace,
    }
}

/// What `auto` found: the mode to use, or (the first time, when it is the namespace mode) the
/// sandbox it started for the unit that asked.
enum Detected {
    Mode(SandboxMode),
    Started(Kind),
}

/// The mode `auto` means on this machine, found once per process. The namespace mode is detected
/// by starting the asking unit's own sandbox, so detection costs nothing extra.
fn detected_mode(workspace: &Path) -> Detected {
    static DETECTED: OnceLock<SandboxMode> = OnceLock::new();
    if let Some(mode) = DETECTED.get() {
        return Detected::Mode(*mode);
    }
    if let Ok(forced) = std::env::var("TESTLOOP_SANDBOX")
        && let Ok(mode) = forced.parse::<SandboxMode>()
        && mode != SandboxMode::Auto
    {
        return Detected::Mode(*DETECTED.get_or_init(|| mode));
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && let Ok(kind) = start_namespace(workspace) {
        let _ = DETECTED.set(SandboxMode::Namespace);
        return Detected::Started(kind);
    }
    let probe = std::process::Command::new("bwrap")
        .args(bwrap_view(&std::env::temp_dir()))
        .args(["--", "/bin/true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let mode = if matches!(probe, Ok(status) if status.success()) {
        SandboxMode::Bwrap
    } else {
        tracing::warn!(
            "no mount namespaces here (need root or unprivileged user namespaces, and bubblewrap): \
             /data is rewritten to each unit's workspace path instead"
        );
        SandboxMode::None
    };
    Detected::Mode(*DETECTED.get_or_init(|| mode))
}

/// bubblewrap arguments that show the host's root with `workspace` at `/data`. The new root is a
/// tmpfs so that `/data` can exist there without being created on the host.
fn bwrap_view(workspace: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--die-with-parent".into()];
    if let Ok(entries) = std::fs::read_dir("/") {
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let name = entry.file_name();
            if matches!(name.as_bytes(), b"proc" | b"dev" | b"data") {
                continue;
            }
            let path = Path::new("/").join(&name);
            match std::fs::read_link(&path) {
                Ok(target) => {
                    args.extend(["--symlink".into(), target.into(), path.into()]);
                }
                Err(_) => args.extend(["--bind".into(), path.clone().into(), path.into()]),
            }
        }
    }
    args.extend([
        "--dev".into(),
        "/dev".into(),
        "--proc".into(),
        "/proc".into(),
        "--bind".into(),
        workspace.as_os_str().to_owned(),
        WORKSPACE_MOUNT.into(),
    ]);
    args
}

fn start_namespace(workspace: &Path) -> Result<Kind, ExecutorError> {
    let namespace = super::mountns::build(workspace).map_err(ExecutorError::Sandbox)?;
    Ok(Kind::Namespace { namespace })
}

/// Replaces `/data` where it starts a path (`/data`, `/data/x`), not inside `/database` or
/// `/x/data`.
pub fn rewrite_workspace_paths(text: &str, workspace: &Path) -> String {
    let replacement = workspace.display().to_string();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find(WORKSPACE_MOUNT) {
        let start = search + found;
        let end = start + WORKSPACE_MOUNT.len();
        let starts_path = start == 0 || !is_path_char(bytes[start - 1]);
        let ends_segment = end == bytes.len() || !is_name_char(bytes[end]);
        if starts_path && ends_segment {
            out.push_str(&text[copied..start]);
            out.push_str(&replacement);
            copied = end;
        }
        search = end;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_name_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
}

fn is_path_char(byte: u8) -> bool {
    is_name_char(byte) || byte == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_whole_data_paths() {
        let ws = Path::new("/w/1");
        assert_eq!(
            rewrite_workspace_paths("cd /data/repo && ls /data", ws),
            "cd /w/1/repo && ls /w/1"
        );
        assert_eq!(
            rewrite_workspace_paths("/database /x/data data /data-x '/data'", ws),
            "/database /x/data data /data-x '/w/1'"
        );
        assert_eq!(rewrite_workspace_paths("--out=/data/a", ws), "--out=/w/1/a");
    }

    #[test]
    fn host_path_maps_only_the_workspace() {
        let sandbox = Sandbox {
            workspace: PathBuf::from("/w/1"),
            kind: Kind::Rewrite,
            inherited_env: Environment::default(),
        };
        assert_eq!(sandbox.host_path("/data"), PathBuf::from("/w/1"));
        assert_eq!(sandbox.host_path("/data/a/b"), PathBuf::from("/w/1/a/b"));
        assert_eq!(sandbox.host_path("/database"), PathBuf::from("/database"));
        assert_eq!(sandbox.host_path("/tmp/x"), PathBuf::from("/tmp/x"));
    }
}
