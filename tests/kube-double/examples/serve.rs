//! The API double as a process of its own, for checking the real-cluster test harness without a
//! cluster (README, "Tests against a real cluster"):
//!
//! ```sh
//! cargo run -p testloop-kube-double --example serve -- /tmp/double.kubeconfig testloop-e2e
//! ```
//!
//! writes a kubeconfig pointing at it (namespace `testloop-e2e`) and serves until interrupted.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(kubeconfig), Some(namespace)) = (args.next(), args.next()) else {
        eprintln!("usage: serve KUBECONFIG-TO-WRITE NAMESPACE");
        std::process::exit(2);
    };
    let double = testloop_kube_double::KubeDouble::start().await?;
    double.write_kubeconfig(std::path::Path::new(&kubeconfig), &namespace)?;
    eprintln!("API double at {}; kubeconfig in {kubeconfig}", double.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
