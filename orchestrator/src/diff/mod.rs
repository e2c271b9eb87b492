//! Run-to-run comparison: log lines normalised so that what differs on every run (times, ids,
//! ports…) does not count, a unified diff of two step logs over those normalised lines, and the
//! comparison of two whole executions ([`executions`]).

pub mod executions;
pub mod logdiff;
pub mod normalize;

pub use logdiff::{
    DiffLine, DiffOptions, Error, Hunk, LogDiff, LogWindow, StepLogDiff, Tag, diff_lines,
    diff_step_logs,
};
pub use normalize::normalize;
