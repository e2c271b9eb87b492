//! A test double of the Kubernetes API server that plays the kubelet with local processes.
