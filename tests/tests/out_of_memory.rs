//! A step the kernel's OOM killer kills is reported as out of memory, not as a bare SIGKILL: what
//! happens in a pod whose container has a memory limit (the step, the biggest process, is killed;
//! the runner goes on), played here by running `testloop run` in a memory cgroup of its own.

use std::path::PathBuf;

use testloop_tests::{Ran, testloop_bin};

/// A memory cgroup with a limit, removed on drop.
struct LimitedCgroup {
    dir: PathBuf,
}

impl LimitedCgroup {
    /// A child of this process's memory cgroup (cgroup v1, or v2 from the namespace's root)
    /// limited to `bytes`; why not, when this machine does not let us make one.
    fn create(bytes: u64) -> Result<Self, String> {
        let membership = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        let name = format!("testloop-oom-test-{}", std::process::id());
        let (dir, limit_file) = match membership
            .lines()
            .find_map(|line| line.split_once(":memory:").map(|(_, path)| path))
        {
            Some(path) => (
                PathBuf::from("/sys/fs/cgroup/memory")
                    .join(path.trim_start_matches('/'))
                    .join(&name),
                "memory.limit_in_bytes",
            ),
            None => (PathBuf::from("/sys/fs/cgroup").join(&name), "memory.max"),
        };
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cgroup = Self { dir };
        std::fs::write(cgroup.dir.join(limit_file), bytes.to_string())
            .map_err(|e| format!("cannot limit {}: {e}", cgroup.dir.display()))?;
        Ok(cgroup)
    }
}

impl Drop for LimitedCgroup {
    fn drop(&mut self) {
        // Empty once the command has exited; the kernel removes a cgroup with rmdir.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn a_step_killed_by_the_oom_killer_is_reported_out_of_memory() {
    // Only root may make cgroups; the machines CI runs on are such (see .ci/run).
    let cgroup = match LimitedCgroup::create(256 << 20) {
        Ok(cgroup) => cgroup,
        Err(why) if unsafe { libc::geteuid() } != 0 => {
            eprintln!("skipped: not root, so no memory cgroup to run in ({why})");
            return;
        }
        Err(why) => panic!("as root, a memory cgroup should be possible: {why}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("oom.yaml");
    // `tail` keeps the last lines in memory; /dev/zero has no line end, so it grows until killed.
    std::fs::write(
        &workflow,
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: oom\nspec:\n  steps:\n  - shell: tail /dev/zero\n  - shell: echo never\n",
    )
    .unwrap();
    let procs = cgroup.dir.join("cgroup.procs");
    // `sh` moves itself into the cgroup, then becomes testloop.
    let ran: Ran = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"echo $$ > "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(&procs)
        .arg(testloop_bin())
        .arg("run")
        .arg(&workflow)
        .env("TESTLOOP_HOME", dir.path().join("data"))
        .env_remove("TESTLOOP_SANDBOX")
        .output()
        .unwrap()
        .into();
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stdout.contains(
            "OOMKilled: the step ran out of memory (memory limit 256Mi); the kernel's OOM killer \
             killed one of its processes (exit code 137)"
        ),
        "{ran:?}"
    );
}
