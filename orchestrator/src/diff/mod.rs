//! Run-to-run comparison. (filled by the diff work)
