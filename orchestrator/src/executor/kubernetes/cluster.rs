//! Connecting to a cluster: a kubeconfig file (and context), or the pod's own ServiceAccount when
//! testloop runs inside the cluster.

use std::path::PathBuf;

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

/// Where the cluster is and which namespace test pods go to.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// A kubeconfig file; without one, `$KUBECONFIG` or `~/.kube/config`, else the in-cluster
    /// configuration.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig; without one, its current context.
    pub context: Option<String>,
    /// Where test pods run; without one, the context's namespace, else `default`.
    pub namespace: Option<String>,
}

/// Why no cluster could be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read the kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("no cluster configuration: {message}")]
    NoConfig { message: String },
    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),
}

/// A client for the configured cluster, the namespace test pods go to, and the cluster's URL.
pub async fn connect(options: &ClusterOptions) -> Result<(Client, String, String), ConnectError> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config =
        match &options.kubeconfig {
            Some(path) => {
                let kubeconfig =
                    Kubeconfig::read_from(path).map_err(|error| ConnectError::Kubeconfig {
                        path: path.clone(),
                        message: error.to_string(),
                    })?;
                Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                    .await
                    .map_err(|error| ConnectError::Kubeconfig {
                        path: path.clone(),
                        message: error.to_string(),
                    })?
            }
            None if options.context.is_some() => Config::from_kubeconfig(&kube_options)
                .await
                .map_err(|error| ConnectError::NoConfig {
                    message: error.to_string(),
                })?,
            None => Config::infer()
                .await
                .map_err(|error| ConnectError::NoConfig {
                    message: error.to_string(),
                })?,
        };
    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let cluster_url = config.cluster_url.to_string();
    let client =
        Client::try_from(config).map_err(|error| ConnectError::Client(error.to_string()))?;
    Ok((client, namespace, cluster_url))
}
