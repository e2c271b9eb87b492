//! Telling a step the kernel killed for memory from one killed by any other SIGKILL.
//!
//! In a pod with a memory limit the OOM killer picks the biggest process of the container's
//! cgroup: the step that allocates, not the runner. The container goes on, so Kubernetes never
//! says `OOMKilled`; the step just dies of SIGKILL. The cgroup's own count of OOM kills does say
//! it: `oom_kill` in `memory.events` (cgroup v2, counting the whole subtree) or in
//! `memory.oom_control` (cgroup v1, this cgroup only; steps run in the runner's cgroup). The same
//! holds for testloop running locally under a memory limit (a container, a systemd slice).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The memory cgroup this process runs in, and the file counting its OOM kills (kept open:
/// reading it again is one system call).
#[derive(Debug)]
pub struct MemoryCgroup {
    counter: File,
    limit_file: PathBuf,
}

impl MemoryCgroup {
    /// This process's memory cgroup, if the kernel exposes one with an OOM kill count.
    pub fn of_this_process() -> Option<Self> {
        let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        Self::find(Path::new("/sys/fs/cgroup"), &membership)
    }

    /// The memory cgroup that `membership` (the text of `/proc/<pid>/cgroup`) names, under the
    /// cgroup file systems mounted at `root`.
    pub fn find(root: &Path, membership: &str) -> Option<Self> {
        let mut candidates = Vec::new();
        for line in membership.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let relative = path.trim_start_matches('/');
            if controllers.split(',').any(|name| name == "memory") {
                let mount = root.join("memory");
                candidates.push((
                    mount.join(relative).join("memory.oom_control"),
                    mount.join(relative).join("memory.limit_in_bytes"),
                ));
                // A container without its own cgroup namespace sees the host's path for its
                // cgroup, which is mounted at the root of the hierarchy.
                candidates.push((
                    mount.join("memory.oom_control"),
                    mount.join("memory.limit_in_bytes"),
                ));
            } else if controllers.is_empty() {
                candidates.push((
                    root.join(relative).join("memory.events"),
                    root.join(relative).join("memory.max"),
                ));
                candidates.push((root.join("memory.events"), root.join("memory.max")));
            }
        }
        candidates.into_iter().find_map(|(counter, limit_file)| {
            let counter = File::open(counter).ok()?;
            let cgroup = Self {
                counter,
                limit_file,
            };
            cgroup.oom_kills().map(|_| cgroup)
        })
    }

    /// How many processes the OOM killer has killed in the cgroup so far.
    pub fn oom_kills(&self) -> Option<u64> {
        let mut buffer = [0u8; 512];
        let read = self.counter.read_at(&mut buffer, 0).ok()?;
        let text = std::str::from_utf8(&buffer[..read]).ok()?;
        text.lines().find_map(|line| {
            let value = line.strip_prefix("oom_kill ")?;
            value.trim().parse().ok()
        })
    }

    /// The cgroup's memory limit, as Kubernetes writes quantities (`64Mi`), when it has one.
    pub fn limit(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.limit_file).ok()?;
        let bytes: u64 = text.trim().parse().ok()?;
        // cgroup v1 says "no limit" with a huge page-aligned number.
        if bytes >= 1 << 62 {
            return None;
        }
        Some(quantity(bytes))
    }
}

/// `bytes` in the largest binary unit that divides it, as Kubernetes quantities read.
fn quantity(bytes: u64) -> String {
    for (shift, unit) in [(40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn reads_a_cgroup_v2_count_and_limit() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("kubepods/pod1/c1");
        write(
            &dir.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\noom_group_kill 0\n",
        );
        write(&dir.join("memory.max"), "67108864\n");
        let cgroup = MemoryCgroup::find(root.path(), "0::/kubepods/pod1/c1\n").unwrap();
        assert_eq!(cgroup.oom_kills(), Some(2));
        assert_eq!(cgroup.limit().as_deref(), Some("64Mi"));
        // Read again, from the open file: a new count shows.
        write(&dir.join("memory.events"), "oom 2\noom_kill 3\n");
        assert_eq!(cgroup.oom_kills(), Some(3));
        write(&dir.join("memory.max"), "max\n");
        assert_eq!(cgroup.limit(), None);
    }

    #[test]
    fn reads_a_cgroup_v1_count_and_limit_even_from_a_host_path() {
        let root = tempfile::tempdir().unwrap();
        let memory = root.path().join("memory");
        write(
            &memory.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        );
        write(
            &memory.join("memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        // The path is the host's; inside the container the cgroup is the mount's root.
        let cgroup = MemoryCgroup::find(
            root.path(),
            "12:pids:/docker/abc\n4:memory:/docker/abc\n0::/\n",
        )
        .unwrap();
        assert_eq!(cgroup.oom_kills(), Some(1));
        assert_eq!(cgroup.limit(), None, "v1's 'unlimited'");
        write(&memory.join("memory.limit_in_bytes"), "1610612736\n");
        assert_eq!(cgroup.limit().as_deref(), Some("1536Mi"));
    }

    #[test]
    fn no_cgroup_file_means_no_cgroup() {
        let root = tempfile::tempdir().unwrap();
        assert!(MemoryCgroup::find(root.path(), "0::/user.slice\n").is_none());
        assert!(MemoryCgroup::find(root.path(), "garbage").is_none());
    }

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        assert_eq!(quantity(64 << 20), "64Mi");
        assert_eq!(quantity(2 << 30), "2Gi");
        assert_eq!(quantity(1000), "1000");
        assert_eq!(quantity(1536 << 10), "1536Ki");
    }
}
