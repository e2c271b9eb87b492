//! Notifications for clients that watch a running execution.
//!
//! A client watches `testloop://executions/{id}` (any step of it changes) or
//! `testloop://executions/{id}/logs/{step}` (that step starts or finishes): through
//! `subscriptions/listen` on current clients, through `resources/subscribe` on handshake-era ones.
//! Either way each orchestrator [`RunEvent`] of the execution becomes a
//! `notifications/resources/updated` carrying the URI exactly as the client wrote it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::run::RunEvent;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::resources::{ResourceError, ResourceUri};

/// Most resources one session may subscribe to with `resources/subscribe`.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// A watched URI, with the execution id its (possibly abbreviated) id resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// As the client wrote it: notifications must carry this exact string.
    pub uri: String,
    execution: String,
    step: Option<String>,
}

impl Watch {
    /// Resolves a subscription URI against the orchestrator; only execution and step-log URIs can
    /// change.
    pub fn resolve(orchestrator: &Orchestrator, uri: &str) -> Result<Self, ResourceError> {
        let (execution, step) = match ResourceUri::parse(uri)? {
            ResourceUri::Workflow(_) => {
                return Err(ResourceError::NotFound(format!(
                    "{uri}: workflows change only when saved; subscribe to an execution \
                     (testloop://executions/ID) to follow a run"
                )));
            }
            ResourceUri::Execution(id) => (id, None),
            ResourceUri::StepLog { execution, step } => (execution, Some(step)),
        };
        let (record, _) = orchestrator.execution(&execution).map_err(|error| {
            ResourceError::NotFound(format!("{error}: list_executions shows recent ones"))
        })?;
        Ok(Self {
            uri: uri.to_owned(),
            execution: record.id,
            step,
        })
    }

    /// Whether `event` changes what this URI shows.
    pub fn is_touched_by(&self, event: &RunEvent) -> bool {
        if event.execution_id() != self.execution {
            return false;
        }
        match (&self.step, event) {
            (None, _) => true,
            (Some(step), RunEvent::StepStarted(record) | RunEvent::StepFinished(record)) => {
                &record.path == step
            }
            (Some(_), RunEvent::ExecutionFinished(_)) => true,
        }
    }
}

/// Forwards the orchestrator's events that touch `watches` to `notify` until `stop` completes,
/// the orchestrator closes, or `notify` reports that the client is gone.
pub async fn forward<F, Fut>(
    orchestrator: &Orchestrator,
    watches: Vec<Watch>,
    stop: impl Future<Output = ()>,
    mut notify: F,
) where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut stop = std::pin::pin!(stop);
    if watches.is_empty() {
        stop.await;
        return;
    }
    let mut events = orchestrator.events();
    loop {
        let event = tokio::select! {
            _ = &mut stop => return,
            event = events.recv() => event,
        };
        match event {
            Ok(event) => {
                for watch in watches.iter().filter(|watch| watch.is_touched_by(&event)) {
                    if !notify(watch.uri.clone()).await {
                        return;
                    }
                }
            }
            // Missing some events only means fewer notifications; the next one still says "changed".
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// The `resources/subscribe` subscriptions of one session, each a forwarding task.
#[derive(Clone, Default)]
pub struct LegacySubscriptions {
    active: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

impl LegacySubscriptions {
    /// Registers `uri`; the returned token stops its forwarding task. `None` when already
    /// subscribed.
    pub fn add(&self, uri: &str) -> Result<Option<CancellationToken>, String> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if active.contains_key(uri) {
            return Ok(None);
        }
        if active.len() >= MAX_SUBSCRIPTIONS {
            return Err(format!(
                "this session already has {MAX_SUBSCRIPTIONS} subscriptions: unsubscribe from some first"
            ));
        }
        let token = CancellationToken::new();
        active.insert(uri.to_owned(), token.clone());
        Ok(Some(token))
    }

    /// Stops the subscription to `uri`; false when there was none.
    pub fn remove(&self, uri: &str) -> bool {
        let removed = self
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uri);
        removed.map(|token| token.cancel()).is_some()
    }
}
