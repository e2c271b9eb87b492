//! A validated workflow and its config become a plan: units of steps, everything resolved.
