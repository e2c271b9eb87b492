//! How much history the data directory keeps: by age, by count per workflow, by the bytes of logs
//! and artifacts. Unlimited unless configured.
//!
//! Only executions that have ended are ever deleted, and never a workflow's latest execution nor
//! its latest that passed: the one is what a user or agent just ran and is about to read, the other
//! the baseline `diff` compares against (`last_passed`); losing either would break the loop this
//! tool exists for. An execution goes whole: its row, steps and test results (one
//! transaction), then its logs and artifacts.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::execution::{ExecutionStatus, TimestampMicros};
use crate::store::EndedExecution;

/// The limits; `None` keeps everything in that respect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Executions that ended longer ago than this go.
    pub max_age: Option<Duration>,
    /// Of each workflow, only this many latest executions that ended stay.
    pub max_per_workflow: Option<usize>,
    /// While the logs and artifacts of all executions take more than this, the oldest go.
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// Whether nothing is ever deleted.
    pub fn keeps_everything(&self) -> bool {
        *self == Self::default()
    }
}

/// What a pass of retention deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// The executions deleted, oldest first.
    pub executions: Vec<String>,
    /// The bytes of logs and artifacts they took.
    pub bytes: u64,
}

/// Which of `ended` (oldest first) to delete under `policy` at `now`; `size` tells the bytes of an
/// execution's logs and artifacts, and `total_bytes` those of every execution, running ones too.
pub fn choose(
    ended: &[EndedExecution],
    policy: &Retention,
    now: TimestampMicros,
    total_bytes: u64,
    size: impl Fn(&str) -> u64,
) -> Vec<String> {
    // Oldest first, so the last one written for a workflow is its latest.
    let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
    let mut latest_passed: BTreeMap<&str, &str> = BTreeMap::new();
    for execution in ended {
        latest.insert(&execution.workflow, &execution.id);
        if execution.status == ExecutionStatus::Passed {
            latest_passed.insert(&execution.workflow, &execution.id);
        }
    }
    let protected: HashSet<&str> = latest
        .into_values()
        .chain(latest_passed.into_values())
        .collect();
    let mut doomed: HashSet<&str> = HashSet::new();

    if let Some(max_age) = policy.max_age {
        let cutoff = now.saturating_sub(i64::try_from(max_age.as_micros()).unwrap_or(i64::MAX));
        for execution in ended {
            if execution.ended_at < cutoff && !protected.contains(execution.id.as_str()) {
                doomed.insert(&execution.id);
            }
        }
    }
    if let Some(keep) = policy.max_per_workflow {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for execution in ended.iter().rev() {
            let count = seen.entry(&execution.workflow).or_default();
            *count += 1;
            if *count > keep && !protected.contains(execution.id.as_str()) {
                doomed.insert(&execution.id);
            }
        }
    }
    if let Some(max_bytes) = policy.max_bytes {
        let mut total = total_bytes.saturating_sub(
            ended
                .iter()
                .filter(|execution| doomed.contains(execution.id.as_str()))
                .map(|execution| size(&execution.id))
                .sum(),
        );
        for execution in ended {
            if total <= max_bytes {
                break;
            }
            let id = execution.id.as_str();
            if !doomed.contains(id) && !protected.contains(id) {
                doomed.insert(id);
                total = total.saturating_sub(size(id));
            }
        }
    }
    ended
        .iter()
        .filter(|execution| doomed.contains(execution.id.as_str()))
        .map(|execution| execution.id.clone())
        .collect()
}

/// The bytes of the files under `dir` (0 when it does not exist).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(_) => entry.metadata().map(|meta| meta.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn ended(id: &str, workflow: &str, status: ExecutionStatus, day: i64) -> EndedExecution {
        EndedExecution {
            id: id.to_owned(),
            workflow: workflow.to_owned(),
            status,
            ended_at: day * DAY,
        }
    }

    fn history() -> Vec<EndedExecution> {
        use ExecutionStatus::*;
        vec![
            ended("01", "a", Passed, 1),
            ended("02", "a", Failed, 2),
            ended("03", "b", Failed, 3),
            ended("04", "a", Passed, 4),
            ended("05", "a", Failed, 5),
            ended("06", "b", Interrupted, 6),
            ended("07", "a", Failed, 7),
        ]
    }

    #[test]
    fn keeping_everything_deletes_nothing() {
        assert!(Retention::default().keeps_everything());
        assert!(choose(&history(), &Retention::default(), 10 * DAY, u64::MAX, |_| 1).is_empty());
    }

    #[test]
    fn age_spares_each_workflows_latest_pass() {
        let policy = Retention {
            max_age: Some(Duration::from_secs(3 * 86_400)),
            ..Retention::default()
        };
        // At day 8 the cutoff is day 5: 01-04 are older; 04 is a's latest pass.
        assert_eq!(
            choose(&history(), &policy, 8 * DAY, 0, |_| 0),
            ["01", "02", "03"]
        );
    }

    #[test]
    fn count_is_per_workflow_and_spares_the_latest_pass() {
        let policy = Retention {
            max_per_workflow: Some(2),
            ..Retention::default()
        };
        // a: 07, 05 stay; 04 is its latest pass; 02 and 01 go. b: 06 and 03 stay.
        assert_eq!(choose(&history(), &policy, 8 * DAY, 0, |_| 0), ["01", "02"]);
    }

    #[test]
    fn bytes_go_oldest_first_until_under_the_limit() {
        let policy = Retention {
            max_bytes: Some(450),
            ..Retention::default()
        };
        // 7 executions of 100 bytes and 100 more in a running one: 800; 01-04 are the oldest,
        // but 04 is a's latest pass, so 01, 02, 03 and 05 go to reach 400.
        assert_eq!(
            choose(&history(), &policy, 8 * DAY, 800, |_| 100),
            ["01", "02", "03", "05"]
        );
    }

    #[test]
    fn bytes_count_what_other_limits_already_free() {
        let policy = Retention {
            max_per_workflow: Some(2),
            max_bytes: Some(600),
            ..Retention::default()
        };
        // The count frees 01 and 02 (800 -> 600): the byte limit then holds already.
        assert_eq!(
            choose(&history(), &policy, 8 * DAY, 800, |_| 100),
            ["01", "02"]
        );
    }

    #[test]
    fn each_workflows_latest_stays_whatever_its_size() {
        let policy = Retention {
            max_bytes: Some(10),
            ..Retention::default()
        };
        // Only 04 (a's latest pass), 06 (b's latest) and 07 (a's latest) are left.
        assert_eq!(
            choose(&history(), &policy, 8 * DAY, 800, |_| 100),
            ["01", "02", "03", "05"]
        );
    }

    #[test]
    fn sizes_add_up_across_nested_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("one"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("a/b/two"), [0u8; 32]).unwrap();
        assert_eq!(dir_size(dir.path()), 42);
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
    }
}
