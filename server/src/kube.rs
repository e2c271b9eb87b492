//! Connecting the Kubernetes executor from the command line's flags.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use testloop_orchestrator::executor::Executor;
use testloop_orchestrator::executor::kubernetes::cluster::ClusterOptions;
use testloop_orchestrator::executor::kubernetes::executor::{
    KubernetesExecutor, KubernetesOptions,
};
use testloop_orchestrator::executor::kubernetes::manifest::PodOptions;

use crate::cli::ExecutorArgs;

/// The pod settings `args` describe, over the defaults.
pub fn pod_options(args: &ExecutorArgs) -> PodOptions {
    let defaults = PodOptions::default();
    PodOptions {
        namespace: args.namespace.clone().unwrap_or(defaults.namespace),
        toolkit_image: args.toolkit_image.clone().unwrap_or(defaults.toolkit_image),
        runner_source: args
            .toolkit_binary
            .clone()
            .unwrap_or(defaults.runner_source),
        default_image: args.default_image.clone().unwrap_or(defaults.default_image),
        service_account: args.runner_service_account.clone(),
    }
}

/// The Kubernetes executor `args` describe, connected.
pub async fn executor(args: &ExecutorArgs) -> Result<Arc<dyn Executor>> {
    let options = KubernetesOptions {
        cluster: ClusterOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            namespace: args.namespace.clone(),
        },
        pod: pod_options(args),
        keep_failed_pods: args.keep_failed_pods,
        schedule_timeout: Duration::from_secs(args.schedule_timeout),
    };
    let executor = KubernetesExecutor::connect(options)
        .await
        .context("cannot use the kubernetes executor")?;
    tracing::info!(
        namespace = executor.namespace(),
        "kubernetes executor ready"
    );
    Ok(Arc::new(executor))
}
