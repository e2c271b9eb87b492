//! What the server hands the runner inside a unit's pod, and where things live in that pod.
//!
//! The pod of a unit (see the module documentation of [`super`]):
//! - volume `data`, an `emptyDir` at [`crate::executor::WORKSPACE_MOUNT`] (`/data`): the workspace
//!   every step shares;
//! - volume `testloop`, an `emptyDir` at [`POD_DIR`]: the runner binary, the results of the steps
//!   that already ran (so that a later container can decide whether its steps run), and the
//!   artifacts waiting to be streamed;
//! - volume `plan`, the unit's ConfigMap, at [`PLAN_DIR`] in the init container only: the
//!   [`PodPlan`] as [`PLAN_KEY`] and each `content.files` entry as [`file_key`]`(i)`.
//!
//! Containers, in order: the init container [`INIT_CONTAINER`] (the toolkit image: copies the
//! runner to [`RUNNER_PATH`] and writes the content files), then one container per group of
//! consecutive steps that share an image and container settings ([`ContainerPlan`]): init
//! containers for all but the last group, a regular container for the last.

use serde::{Deserialize, Serialize};

use crate::executor::Unit;

/// Where the `testloop` volume is mounted in every container of a unit's pod.
pub const POD_DIR: &str = "/.testloop";
/// Where the unit's ConfigMap is mounted in the init container.
pub const PLAN_DIR: &str = "/.testloop-plan";
/// The ConfigMap key holding the [`PodPlan`] as JSON.
pub const PLAN_KEY: &str = "plan.json";
/// The runner binary, as copied by the init container.
pub const RUNNER_PATH: &str = "/.testloop/bin/testloop";
/// The name of the init container that prepares the pod.
pub const INIT_CONTAINER: &str = "testloop-init";

/// The ConfigMap key of the `index`th `content.files` entry of [`Unit::files`].
pub fn file_key(index: usize) -> String {
    format!("file-{index}")
}

/// Everything the runner in a unit's pod needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodPlan {
    /// Marks the runner's control lines in a container's output, so that a step printing
    /// something that looks like one is not taken for one.
    pub nonce: String,
    /// The unit, as the pod sees it: `workspace` is `/data`, `artifacts_dir` is under
    /// [`POD_DIR`], and file contents are in the ConfigMap rather than here (`content` empty).
    pub unit: Unit,
    /// The step containers, in the order they run.
    pub containers: Vec<ContainerPlan>,
}

/// One container of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerPlan {
    /// The container's name in the pod.
    pub name: String,
    /// The paths of the steps with an action that run in this container, in walk order (a
    /// step's own action comes before its nested steps).
    pub steps: Vec<String>,
}
