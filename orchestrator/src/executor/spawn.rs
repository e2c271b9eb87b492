//! Starting a step's process with `vfork` semantics.
//!
//! A step must start in its own process group, die with testloop, and (in the namespace sandbox)
//! join the unit's mount namespace: work that has to happen in the child between fork and exec.
//! `std::process::Command::pre_exec` can do that, but it makes the standard library fall back from
//! `posix_spawn` to a real `fork`, which copies the page tables of a multi-threaded runtime and
//! then pays copy-on-write faults in every thread until the child execs: on a 200-step workflow of
//! `true` that doubled the run time. So this module does what `posix_spawn` does, plus the three
//! calls we need: `clone(CLONE_VM | CLONE_VFORK)` onto a small stack of its own, with every
//! signal blocked, and in the child only async-signal-safe system calls on memory prepared
//! beforehand, until `execve`.
//!
//! The child is waited for through a pidfd, so waiting is an ordinary readiness event.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

/// Stack for the child between `clone` and `execve`: it runs a few system calls, nothing more.
const CHILD_STACK_BYTES: usize = 64 * 1024;
/// Signals whose dispositions the child resets (1..=64 on Linux).
const SIGNAL_COUNT: libc::c_int = 64;
/// How often a child is polled for exit where pidfds are unavailable (Linux before 5.3).
const POLL_WITHOUT_PIDFD: Duration = Duration::from_millis(5);

/// Everything a step's process is started with.
#[derive(Debug, Clone, Default)]
pub struct ProcessSpec {
    /// A path, or a name looked up in the `PATH` of the environment.
    pub program: OsString,
    pub args: Vec<OsString>,
    /// The start of the process's environment, prepared once and shared.
    pub inherited_env: Environment,
    /// The rest of the process's environment, after `inherited_env`.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory, entered after the namespace is joined.
    pub cwd: Option<PathBuf>,
    /// A mount namespace to join (`/proc/<pid>/ns/mnt` of the unit's sandbox).
    pub namespace: Option<RawFd>,
    /// The signals that had a handler when the caller last looked ([`handled_signals`]): only
    /// these need resetting in the child. `None`: look at every signal, in the child.
    pub handled_signals: Option<SignalSet>,
}

/// Environment entries as `NAME=value` C strings, made once and shared by every process started
/// with them: building a step's environment from this process's, string by string, took more
/// of a quick step's start than the `clone` did.
#[derive(Debug, Clone, Default)]
pub struct Environment(Arc<[CString]>);

impl Environment {
    pub fn new(vars: impl IntoIterator<Item = (OsString, OsString)>) -> io::Result<Self> {
        vars.into_iter()
            .map(|(name, value)| env_entry(&name, &value))
            .collect::<io::Result<Vec<_>>>()
            .map(|entries| Self(entries.into()))
    }

    /// The value of the last `PATH` entry.
    fn path(&self) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find_map(|entry| entry.to_bytes().strip_prefix(b"PATH="))
    }
}

fn env_entry(name: &OsStr, value: &OsStr) -> io::Result<CString> {
    let mut pair = Vec::with_capacity(name.len() + value.len() + 2);
    pair.extend_from_slice(name.as_bytes());
    pair.push(b'=');
    pair.extend_from_slice(value.as_bytes());
    CString::new(pair).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the environment contains a NUL byte",
        )
    })
}

/// Signals as a bit set: bit `n - 1` stands for signal `n` (1..=64).
pub type SignalSet = u64;

/// The signals that have a handler in this process now (neither `SIG_DFL` nor `SIG_IGN`).
///
/// Sixty-four `sigaction` calls: worth doing once per unit rather than in every step's child,
/// where they held up each start by about 16 µs. Handlers are installed when testloop starts
/// (the standard library's, the CLI's Ctrl-C, the server's shutdown signals), before any unit.
pub fn handled_signals() -> SignalSet {
    let mut set = 0;
    for signal in 1..=SIGNAL_COUNT {
        // SAFETY: querying a disposition into a zeroed sigaction we own.
        let handled = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction != libc::SIG_IGN
                && current.sa_sigaction != libc::SIG_DFL
        };
        if handled {
            set |= 1 << (signal - 1);
        }
    }
    set
}

/// Prepared before the clone: the child must not allocate.
struct Prepared {
    candidates: Vec<CString>,
    /// Owns the strings `argv_ptrs` points into.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Own the strings `envp_ptrs` points into.
    _inherited_env: Environment,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    namespace: libc::c_int,
    handled_signals: SignalSet,
    stdin: libc::c_int,
    output: libc::c_int,
    old_mask: libc::sigset_t,
    /// Written by the child when it cannot exec: the errno and what it was doing.
    error: libc::c_int,
    stage: &'static str,
}

fn c_string(text: &OsStr, what: &str) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the {what} contains a NUL byte"),
        )
    })
}

fn prepare(spec: &ProcessSpec, stdin: RawFd, output: RawFd) -> io::Result<Prepared> {
    let program = spec.program.as_bytes();
    let candidates = if program.contains(&b'/') {
        vec![c_string(&spec.program, "program")?]
    } else {
        let path = spec
            .env
            .iter()
            .rev()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| value.as_bytes())
            .or_else(|| spec.inherited_env.path())
            .unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
        path.split(|byte| *byte == b':')
            .map(|dir| {
                let dir = if dir.is_empty() { &b"."[..] } else { dir };
                let mut full = dir.to_vec();
                full.push(b'/');
                full.extend_from_slice(program);
                c_string(OsStr::from_bytes(&full), "program")
            })
            .collect::<io::Result<Vec<_>>>()?
    };
    let argv = std::iter::once(spec.program.as_os_str())
        .chain(spec.args.iter().map(OsString::as_os_str))
        .map(|arg| c_string(arg, "argument"))
        .collect::<io::Result<Vec<_>>>()?;
    let envp = spec
        .env
        .iter()
        .map(|(name, value)| env_entry(name, value))
        .collect::<io::Result<Vec<_>>>()?;
    let pointers = |strings: &[CString]| {
        strings
            .iter()
            .map(|string| string.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let mut envp_ptrs: Vec<*const libc::c_char> =
        Vec::with_capacity(spec.inherited_env.0.len() + envp.len() + 1);
    envp_ptrs.extend(spec.inherited_env.0.iter().map(|entry| entry.as_ptr()));
    envp_ptrs.extend(envp.iter().map(|entry| entry.as_ptr()));
    envp_ptrs.push(std::ptr::null());
    Ok(Prepared {
        argv_ptrs: pointers(&argv),
        envp_ptrs,
        candidates,
        _argv: argv,
        _inherited_env: spec.inherited_env.clone(),
        _envp: envp,
        cwd: spec
            .cwd
            .as_ref()
            .map(|cwd| c_string(cwd.as_os_str(), "working directory"))
            .transpose()?,
        namespace: spec.namespace.unwrap_or(-1),
        handled_signals: spec.handled_signals.unwrap_or(SignalSet::MAX),
        stdin,
        output,
        // SAFETY: an all-zero sigset_t is a valid (empty) set; it is overwritten before use.
        old_mask: unsafe { std::mem::zeroed() },
        error: 0,
        stage: "",
    })
}

fn errno() -> libc::c_int {
    // SAFETY: errno is thread-local and always readable.
    unsafe { *libc::__errno_location() }
}

/// Runs in the child, on its own stack, sharing the parent's memory until `execve`.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Prepared` the parent keeps alive, suspended, until we exec or exit.
    let prepared = unsafe { &mut *arg.cast::<Prepared>() };
    fn fail(prepared: &mut Prepared, stage: &'static str) -> libc::c_int {
        prepared.error = errno();
        prepared.stage = stage;
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(127) }
    }
    // SAFETY: only async-signal-safe system calls on memory prepared before the clone.
    unsafe {
        // A handler installed by the parent must not run here, on the parent's memory: the
        // signals that may have one go back to their default before any is unblocked.
        for signal in 1..=SIGNAL_COUNT {
            if prepared.handled_signals & (1 << (signal - 1)) == 0 {
                continue;
            }
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction != libc::SIG_IGN
                && current.sa_sigaction != libc::SIG_DFL
            {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        // The standard library ignores SIGPIPE in testloop; a step starts with it at its
        // default, as std::process::Command would start it (so `yes | head -1` ends quietly).
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGPIPE, &default, std::ptr::null_mut());
        if prepared.namespace >= 0 && libc::setns(prepared.namespace, libc::CLONE_NEWNS) != 0 {
            return fail(prepared, "join the workspace's mount namespace");
        }
        if let Some(cwd) = &prepared.cwd
            && libc::chdir(cwd.as_ptr()) != 0
        {
            return fail(prepared, "enter the working directory");
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(prepared, "start a process group");
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return fail(prepared, "tie the step to testloop's life");
        }
        if libc::dup2(prepared.stdin, 0) < 0
            || libc::dup2(prepared.output, 1) < 0
            || libc::dup2(prepared.output, 2) < 0
        {
            return fail(prepared, "connect standard streams");
        }
        libc::sigprocmask(libc::SIG_SETMASK, &prepared.old_mask, std::ptr::null_mut());
        let mut error = libc::ENOENT;
        for candidate in &prepared.candidates {
            libc::execve(
                candidate.as_ptr(),
                prepared.argv_ptrs.as_ptr(),
                prepared.envp_ptrs.as_ptr(),
            );
            let this = errno();
            // As execvp does: a missing candidate means "try the next PATH entry"; keep the
            // more telling error (permission denied) if there was one.
            if this != libc::ENOENT && this != libc::ENOTDIR {
                error = this;
            }
        }
        *libc::__errno_location() = error;
        fail(prepared, "execute the program")
    }
}

/// A started process, waited for through a pidfd. Dropping it kills its process group.
pub struct ChildProcess {
    pid: libc::pid_t,
    pidfd: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
}

/// Starts `spec` with stdin from `stdin` and both stdout and stderr into `output`, in a process
/// group of its own (whose id is the returned pid).
pub fn spawn(spec: &ProcessSpec, stdin: &OwnedFd, output: &OwnedFd) -> io::Result<ChildProcess> {
    let mut prepared = prepare(spec, stdin.as_raw_fd(), output.as_raw_fd())?;
    // Not zeroed: a stack needs no initial contents, and zeroing it cost a memset per step.
    let mut stack: Vec<u8> = Vec::with_capacity(CHILD_STACK_BYTES);
    // SAFETY: the pointer stays inside the allocation (its capacity); the stack grows down, so
    // the child starts at the 16-byte aligned top.
    let top = unsafe { stack.as_mut_ptr().add(CHILD_STACK_BYTES) };
    let top = (top as usize & !0xf) as *mut libc::c_void;
    // SAFETY: all signals are blocked around the clone so that no handler runs in the child
    // before it resets them; the parent is suspended (CLONE_VFORK) until the child execs or
    // exits, so `prepared` and `stack` outlive every use the child makes of them.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut prepared.old_mask);
        let pid = libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut prepared as *mut Prepared).cast(),
        );
        let clone_error = errno();
        libc::pthread_sigmask(libc::SIG_SETMASK, &prepared.old_mask, std::ptr::null_mut());
        if pid < 0 {
            return Err(io::Error::from_raw_os_error(clone_error));
        }
        pid
    };
    drop(stack);
    // SAFETY: the child wrote these before exiting; read them as memory another task changed.
    let (error, stage) = unsafe {
        (
            std::ptr::read_volatile(&prepared.error),
            std::ptr::read_volatile(&prepared.stage),
        )
    };
    if error != 0 {
        let mut status = 0;
        // SAFETY: reaping our own child, which has exited.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let cause = io::Error::from_raw_os_error(error);
        return Err(io::Error::new(
            cause.kind(),
            format!("cannot {stage}: {cause}"),
        ));
    }
    Ok(ChildProcess {
        pid,
        pidfd: open_pidfd(pid),
        status: None,
    })
}

fn open_pidfd(pid: libc::pid_t) -> Option<AsyncFd<OwnedFd>> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it, and the AsyncFd owns
    // it from here until it is dropped, so it is neither replaced nor closed while registered.
    unsafe {
        let owned = OwnedFd::from_raw_fd(fd as RawFd);
        AsyncFd::register(owned).ok()
    }
}

impl ChildProcess {
    /// The process id, which is also its process group id.
    pub fn id(&self) -> libc::pid_t {
        self.pid
    }

    fn try_reap(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let mut status = 0;
        // SAFETY: waiting for our own child without blocking.
        let reaped = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        match reaped {
            0 => Ok(None),
            pid if pid == self.pid => {
                let status = ExitStatus::from_raw(status);
                self.status = Some(status);
                Ok(Some(status))
            }
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Reaps the process if it exits within `budget`, yielding the CPU meanwhile; `None` if it
    /// is still running then. For a process known to be on its way out, where sleeping until
    /// its exit is reported would cost more than the wait.
    pub fn wait_briefly(&mut self, budget: Duration) -> Option<io::Result<ExitStatus>> {
        let start = std::time::Instant::now();
        loop {
            match self.try_reap() {
                Ok(Some(status)) => return Some(Ok(status)),
                Ok(None) if start.elapsed() < budget => std::thread::yield_now(),
                Ok(None) => return None,
                Err(error) => return Some(Err(error)),
            }
        }
    }

    /// Waits for the process to exit. Cancel-safe: a `select!` may drop and call it again.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_reap()? {
                return Ok(status);
            }
            match &self.pidfd {
                Some(pidfd) => {
                    let mut ready = pidfd.readable().await?;
                    ready.clear_ready();
                }
                None => tokio::time::sleep(POLL_WITHOUT_PIDFD).await,
            }
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            // SAFETY: signalling and reaping our own child; SIGKILL makes the wait short.
            unsafe {
                libc::killpg(self.pid, libc::SIGKILL);
                let mut status = 0;
                libc::waitpid(self.pid, &mut status, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let (reader, writer) = std::io::pipe().unwrap();
        (OwnedFd::from(reader), OwnedFd::from(writer))
    }

    fn null() -> OwnedFd {
        OwnedFd::from(std::fs::File::open("/dev/null").unwrap())
    }

    fn spec(program: &str, args: &[&str]) -> ProcessSpec {
        ProcessSpec {
            program: program.into(),
            args: args.iter().map(Into::into).collect(),
            env: std::env::vars_os().collect(),
            ..ProcessSpec::default()
        }
    }

    #[tokio::test]
    async fn runs_a_program_found_on_the_path_with_its_output_captured() {
        let (reader, writer) = pipe();
        let mut child = spawn(
            &spec("sh", &["-c", "echo out; echo err >&2; exit 3"]),
            &null(),
            &writer,
        )
        .unwrap();
        drop(writer);
        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), Some(3));
        let output = std::io::read_to_string(std::fs::File::from(reader)).unwrap();
        assert_eq!(output, "out\nerr\n");
    }

    #[tokio::test]
    async fn the_child_leads_its_own_process_group_in_its_working_directory() {
        let (reader, writer) = pipe();
        let mut request = spec("/bin/sh", &["-c", "ps -o pgid= -p $$ | tr -d ' '; pwd"]);
        request.cwd = Some("/tmp".into());
        let mut child = spawn(&request, &null(), &writer).unwrap();
        drop(writer);
        child.wait().await.unwrap();
        let output = std::io::read_to_string(std::fs::File::from(reader)).unwrap();
        assert_eq!(output, format!("{}\n/tmp\n", child.id()));
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_not_a_child() {
        let (_reader, writer) = pipe();
        let error = spawn(&spec("no-such-program-anywhere", &[]), &null(), &writer)
            .err()
            .unwrap();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(
            error.to_string().starts_with("cannot execute the program"),
            "{error}"
        );
        let mut request = spec("/bin/true", &[]);
        request.cwd = Some("/nonexistent/dir".into());
        let error = spawn(&request, &null(), &writer).err().unwrap();
        assert!(
            error
                .to_string()
                .starts_with("cannot enter the working directory"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_step_starts_with_sigpipe_at_its_default() {
        // Rust ignores SIGPIPE in its own processes; a child must not inherit that, or `yes`
        // complains of a broken pipe instead of ending quietly.
        let (reader, writer) = pipe();
        let mut request = spec("/bin/sh", &["-c", "yes | head -1"]);
        request.handled_signals = Some(handled_signals());
        let mut child = spawn(&request, &null(), &writer).unwrap();
        drop(writer);
        assert_eq!(child.wait().await.unwrap().code(), Some(0));
        let output = std::io::read_to_string(std::fs::File::from(reader)).unwrap();
        assert_eq!(output, "y\n");
    }

    #[test]
    fn handled_signals_finds_an_installed_handler() {
        extern "C" fn ignore(_: libc::c_int) {}
        // SAFETY: installing a handler that does nothing, for a signal nothing here sends.
        unsafe {
            libc::signal(
                libc::SIGUSR2,
                ignore as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
        let set = handled_signals();
        assert_ne!(set & (1 << (libc::SIGUSR2 - 1)), 0);
        // Ignored, not handled.
        assert_eq!(set & (1 << (libc::SIGPIPE - 1)), 0);
    }

    #[tokio::test]
    async fn only_the_given_environment_is_passed() {
        let (reader, writer) = pipe();
        let mut request = spec("/usr/bin/env", &[]);
        request.env = vec![("ONLY".into(), "this".into())];
        let mut child = spawn(&request, &null(), &writer).unwrap();
        drop(writer);
        child.wait().await.unwrap();
        let output = std::io::read_to_string(std::fs::File::from(reader)).unwrap();
        assert_eq!(output, "ONLY=this\n");
    }
}
