//! Run-to-run comparison: log lines normalised so that what differs on every run (times, ids,
//! ports…) does not count.

pub mod normalize;

pub use normalize::normalize;
