//! One semantic suite, run on every backend: each case in `semantics/cases.rs` runs once on the
//! local executor, once on the Kubernetes executor through the API double, and once on a real
//! cluster when `TESTLOOP_E2E_KUBECONFIG` names one (ignored otherwise; see `tests/build.rs`).

mod semantics {
    pub mod backend;
    pub mod cases;
}

use semantics::backend::Backend;
use semantics::cases;

/// Declares, for each case, one test per backend.
macro_rules! on_every_backend {
    ($($case:ident),+ $(,)?) => {
        mod local {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    cases::$case(&Backend::local()).await;
                }
            )+
        }
        mod kubernetes {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    cases::$case(&Backend::kubernetes().await).await;
                }
            )+
        }
        mod real_cluster {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(e2e_cluster), ignore = "needs a cluster: set TESTLOOP_E2E_KUBECONFIG")]
                async fn $case() {
                    cases::$case(&Backend::real_cluster()).await;
                }
            )+
        }
    };
}

on_every_backend!(
    a_passing_step_records_exit_code_output_and_timestamps,
    a_failing_step_skips_what_follows_but_not_after_steps,
    conditions_see_whether_anything_failed_so_far,
    optional_failures_do_not_fail_the_execution,
    negative_steps_pass_on_failure_and_fail_on_success,
    retry_runs_again_until_the_step_passes,
    retry_gives_up_after_count_more_attempts,
    retry_stops_when_until_holds,
    timeout_kills_the_whole_process_group,
    abort_stops_the_running_step_and_skips_the_rest,
    the_execution_deadline_times_the_execution_out,
    content_files_are_written_under_data_before_the_steps,
    workspaces_are_private_to_each_execution,
    environment_layers_override_in_order,
    stdout_and_stderr_keep_their_order,
    nested_steps_see_their_parent_fail,
    artifacts_matching_the_paths_are_kept,
    exec_form_commands_run_without_a_shell,
    config_values_stay_inert_in_every_shell_context,
    a_process_killed_by_a_signal_fails_with_the_signal_named,
    a_missing_program_fails_the_step_with_the_reason,
    delay_waits_before_the_step,
);
