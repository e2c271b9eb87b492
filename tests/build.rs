//! `cfg(e2e_cluster)` when `TESTLOOP_E2E_KUBECONFIG` names a cluster: the tests against a real
//! cluster run then, and are ignored otherwise, with that reason.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(e2e_cluster)");
    println!("cargo::rerun-if-env-changed=TESTLOOP_E2E_KUBECONFIG");
    if std::env::var_os("TESTLOOP_E2E_KUBECONFIG").is_some_and(|value| !value.is_empty()) {
        println!("cargo::rustc-cfg=e2e_cluster");
    }
}
