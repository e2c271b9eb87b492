//! Failures recognised in logs. (filled by the results work)
