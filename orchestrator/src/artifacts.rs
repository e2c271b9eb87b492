//! The artifact store of an execution. (filled by the artifacts work)
