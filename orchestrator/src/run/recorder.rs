//! Writes a running execution's step records on a thread of its own, so that the step walker
//! never waits for SQLite between one step's end and the next step's start.
//!
//! What it keeps:
//! - **Order.** Records and their [`RunEvent`]s leave in the order the unit reported them.
//! - **Durable before announced.** A step's end is committed before its `StepFinished` event is
//!   sent, so whoever saw a step end (the CLI's progress, an MCP client) finds it in the store,
//!   even after a crash.
//! - **A barrier.** [`Recorder::finish`] returns once everything reported is written: the
//!   execution's final status is written after it, so a finished execution has all its steps.
//! - **Crash safety.** A step's end is committed within [`BATCH_WINDOW`] (plus the commit) of
//!   being reported. A step that runs longer than [`START_RECORD_DELAY`] has its start written,
//!   so that a crash leaves it `running` (and then `interrupted`) rather than missing.
//!
//! Ends reported close together (quick steps, skipped steps) share one transaction: one commit
//! and a page or two of WAL instead of one each. That also keeps the WAL short, which matters
//! because SQLite reads the whole WAL when the next process opens the database.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::{RunEvent, START_RECORD_DELAY};
use crate::execution::StepRecord;
use crate::store::Store;

/// How long the writer gathers records after the first one of a batch before it commits them.
/// Short enough that a crash loses at most a few milliseconds of step ends (which nobody was
/// told about yet) and that progress shows no visible lag, long enough that a stream of quick
/// steps takes a few transactions rather than one per step (200 steps of `true`: about 20
/// commits; with 2 ms, 65, and testloop's own CPU 39 → 33 ms with 10).
pub const BATCH_WINDOW: Duration = Duration::from_millis(10);

enum Message {
    Started(StepRecord),
    Finished(StepRecord),
}

/// What the unit's sink and the writer thread share.
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    messages: Vec<Message>,
    /// No more messages: write everything and stop.
    closed: bool,
    /// The writer sleeps until a message comes. While it gathers a batch it is not woken: a
    /// wake-up per step would cost both threads a system call and a context switch.
    idle: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, message: Message) {
        let mut state = self.lock();
        state.messages.push(message);
        if state.idle {
            state.idle = false;
            self.wake.notify_one();
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }
}

/// The handle the unit's sink holds.
pub(super) struct Recorder {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
    /// Set when the writer thread could not be started: records are then written and announced
    /// as they come, on the caller's thread, starts included.
    inline: Option<Writer>,
}

impl Recorder {
    pub(super) fn start(store: Arc<Store>, events: broadcast::Sender<RunEvent>) -> Self {
        let queue = Arc::new(Queue::default());
        let writer = Writer {
            store: Arc::clone(&store),
            events: events.clone(),
            pending_starts: HashMap::new(),
        };
        let shared = Arc::clone(&queue);
        match std::thread::Builder::new()
            .name("testloop-recorder".to_owned())
            .spawn(move || writer.run(&shared))
        {
            Ok(thread) => Self {
                queue,
                thread: Some(thread),
                inline: None,
            },
            Err(error) => {
                tracing::warn!(%error, "cannot start the step recorder thread: recording inline");
                Self {
                    queue,
                    thread: None,
                    inline: Some(Writer {
                        store,
                        events,
                        pending_starts: HashMap::new(),
                    }),
                }
            }
        }
    }

    /// A step began (or began another attempt).
    pub(super) fn started(&self, record: &StepRecord) {
        match &self.inline {
            Some(writer) => writer.commit(
                &mut vec![record.clone()],
                &mut vec![RunEvent::StepStarted(record.clone())],
            ),
            None => self.queue.push(Message::Started(record.clone())),
        }
    }

    /// A step reached a terminal status, or was skipped.
    pub(super) fn finished(&self, record: &StepRecord) {
        match &self.inline {
            Some(writer) => writer.commit(
                &mut vec![record.clone()],
                &mut vec![RunEvent::StepFinished(record.clone())],
            ),
            None => self.queue.push(Message::Finished(record.clone())),
        }
    }

    /// Writes everything reported so far, including the starts of steps still running, and stops
    /// the writer. Blocks until that is done.
    pub(super) fn finish(mut self) {
        self.queue.close();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the step recorder thread panicked");
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Dropped without `finish` (the execution's task was cancelled): the thread writes what
        // it has and exits on its own.
        self.queue.close();
    }
}

struct Writer {
    store: Arc<Store>,
    events: broadcast::Sender<RunEvent>,
    /// Started steps whose start is not written yet, by path, with when they started.
    pending_starts: HashMap<String, (StepRecord, Instant)>,
}

impl Writer {
    fn run(mut self, queue: &Queue) {
        let mut writes = Vec::new();
        let mut announce = Vec::new();
        let mut batch = Vec::new();
        loop {
            let mut state = queue.lock();
            // Sleep until a message comes, the queue closes or a pending start is due.
            while state.messages.is_empty() && !state.closed {
                let due = self.next_start_due();
                if due.is_some_and(|due| due <= Instant::now()) {
                    break;
                }
                state.idle = true;
                state = match due {
                    Some(due) => {
                        let timeout = due.saturating_duration_since(Instant::now());
                        queue
                            .wake
                            .wait_timeout(state, timeout)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0
                    }
                    None => queue
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner),
                };
                state.idle = false;
            }
            // Gather what else comes within the batch window, unless the queue is closing.
            if !state.messages.is_empty() && !state.closed {
                let until = Instant::now() + BATCH_WINDOW;
                while !state.closed {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    state = queue
                        .wake
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
            std::mem::swap(&mut batch, &mut state.messages);
            let closed = state.closed;
            drop(state);

            for message in batch.drain(..) {
                self.take(message, &mut writes, &mut announce);
            }
            let now = Instant::now();
            let due: Vec<String> = self
                .pending_starts
                .iter()
                .filter(|(_, (_, since))| {
                    closed || now.duration_since(*since) >= START_RECORD_DELAY
                })
                .map(|(path, _)| path.clone())
                .collect();
            for path in due {
                if let Some((record, _)) = self.pending_starts.remove(&path) {
                    writes.push(record);
                }
            }
            self.commit(&mut writes, &mut announce);
            if closed {
                return;
            }
        }
    }

    /// When the oldest unwritten start must be written.
    fn next_start_due(&self) -> Option<Instant> {
        self.pending_starts
            .values()
            .map(|(_, since)| *since + START_RECORD_DELAY)
            .min()
    }

    fn take(
        &mut self,
        message: Message,
        writes: &mut Vec<StepRecord>,
        announce: &mut Vec<RunEvent>,
    ) {
        match message {
            Message::Started(record) => {
                announce.push(RunEvent::StepStarted(record.clone()));
                self.pending_starts
                    .insert(record.path.clone(), (record, Instant::now()));
            }
            Message::Finished(record) => {
                // A start still pending is never written: the end replaces it.
                self.pending_starts.remove(&record.path);
                announce.push(RunEvent::StepFinished(record.clone()));
                writes.push(record);
            }
        }
    }

    /// Writes `writes` in one transaction, then sends `announce` in order.
    fn commit(&self, writes: &mut Vec<StepRecord>, announce: &mut Vec<RunEvent>) {
        if !writes.is_empty()
            && let Err(error) = self.store.upsert_steps(writes)
        {
            // One bad record must not cost the others theirs: write them one by one.
            tracing::warn!(%error, "cannot record a batch of steps: recording them one by one");
            for record in writes.iter() {
                if let Err(error) = self.store.upsert_step(record) {
                    tracing::error!(execution = %record.execution_id, step = %record.path, %error, "cannot record a step");
                }
            }
        }
        writes.clear();
        for event in announce.drain(..) {
            let _ = self.events.send(event);
        }
    }
}
