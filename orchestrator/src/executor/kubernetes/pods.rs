//! One watch of every testloop pod in the namespace, shared by all running units.
//!
//! A watch per unit would cost a list and a watch request for every unit, and a unit would miss
//! what happened to its pod between creating it and starting to watch. One kube-runtime watcher
//! for the server's lifetime (as a controller's informer does) costs one list and one long watch,
//! whatever the number of units; it re-lists on `410 Gone` and backs off on errors by itself. A
//! unit subscribes to its pod's name before creating the pod, so it sees every change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

/// What is known of a pod.
#[derive(Debug, Clone, Default)]
pub enum PodView {
    /// Not seen yet.
    #[default]
    Unknown,
    Present(Arc<Pod>),
    /// Deleted, or gone when the watch re-listed.
    Gone,
}

type Subscribers = Arc<Mutex<HashMap<String, watch::Sender<PodView>>>>;

/// The shared watch. Dropping it stops the watcher task.
pub struct PodWatch {
    subscribers: Subscribers,
    /// Whether the first list has completed, so that "not seen" means "not there".
    synced: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PodWatch {
    /// Starts watching the pods of `api` that match `label_selector`.
    pub fn start(api: Api<Pod>, label_selector: &str) -> Self {
        let subscribers: Subscribers = Arc::default();
        let (synced_tx, synced) = watch::channel(false);
        let config = watcher::Config::default().labels(label_selector);
        let task_subscribers = Arc::clone(&subscribers);
        let task = tokio::spawn(async move {
            let stream = watcher(api, config).default_backoff();
            futures::pin_mut!(stream);
            // Pods listed since the last `Init`: those not among them when the list completes
            // are gone (deleted while the watch was down).
            let mut listed: Vec<String> = Vec::new();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Init) => listed.clear(),
                    Ok(watcher::Event::InitApply(pod)) => {
                        if let Some(name) = pod.metadata.name.clone() {
                            publish(&task_subscribers, &name, PodView::Present(Arc::new(pod)));
                            listed.push(name);
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        let subscribers = lock(&task_subscribers);
                        for (name, sender) in subscribers.iter() {
                            let seen = matches!(*sender.borrow(), PodView::Present(_));
                            if seen && !listed.contains(name) {
                                sender.send_replace(PodView::Gone);
                            }
                        }
                        drop(subscribers);
                        listed.clear();
                        synced_tx.send_replace(true);
                    }
                    Ok(watcher::Event::Apply(pod)) => {
                        if let Some(name) = pod.metadata.name.clone() {
                            publish(&task_subscribers, &name, PodView::Present(Arc::new(pod)));
                        }
                    }
                    Ok(watcher::Event::Delete(pod)) => {
                        if let Some(name) = pod.metadata.name.clone() {
                            publish(&task_subscribers, &name, PodView::Gone);
                        }
                    }
                    Err(error) => {
                        // The backoff retries; say what is wrong once per failure.
                        tracing::warn!(%error, "watching test pods failed; retrying");
                    }
                }
            }
        });
        Self {
            subscribers,
            synced,
            task,
        }
    }

    /// Follows the pod named `name`: call before creating it so that no change is missed.
    pub fn subscribe(&self, name: &str) -> watch::Receiver<PodView> {
        let mut subscribers = lock(&self.subscribers);
        match subscribers.get(name) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(PodView::Unknown);
                subscribers.insert(name.to_owned(), sender);
                receiver
            }
        }
    }

    /// Tells the subscribers of `name` what a direct read of the pod found, unless the watch has
    /// told them something already (which is newer). A pod that exists before anyone subscribes
    /// and never changes afterwards would otherwise stay unknown until the watch re-lists.
    pub fn seed(&self, name: &str, pod: Pod) {
        if let Some(sender) = lock(&self.subscribers).get(name) {
            sender.send_if_modified(|view| {
                let unknown = matches!(view, PodView::Unknown);
                if unknown {
                    *view = PodView::Present(Arc::new(pod));
                }
                unknown
            });
        }
    }

    /// Stops following `name` (its unit is done).
    pub fn forget(&self, name: &str) {
        lock(&self.subscribers).remove(name);
    }

    /// Waits until the first list has completed.
    pub async fn synced(&self) {
        let mut synced = self.synced.clone();
        // An error means the task ended: nothing more will come, so stop waiting.
        let _ = synced.wait_for(|done| *done).await;
    }
}

fn publish(subscribers: &Subscribers, name: &str, view: PodView) {
    if let Some(sender) = lock(subscribers).get(name) {
        sender.send_replace(view);
    }
}
