//! The executor contract: run one unit (a sequence of steps sharing a workspace) to completion.
