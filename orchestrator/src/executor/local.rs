//! The local executor: each step is a child process on this machine, in its own process group,
//! with the unit's workspace at `/data` (see [`super::sandbox`]).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use globset::{GlobBuilder, GlobSetBuilder};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::oom::MemoryCgroup;
use super::sandbox::{Sandbox, SandboxMode};
use super::spawn::{ChildProcess, SignalSet, handled_signals, spawn};
use super::steps::{self, Ended, Launcher, StepLog, note};
use super::{
    Action, ArtifactRule, Executor, ExecutorError, Unit, UnitOutcome, UnitSink, WORKSPACE_MOUNT,
};
use crate::execution::now_micros;

/// How long a step may take to stop after SIGTERM (timeout, abort) before it gets SIGKILL.
pub const TERMINATE_GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after a step's main process exited, from processes that left its
/// process group but kept its output open.
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);
/// Most files one `artifacts` rule copies.
pub const MAX_ARTIFACT_FILES: usize = 10_000;
/// Most bytes one `artifacts` rule copies.
pub const MAX_ARTIFACT_BYTES: u64 = 4 << 30;
/// Pipe buffer requested for step output, so that a fast writer is not stalled between reads.
const PIPE_BUFFER_BYTES: libc::c_int = 1 << 20;
const READ_CHUNK_BYTES: usize = 1 << 20;
/// How long to wait for the step's process to become reapable once its output has ended, before
/// waiting for its exit as an event (see `supervise`). An exiting process closes its output a few
/// microseconds before it can be reaped; one that closed its output and runs on costs this once.
const EXIT_AFTER_END_OF_OUTPUT: Duration = Duration::from_micros(100);

/// Runs units as child processes on this machine.
#[derive(Debug, Clone, Default)]
pub struct LocalExecutor {
    sandbox: SandboxMode,
}

impl LocalExecutor {
    pub fn new(sandbox: SandboxMode) -> Self {
        Self { sandbox }
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    async fn run(
        &self,
        unit: Unit,
        sink: &dyn UnitSink,
        cancel: CancellationToken,
    ) -> Result<UnitOutcome, ExecutorError> {
        // The artifacts directory is made by the first artifact copied: an execution that saves
        // none has none (as the artifact store expects), and a run is spared a directory.
        std::fs::create_dir_all(&unit.workspace).map_err(|source| ExecutorError::Workspace {
            path: unit.workspace.clone(),
            source,
        })?;
        let sandbox = Sandbox::start(self.sandbox, &unit.workspace)?;
        tracing::debug!(mode = %sandbox.mode(), unit = %unit.path, "sandbox ready");
        for file in &unit.files {
            write_content_file(&sandbox, &file.path, file.content.as_bytes(), file.mode)?;
        }
        let launcher = LocalLauncher::new(&sandbox, &unit.artifacts_dir);
        Ok(steps::run_unit(&unit, &launcher, sink, &cancel).await)
    }

    fn name(&self) -> &'static str {
        "local"
    }
}

/// Writes a `content.files` entry at `path` (as the steps see it, under [`WORKSPACE_MOUNT`]).
pub(crate) fn write_content_file(
    sandbox: &Sandbox,
    path: &str,
    content: &[u8],
    mode: Option<u32>,
) -> Result<(), ExecutorError> {
    let error = |reason: String| ExecutorError::ContentFile {
        path: path.to_owned(),
        reason,
    };
    if !is_under_workspace(path) {
        return Err(error(format!(
            "content files are written only under {WORKSPACE_MOUNT}"
        )));
    }
    let host = sandbox.host_path(path);
    if let Some(parent) = host.parent() {
        std::fs::create_dir_all(parent).map_err(|e| error(e.to_string()))?;
    }
    std::fs::write(&host, content).map_err(|e| error(e.to_string()))?;
    if let Some(mode) = mode {
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))
            .map_err(|e| error(e.to_string()))?;
    }
    Ok(())
}

fn is_under_workspace(path: &str) -> bool {
    path == WORKSPACE_MOUNT
        || path
            .strip_prefix(WORKSPACE_MOUNT)
            .is_some_and(|rest| rest.starts_with('/') && !rest.split('/').any(|part| part == ".."))
}

/// Starts steps as child processes in `sandbox`; also the runner's launcher inside a pod.
pub(crate) struct LocalLauncher<'a> {
    sandbox: &'a Sandbox,
    artifacts_dir: &'a Path,
    /// The buffer step output is read into, allocated with the first output of the unit and
    /// reused by its later steps: zeroing a fresh megabyte for every step cost more than
    /// starting a quick step's process.
    output_buffer: std::sync::Mutex<Vec<u8>>,
    /// Every step's standard input: `/dev/null`, opened once for the unit (a failure fails each
    /// step's start, as opening it for each step did).
    stdin: Result<OwnedFd, String>,
    /// The signals with a handler in this process, looked up once for the unit (see
    /// [`handled_signals`]).
    handled_signals: SignalSet,
    /// Where the kernel counts OOM kills, found once for the unit, so that a step it killed is
    /// reported as out of memory rather than as a bare SIGKILL.
    memory: Option<MemoryCgroup>,
}

impl<'a> LocalLauncher<'a> {
    /// A launcher for one unit. Signal handlers must be in place before (see
    /// [`handled_signals`]).
    pub(crate) fn new(sandbox: &'a Sandbox, artifacts_dir: &'a Path) -> Self {
        Self {
            sandbox,
            artifacts_dir,
            output_buffer: std::sync::Mutex::new(Vec::new()),
            stdin: std::fs::File::open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| format!("cannot open /dev/null: {e}")),
            handled_signals: handled_signals(),
            memory: MemoryCgroup::of_this_process(),
        }
    }
}

#[async_trait]
impl Launcher for LocalLauncher<'_> {
    async fn launch(
        &self,
        action: &Action,
        log: &mut StepLog<'_>,
        deadline: Option<Instant>,
        cancel: &CancellationToken,
    ) -> Ended {
        if let Some(image) = &action.image {
            note(
                log,
                &format!(
                    "image {image} is not applied by the local executor: the step runs on this machine"
                ),
            );
        }
        if is_under_workspace(&action.working_dir) {
            // Usually there already (most steps work in /data itself): one mkdir says so, where
            // create_dir_all would also stat it; only a missing parent needs the walk.
            let dir = self.sandbox.host_path(&action.working_dir);
            if let Err(error) = std::fs::create_dir(&dir)
                && error.kind() == std::io::ErrorKind::NotFound
            {
                let _ = std::fs::create_dir_all(&dir);
            }
        }
        match start(self, action) {
            Ok((child, output)) => {
                // Taken for the step and put back after it: steps of a unit run one at a time,
                // and no lock is held across an await.
                let mut buffer = std::mem::take(
                    &mut *self
                        .output_buffer
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                let oom_kills = self.memory.as_ref().and_then(MemoryCgroup::oom_kills);
                let mut ended = supervise(child, output, &mut buffer, log, deadline, cancel).await;
                // A shell reports its child's SIGKILL as exit code 137.
                let killed = match ended {
                    Ended::Signaled(libc::SIGKILL) => Some(None),
                    Ended::Exited(137) => Some(Some(137)),
                    _ => None,
                };
                if let Some(exit_code) = killed
                    && let (Some(memory), Some(before)) = (&self.memory, oom_kills)
                    && memory.oom_kills().is_some_and(|after| after > before)
                {
                    ended = Ended::OutOfMemory {
                        limit: memory.limit(),
                        exit_code,
                    };
                }
                *self
                    .output_buffer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = buffer;
                ended
            }
            Err(reason) => {
                note(log, &reason);
                Ended::FailedToStart(reason)
            }
        }
    }

    async fn collect_artifacts(
        &self,
        rule: &ArtifactRule,
        log: &mut StepLog<'_>,
    ) -> Option<String> {
        let base = self.sandbox.host_path(&rule.working_dir);
        let patterns = rule
            .patterns
            .iter()
            .map(|pattern| {
                let host = self.sandbox.host_path(pattern);
                host.to_string_lossy().into_owned()
            })
            .collect::<Vec<_>>();
        let destination = self.artifacts_dir.to_path_buf();
        let workspace = self.sandbox.host_path(WORKSPACE_MOUNT);
        let outcome = tokio::task::spawn_blocking(move || {
            copy_artifacts(
                &base,
                &workspace,
                &patterns,
                &destination,
                ArtifactLimits::default(),
            )
        })
        .await
        .unwrap_or_else(|error| Err(format!("artifact collection crashed: {error}")));
        match outcome {
            Ok(copied) => {
                note(
                    log,
                    &format!(
                        "artifacts: {} file(s), {} byte(s) saved{}",
                        copied.files,
                        copied.bytes,
                        copied
                            .truncated
                            .as_ref()
                            .map(|why| format!(" (stopped: {why})"))
                            .unwrap_or_default()
                    ),
                );
                None
            }
            Err(problem) => {
                note(log, &format!("artifacts: {problem}"));
                Some(format!("artifacts: {problem}"))
            }
        }
    }
}

fn start(launcher: &LocalLauncher<'_>, action: &Action) -> Result<(ChildProcess, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors, which we own from here.
    let (reader, writer) = unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(format!(
                "cannot create a pipe: {}",
                std::io::Error::last_os_error()
            ));
        }
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    // Only our end is non-blocking: the step writes to a blocking pipe, as to a terminal.
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(format!(
            "cannot set up the step's output pipe: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut spec = launcher.sandbox.process(action);
    spec.handled_signals = Some(launcher.handled_signals);
    // One pipe for both streams keeps their lines in the order the step wrote them, as a terminal
    // shows them.
    let stdin = launcher.stdin.as_ref().map_err(Clone::clone)?;
    let child = spawn(&spec, stdin, &writer)
        .map_err(|error| format!("cannot start `{}`: {error}", describe(&action.command)))?;
    // `writer` closes here, so the pipe reports end of output once the step's processes are gone.
    Ok((child, reader))
}

fn describe(command: &super::Command) -> String {
    match command {
        super::Command::Shell(_) => "/bin/sh".to_owned(),
        super::Command::Exec { program, .. } => program.clone(),
    }
}

async fn supervise(
    mut child: ChildProcess,
    output: OwnedFd,
    buffer: &mut Vec<u8>,
    log: &mut StepLog<'_>,
    deadline: Option<Instant>,
    cancel: &CancellationToken,
) -> Ended {
    let group = Some(child.id());
    // The descriptor is the read end of a pipe, already non-blocking (see `start`).
    let mut pipe = match tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(output) {
        Ok(pipe) => Some(pipe),
        Err(error) => {
            note(log, &format!("cannot read the step's output: {error}"));
            None
        }
    };
    let mut ended: Option<Ended> = None;
    let mut stopping: Option<Ended> = None;
    let mut kill_at: Option<Instant> = None;
    let mut drain_until: Option<Instant> = None;
    let mut enlarged = false;
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);

    loop {
        if ended.is_some() && pipe.is_none() {
            break;
        }
        let wake = [
            if stopping.is_none() { deadline } else { None },
            kill_at,
            drain_until,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far);
        tokio::select! {
            ready = async { match pipe.as_ref() { Some(pipe) => pipe.readable().await, None => std::future::pending().await } } => {
                // Readable means output or the end of it. Whatever the pipe already holds is
                // taken before writing, so that a fast writer costs a few large writes rather
                // than many small ones.
                let mut filled = 0;
                let mut closed = ready.is_err();
                if let (Some(pipe), false) = (pipe.as_ref(), closed) {
                    if buffer.len() < READ_CHUNK_BYTES {
                        buffer.resize(READ_CHUNK_BYTES, 0);
                    }
                    while filled < buffer.len() {
                        match pipe.try_read(&mut buffer[filled..]) {
                            Ok(0) => { closed = true; break; }
                            Ok(more) => filled += more,
                            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                            // Nothing more for now: readiness is cleared, wait for the next.
                            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(_) => { closed = true; break; }
                        }
                    }
                }
                if filled > 0 {
                    if let (Some(pipe), false) = (pipe.as_ref(), enlarged) {
                        // A bigger pipe lets a fast writer run on between our reads; asked for
                        // once output comes, as most steps print little or nothing.
                        enlarged = true;
                        // SAFETY: fcntl on the pipe we read; failure keeps the default size.
                        unsafe {
                            libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BUFFER_BYTES);
                        }
                    }
                    log.write_output(now_micros(), &buffer[..filled]);
                    log.flush();
                }
                if closed {
                    log.finish_output(now_micros());
                    pipe = None;
                    // The output usually ends because the step's process is exiting: it closes
                    // its descriptors a few microseconds before it can be reaped. Waiting that
                    // long here saves going to sleep and being woken again for the exit.
                    if ended.is_none()
                        && let Some(status) = child.wait_briefly(EXIT_AFTER_END_OF_OUTPUT)
                    {
                        kill_group(group, libc::SIGKILL);
                        ended = Some(how_it_ended(stopping.take(), status));
                    }
                }
            }
            status = child.wait(), if ended.is_none() => {
                kill_group(group, libc::SIGKILL);
                ended = Some(how_it_ended(stopping.take(), status));
                drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
            }
            _ = cancel.cancelled(), if stopping.is_none() && ended.is_none() => {
                note(log, "aborting: sending SIGTERM to the step's process group");
                kill_group(group, libc::SIGTERM);
                stopping = Some(Ended::Aborted);
                kill_at = Some(Instant::now() + TERMINATE_GRACE);
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if drain_until.is_some_and(|until| now >= until) {
                    log.finish_output(now_micros());
                    pipe = None;
                    drain_until = None;
                } else if kill_at.is_some_and(|at| now >= at) {
                    kill_group(group, libc::SIGKILL);
                    kill_at = None;
                } else if stopping.is_none() && ended.is_none() && deadline.is_some_and(|at| now >= at) {
                    note(log, "timeout: sending SIGTERM to the step's process group");
                    kill_group(group, libc::SIGTERM);
                    stopping = Some(Ended::TimedOut);
                    kill_at = Some(now + TERMINATE_GRACE);
                }
            }
        }
    }
    log.finish_output(now_micros());
    ended.unwrap_or(Ended::Exited(-1))
}

/// How a step ended, from its main process's exit status and the stop (timeout, abort) under way.
fn how_it_ended(
    stopping: Option<Ended>,
    status: std::io::Result<std::process::ExitStatus>,
) -> Ended {
    match (stopping, status) {
        (Some(reason), _) => reason,
        (None, Ok(status)) => match (status.code(), status.signal()) {
            (Some(code), _) => Ended::Exited(code),
            (None, Some(signal)) => Ended::Signaled(signal),
            (None, None) => Ended::Exited(-1),
        },
        (None, Err(error)) => Ended::FailedToStart(format!("cannot wait for the step: {error}")),
    }
}

fn kill_group(group: Option<libc::pid_t>, signal: libc::c_int) {
    if let Some(group) = group.filter(|pid| *pid > 0) {
        // SAFETY: signalling a process group we created; a stale group only yields ESRCH.
        unsafe {
            libc::killpg(group, signal);
        }
    }
}

/// How much one `artifacts` rule may copy.
#[derive(Debug, Clone, Copy)]
struct ArtifactLimits {
    files: usize,
    bytes: u64,
}

impl Default for ArtifactLimits {
    fn default() -> Self {
        Self {
            files: MAX_ARTIFACT_FILES,
            bytes: MAX_ARTIFACT_BYTES,
        }
    }
}

#[derive(Debug)]
struct Copied {
    files: usize,
    bytes: u64,
    truncated: Option<String>,
}

/// Copies files matching any of `patterns` (host paths, absolute or relative to `base`) into
/// `destination`, keeping their path relative to `base`; a file outside `base` keeps the path the
/// steps saw, without its leading `/` (`data/artifacts/report.xml`).
fn copy_artifacts(
    base: &Path,
    workspace: &Path,
    patterns: &[String],
    destination: &Path,
    limits: ArtifactLimits,
) -> Result<Copied, String> {
    let mut builder = GlobSetBuilder::new();
    let mut roots: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        let absolute = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let text = absolute.to_string_lossy().into_owned();
        // `*` stays within one directory and `**` crosses them, as in Testkube.
        let glob = GlobBuilder::new(&text)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("bad pattern `{pattern}`: {e}"))?;
        builder.add(glob);
        roots.push(literal_prefix(&absolute));
    }
    let set = builder
        .build()
        .map_err(|e| format!("bad artifact patterns: {e}"))?;
    roots.sort();
    roots.dedup_by(|later, earlier| later.starts_with(&*earlier));

    let mut copied = Copied {
        files: 0,
        bytes: 0,
        truncated: None,
    };
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        let mut pending = vec![root];
        while let Some(path) = pending.pop() {
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if let Ok(entries) = std::fs::read_dir(&path) {
                    pending.extend(entries.flatten().map(|entry| entry.path()));
                }
                continue;
            }
            if !meta.is_file() || !set.is_match(&path) || !seen.insert(path.clone()) {
                continue;
            }
            if copied.files >= limits.files {
                copied.truncated = Some(format!("more than {} files", limits.files));
                return Ok(copied);
            }
            if copied.bytes + meta.len() > limits.bytes {
                copied.truncated = Some(format!("more than {} bytes", limits.bytes));
                return Ok(copied);
            }
            let relative = match (path.strip_prefix(base), path.strip_prefix(workspace)) {
                (Ok(inside_base), _) => inside_base.to_path_buf(),
                (Err(_), Ok(inside_workspace)) => {
                    Path::new(WORKSPACE_MOUNT.trim_start_matches('/')).join(inside_workspace)
                }
                (Err(_), Err(_)) => path.strip_prefix("/").unwrap_or(&path).to_path_buf(),
            };
            let target = destination.join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            std::fs::copy(&path, &target)
                .map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
            copied.files += 1;
            copied.bytes += meta.len();
        }
    }
    Ok(copied)
}

/// The directory a glob can only match under: its leading components without wildcards.
fn literal_prefix(pattern: &Path) -> PathBuf {
    let mut prefix = PathBuf::new();
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[', '{']) {
            return prefix;
        }
        prefix.push(component);
    }
    // A pattern without wildcards names one file (or directory): start from its parent.
    prefix.parent().map(Path::to_path_buf).unwrap_or(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefix_stops_at_the_first_wildcard() {
        assert_eq!(
            literal_prefix(Path::new("/w/target/surefire-reports/**/*")),
            PathBuf::from("/w/target/surefire-reports")
        );
        assert_eq!(
            literal_prefix(Path::new("/w/a/report.xml")),
            PathBuf::from("/w/a")
        );
        assert_eq!(literal_prefix(Path::new("/w/*.xml")), PathBuf::from("/w"));
    }

    fn artifact_tree() -> (tempfile::TempDir, PathBuf, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("ws");
        std::fs::create_dir_all(base.join("reports")).unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(base.join(format!("reports/{name}.xml")), "0123456789").unwrap();
        }
        (dir, base, vec!["reports/*.xml".to_owned()])
    }

    #[test]
    fn artifact_copies_stop_at_the_file_limit() {
        let (dir, base, patterns) = artifact_tree();
        let out = dir.path().join("out");
        let all = copy_artifacts(
            &base,
            &base,
            &patterns,
            &out,
            ArtifactLimits {
                files: 3,
                bytes: 1000,
            },
        )
        .unwrap();
        assert_eq!((all.files, all.bytes, all.truncated), (3, 30, None));
        let cut = copy_artifacts(
            &base,
            &base,
            &patterns,
            &dir.path().join("out2"),
            ArtifactLimits {
                files: 2,
                bytes: 1000,
            },
        )
        .unwrap();
        assert_eq!(cut.files, 2);
        assert_eq!(cut.truncated.as_deref(), Some("more than 2 files"));
    }

    #[test]
    fn artifact_copies_stop_at_the_byte_limit() {
        let (dir, base, patterns) = artifact_tree();
        let all = copy_artifacts(
            &base,
            &base,
            &patterns,
            &dir.path().join("out"),
            ArtifactLimits {
                files: 10,
                bytes: 30,
            },
        )
        .unwrap();
        assert_eq!((all.files, all.truncated), (3, None));
        let cut = copy_artifacts(
            &base,
            &base,
            &patterns,
            &dir.path().join("out2"),
            ArtifactLimits {
                files: 10,
                bytes: 29,
            },
        )
        .unwrap();
        assert_eq!(cut.files, 2);
        assert_eq!(cut.truncated.as_deref(), Some("more than 29 bytes"));
    }

    #[test]
    fn content_files_must_stay_in_the_workspace() {
        assert!(is_under_workspace("/data/a.txt"));
        assert!(is_under_workspace("/data"));
        assert!(!is_under_workspace("/etc/passwd"));
        assert!(!is_under_workspace("/data/../etc/passwd"));
        assert!(!is_under_workspace("/database/x"));
    }
}
