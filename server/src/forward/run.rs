//! One sink's task: read the next batch from the cursor, send it, and only once the sink has
//! acknowledged it advance the cursor; after a failure wait (exponential back-off with jitter)
//! and send the same entries again; when caught up, wait for new entries or security events.
//!
//! The task owns its cursor. `cursor` is the next entry to send; `acked` is the highest cursor
//! stored. A replay after a broken syslog connection rewinds `cursor`, never the stored value.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use sealtrail_net::backoff::{Backoff, Jitter};
use sealtrail_net::clock::unix_millis;
use tokio::sync::{mpsc, watch};

use super::metrics::SinkMetrics;
use super::sink::{Sink, SinkError};
use sealtrail_spec::envelope::RESERVED_EVENT_TYPE_PREFIX;

use super::{ForwardEvent, SinkConfig, entry_event};
use crate::published::Published;
use crate::store::{LogStore, StoreError};

/// Security events a sink may hold while it is busy; more are dropped and counted.
pub(super) const SECURITY_QUEUE: usize = 1024;

/// What every sink task shares.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) store: Arc<dyn LogStore>,
    pub(super) origin: String,
    pub(super) published: watch::Receiver<Arc<Published>>,
    pub(super) stop: watch::Receiver<bool>,
    /// Whether this instance forwards the log's entries (see `crate::leader`): on a shared
    /// store one instance does; the others forward only their own security events.
    pub(super) lead: watch::Receiver<bool>,
}

/// One sink's loop: read from the cursor, send, acknowledge, repeat; sleep on the published
/// watch when caught up. Returns when stopped.
pub(super) async fn run_sink(
    cfg: SinkConfig,
    sink: Sink,
    security: Option<mpsc::Receiver<serde_json::Value>>,
    ctx: Ctx,
    metrics: SinkMetrics,
) {
    let Some(mut task) = SinkTask::start(cfg, sink, security, ctx, metrics).await else {
        return;
    };
    while !*task.ctx.stop.borrow() {
        if task.step().await.is_break() {
            return;
        }
    }
}

/// A sink's state between steps.
struct SinkTask {
    cfg: SinkConfig,
    sink: Sink,
    /// Security events fed to this sink; `None` when it takes none, or its feed closed.
    security: Option<mpsc::Receiver<serde_json::Value>>,
    /// Security events received, to go with the next attempt.
    pending_security: Vec<ForwardEvent>,
    ctx: Ctx,
    metrics: SinkMetrics,
    /// Failed attempts in a row (sets the back-off).
    failures: u32,
    /// The next entry to send.
    cursor: u64,
    /// The highest cursor stored.
    acked: u64,
    /// Whether this instance forwards entries now.
    leading: bool,
}

/// What woke an idle sink.
enum Wake {
    /// The published tree changed (`true`) or the log is gone (`false`).
    Published(bool),
    /// A security event, or `None` when its feed closed.
    Security(Option<serde_json::Value>),
}

impl SinkTask {
    /// Reads the stored cursor; `None` (logged) if the store cannot say where the sink stands.
    async fn start(
        cfg: SinkConfig,
        mut sink: Sink,
        security: Option<mpsc::Receiver<serde_json::Value>>,
        ctx: Ctx,
        metrics: SinkMetrics,
    ) -> Option<Self> {
        let stored = {
            let n = cfg.name.clone();
            store_call(&ctx, move |s| s.sink_cursor(&n)).await
        };
        let acked = match stored {
            Ok(c) => c.unwrap_or(0),
            Err(e) => {
                tracing::error!(sink = %cfg.name, error = %e, "forward: cannot read the cursor; sink stopped");
                return None;
            }
        };
        // Syslog streams re-send a window before the cursor at start-up (see `replay_entries`).
        let cursor = acked.saturating_sub(sink.take_replay());
        let leading = *ctx.lead.borrow();
        Some(SinkTask {
            leading,
            cfg,
            sink,
            security,
            pending_security: Vec::new(),
            ctx,
            metrics,
            failures: 0,
            cursor,
            acked,
        })
    }

    /// One pass: take queued security events, then either wait for work, or read the next
    /// batch, send it, and advance the cursor or schedule the retry. `Break` when stopped.
    async fn step(&mut self) -> ControlFlow<()> {
        self.take_queued_security();
        let leading = *self.ctx.lead.borrow_and_update();
        if leading != self.leading {
            self.leading = leading;
            if leading && let Err(e) = self.take_over().await {
                tracing::error!(sink = %self.cfg.name, error = %e, "forward: reading the cursor failed");
                self.leading = false;
                self.failures += 1;
                return self.pause(backoff(&self.cfg, self.failures)).await;
            }
        }
        // An instance that does not lead has no entries to send: only security events.
        let size = if self.leading {
            self.published_size()
        } else {
            self.cursor
        };
        if self.cursor >= size && self.pending_security.is_empty() {
            return self.wait_for_new_entries().await;
        }
        let end = size.min(self.cursor.saturating_add(self.cfg.batch_entries));
        let mut events = match self.read_next_batch(end, size).await {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(sink = %self.cfg.name, error = %e, "forward: reading entries failed");
                self.failures += 1;
                return self.pause(backoff(&self.cfg, self.failures)).await;
            }
        };
        if let Some(ForwardEvent::Entry(first)) = events.first() {
            let age = unix_millis().saturating_sub(first.time_ms) / 1000;
            self.metrics.set_lag_seconds(age);
        }
        let n_security = self.pending_security.len();
        events.append(&mut self.pending_security);
        match self.send_batch(&events).await? {
            Ok(()) => {
                self.advance_cursor(events.len() as u64, end).await;
                ControlFlow::Continue(())
            }
            Err(e) => self.retry_after_failure(&e, n_security).await,
        }
    }

    /// Took over forwarding from another instance: go on from the cursor it stored (entries it
    /// sent after storing it are sent again: at least once).
    async fn take_over(&mut self) -> Result<(), StoreError> {
        let n = self.cfg.name.clone();
        let stored = store_call(&self.ctx, move |s| s.sink_cursor(&n)).await?;
        self.acked = stored.unwrap_or(0);
        self.cursor = self.acked;
        tracing::info!(sink = %self.cfg.name, cursor = self.cursor, "forward: forwarding entries from this instance");
        Ok(())
    }

    /// Moves the security events already queued (up to [`SECURITY_QUEUE`]) to the pending list.
    fn take_queued_security(&mut self) {
        if let Some(rx) = self.security.as_mut() {
            while self.pending_security.len() < SECURITY_QUEUE {
                match rx.try_recv() {
                    Ok(v) => self.pending_security.push(ForwardEvent::Security(v)),
                    Err(_) => break,
                }
            }
        }
    }

    /// The published tree size, marking it seen; updates the entry lag.
    fn published_size(&mut self) -> u64 {
        let size = self.ctx.published.borrow_and_update().size;
        self.metrics
            .set_lag_entries(size.saturating_sub(self.acked));
        size
    }

    /// Caught up: sleeps until the tree grows, a security event arrives or the task is stopped.
    async fn wait_for_new_entries(&mut self) -> ControlFlow<()> {
        self.metrics.set_lag_seconds(0);
        let ctx = &mut self.ctx;
        let woke = match self.security.as_mut() {
            Some(rx) => tokio::select! {
                r = ctx.published.changed() => Wake::Published(r.is_ok()),
                r = ctx.lead.changed() => Wake::Published(r.is_ok()),
                _ = ctx.stop.changed() => Wake::Published(false),
                v = rx.recv() => Wake::Security(v),
            },
            None => tokio::select! {
                r = ctx.published.changed() => Wake::Published(r.is_ok()),
                r = ctx.lead.changed() => Wake::Published(r.is_ok()),
                _ = ctx.stop.changed() => Wake::Published(false),
            },
        };
        match woke {
            Wake::Published(false) => return ControlFlow::Break(()),
            Wake::Published(true) => {}
            Wake::Security(Some(v)) => self.pending_security.push(ForwardEvent::Security(v)),
            // Every feeder is gone: no more security events.
            Wake::Security(None) => self.security = None,
        }
        ControlFlow::Continue(())
    }

    /// Entries `cursor..end` as events (none if only security events are pending).
    async fn read_next_batch(
        &self,
        end: u64,
        checkpoint_size: u64,
    ) -> Result<Vec<ForwardEvent>, StoreError> {
        if self.cursor < end {
            read_events(
                &self.ctx,
                self.cursor,
                end,
                checkpoint_size,
                self.cfg.own_entries,
            )
            .await
        } else {
            Ok(Vec::new())
        }
    }

    /// Sends one batch within the sink's timeout; `Break` if stopped meanwhile.
    async fn send_batch(
        &mut self,
        events: &[ForwardEvent],
    ) -> ControlFlow<(), Result<(), SinkError>> {
        let timeout = self.cfg.timeout();
        let timeout_secs = self.cfg.timeout_secs;
        tokio::select! {
            r = tokio::time::timeout(timeout, self.sink.send(events)) => ControlFlow::Continue(match r {
                Ok(r) => r,
                Err(_) => Err(SinkError(format!("no acknowledgement within {timeout_secs}s"))),
            }),
            _ = self.ctx.stop.changed() => ControlFlow::Break(()),
        }
    }

    /// The sink acknowledged `sent` events up to entry `end`: counts them, moves the cursor, and
    /// stores it if it passed the stored one (a failed store is logged; the batch would be sent
    /// again after a restart).
    async fn advance_cursor(&mut self, sent: u64, end: u64) {
        self.failures = 0;
        self.metrics.sent(sent);
        self.cursor = end;
        if end > self.acked {
            self.acked = end;
            let n = self.cfg.name.clone();
            if let Err(e) = store_call(&self.ctx, move |s| s.set_sink_cursor(&n, end)).await {
                tracing::warn!(sink = %self.cfg.name, error = %e, "forward: storing the cursor failed");
            }
        }
    }

    /// A failed send: the security events in it are lost (counted), the entries are sent again
    /// after the back-off, from further back if the sink asks for a replay.
    async fn retry_after_failure(&mut self, e: &SinkError, n_security: usize) -> ControlFlow<()> {
        // Security events were sent once (best-effort); entries are retried.
        if n_security > 0 {
            self.metrics.dropped(n_security as u64);
        }
        self.failures = self.failures.saturating_add(1);
        self.metrics.failed_attempt();
        let replay = self.sink.take_replay();
        self.cursor = self.cursor.saturating_sub(replay);
        let delay = backoff(&self.cfg, self.failures);
        tracing::warn!(sink = %self.cfg.name, error = %e, retry_in_ms = delay.as_millis() as u64,
            replay, "forward: send failed");
        self.pause(delay).await
    }

    /// Sleeps for `d` unless stopped first (`Break`).
    async fn pause(&mut self, d: Duration) -> ControlFlow<()> {
        tokio::select! {
            () = tokio::time::sleep(d) => ControlFlow::Continue(()),
            _ = self.ctx.stop.changed() => ControlFlow::Break(()),
        }
    }
}

/// Back-off before retry `n` (1-based): `retry_initial_ms` doubling up to `retry_max_ms`, with
/// up to 50% jitter below, so sinks recovering together do not retry in lock-step.
fn backoff(cfg: &SinkConfig, n: u32) -> Duration {
    Backoff::new(
        Duration::from_millis(cfg.retry_initial_ms),
        Duration::from_millis(cfg.retry_max_ms),
        Jitter::Below,
    )
    .delay(n)
}

/// Reads entries `start..end` and builds their events, off the async threads.
async fn read_events(
    ctx: &Ctx,
    start: u64,
    end: u64,
    checkpoint_size: u64,
    own_entries: bool,
) -> Result<Vec<ForwardEvent>, StoreError> {
    let store = ctx.store.clone();
    let origin = ctx.origin.clone();
    tokio::task::spawn_blocking(move || {
        let records = crate::store::record_states(store.as_ref(), start, end)?;
        let mut events = Vec::new();
        for ((leaf, i), record) in store.entries(start, end)?.iter().zip(start..).zip(records) {
            let event = entry_event(&origin, i, leaf, record, checkpoint_size)?;
            let own = event
                .json
                .get("event_type")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|t| t.starts_with(RESERVED_EVENT_TYPE_PREFIX));
            if own_entries || !own {
                events.push(ForwardEvent::Entry(event));
            }
        }
        Ok(events)
    })
    .await
    .map_err(|e| StoreError::Io(format!("reader task: {e}")))?
}

async fn store_call<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce(&dyn LogStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = ctx.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| StoreError::Io(format!("store task: {e}")))?
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::SystemTime;

    use sealtrail_spec::Hash;
    use sealtrail_spec::record::PrivateRecord;

    use super::*;
    use crate::forward::{ForwardMetrics, SinkKind};
    use crate::store::mem::MemStore;
    use crate::store::{Batch, CursorStore as _};

    const ORIGIN: &str = "log.example/run";

    fn record(i: u64) -> PrivateRecord {
        PrivateRecord {
            salt: [i as u8; 32],
            principal: "p".into(),
            payload: format!("{{\"n\":{i}}}").into_bytes(),
        }
    }

    fn leaf(i: u64) -> Vec<u8> {
        record(i)
            .leaf(1_000 + i, "application/json", None)
            .encode()
            .unwrap()
    }

    fn published(size: u64) -> Arc<Published> {
        Arc::new(Published {
            size,
            root: Hash([0; 32]),
            checkpoint: Arc::new(Vec::new()),
            signed_at: SystemTime::now(),
        })
    }

    /// A file sink named `s` over a memory store of `entries` entries, batches of 2, retries
    /// after about 1 ms, taking security events.
    struct Harness {
        task: SinkTask,
        store: Arc<MemStore>,
        registry: prometheus::Registry,
        stop: watch::Sender<bool>,
        security: mpsc::Sender<serde_json::Value>,
        file: PathBuf,
        _published: watch::Sender<Arc<Published>>,
        lead: watch::Sender<bool>,
        _dir: tempfile::TempDir,
    }

    async fn harness(entries: u64, stored_cursor: Option<u64>) -> Harness {
        let store = Arc::new(MemStore::new());
        store
            .commit(&Batch {
                old_size: 0,
                entries: (0..entries).map(leaf).collect(),
                records: (0..entries).map(|i| Some(record(i).encode())).collect(),
                ..Batch::default()
            })
            .unwrap();
        if let Some(c) = stored_cursor {
            store.set_sink_cursor("s", c).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.jsonl");
        let mut cfg = SinkConfig::new("s", SinkKind::File);
        cfg.path = Some(file.clone());
        cfg.batch_entries = 2;
        cfg.retry_initial_ms = 1;
        cfg.retry_max_ms = 1;
        cfg.security_events = true;
        let sink = Sink::open(&cfg).unwrap();
        let (published_tx, published_rx) = watch::channel(published(entries));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (security_tx, security_rx) = mpsc::channel(SECURITY_QUEUE);
        let registry = prometheus::Registry::new();
        let metrics = ForwardMetrics::new(&registry).unwrap().sink("s");
        let (lead_tx, lead_rx) = watch::channel(true);
        let ctx = Ctx {
            store: store.clone(),
            origin: ORIGIN.into(),
            published: published_rx,
            stop: stop_rx,
            lead: lead_rx,
        };
        let task = SinkTask::start(cfg, sink, Some(security_rx), ctx, metrics)
            .await
            .unwrap();
        Harness {
            task,
            store,
            registry,
            stop: stop_tx,
            security: security_tx,
            file,
            _published: published_tx,
            lead: lead_tx,
            _dir: dir,
        }
    }

    impl Harness {
        /// What the file holds: entry indices, and `-1` for a security event.
        fn delivered(&self) -> Vec<i64> {
            let text = std::fs::read_to_string(&self.file).unwrap_or_default();
            text.lines()
                .map(|l| {
                    let doc: serde_json::Value = serde_json::from_str(l).unwrap();
                    doc["index"].as_i64().unwrap_or(-1)
                })
                .collect()
        }

        fn stored(&self) -> Option<u64> {
            self.store.sink_cursor("s").unwrap()
        }

        fn metric(&self, name: &str) -> f64 {
            let family = self.registry.gather();
            let f = family.iter().find(|f| f.name() == name).unwrap();
            let m = &f.get_metric()[0];
            m.get_counter().get_value() + m.get_gauge().get_value()
        }
    }

    #[tokio::test]
    async fn the_logs_own_entries_are_forwarded_unless_turned_off_and_erased_content_never() {
        let store = Arc::new(MemStore::new());
        let erasure = PrivateRecord {
            salt: [9; 32],
            principal: "token:ops".into(),
            payload: br#"{"erasure":{"indices":[1]}}"#.to_vec(),
        };
        let erased = record(1);
        store
            .commit(&Batch {
                old_size: 0,
                entries: vec![
                    leaf(0),
                    erased
                        .leaf(1_001, "application/json", None)
                        .encode()
                        .unwrap(),
                    erasure
                        .leaf(1_002, "application/json", Some("sealtrail.erasure"))
                        .encode()
                        .unwrap(),
                ],
                records: vec![Some(record(0).encode()), None, Some(erasure.encode())],
                tombstones: vec![(1, 2)],
                ..Batch::default()
            })
            .unwrap();
        let (_p, published_rx) = watch::channel(published(3));
        let (_s, stop_rx) = watch::channel(false);
        let (_l, lead) = watch::channel(true);
        let ctx = Ctx {
            store,
            origin: ORIGIN.into(),
            published: published_rx,
            stop: stop_rx,
            lead,
        };
        let docs = |events: Vec<ForwardEvent>| -> Vec<serde_json::Value> {
            events
                .into_iter()
                .map(|e| match e {
                    ForwardEvent::Entry(e) => e.json,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let all = docs(read_events(&ctx, 0, 3, 3, true).await.unwrap());
        assert_eq!(all.len(), 3);
        assert_eq!(all[0]["payload"]["n"], 0);
        assert_eq!(all[1]["erased"]["erasure_index"], 2);
        assert!(all[1].get("payload").is_none() && all[1].get("principal").is_none());
        assert_eq!(all[2]["event_type"], "sealtrail.erasure");
        assert_eq!(all[2]["payload"]["erasure"]["indices"][0], 1);
        let without = docs(read_events(&ctx, 0, 3, 3, false).await.unwrap());
        let indices: Vec<_> = without.iter().map(|d| d["index"].clone()).collect();
        assert_eq!(indices, [0, 1]);
    }

    #[tokio::test]
    async fn each_step_sends_one_batch_and_stores_the_cursor_after_it() {
        let mut h = harness(5, None).await;
        assert_eq!((h.task.cursor, h.task.acked), (0, 0));
        assert!(h.task.step().await.is_continue());
        assert_eq!(h.delivered(), [0, 1]);
        assert_eq!((h.task.cursor, h.task.acked, h.stored()), (2, 2, Some(2)));
        assert_eq!(h.metric("forward_lag_entries"), 5.0, "set before the send");
        h.security
            .try_send(serde_json::json!({"kind": "alarm"}))
            .unwrap();
        assert!(h.task.step().await.is_continue());
        assert_eq!(h.delivered(), [0, 1, 2, 3, -1], "entries, then the event");
        assert!(h.task.step().await.is_continue());
        assert_eq!(h.delivered(), [0, 1, 2, 3, -1, 4]);
        assert_eq!((h.task.cursor, h.task.acked, h.stored()), (5, 5, Some(5)));
        assert_eq!(h.metric("forward_sent_total"), 6.0);
        assert_eq!(h.metric("forward_failed_total"), 0.0);
        // Caught up: the next step waits, here until the task is stopped.
        h.stop.send(true).unwrap();
        assert!(h.task.step().await.is_break());
        assert_eq!(h.delivered().len(), 6);
        assert_eq!(h.metric("forward_lag_seconds"), 0.0);
    }

    /// An instance that does not lead forwards its security events and no entry; taking the
    /// lead, it goes on from the cursor the previous leader stored, and standing down stops it.
    #[tokio::test]
    async fn only_the_leader_forwards_entries_and_it_starts_from_the_stored_cursor() {
        let mut h = harness(6, None).await;
        h.lead.send_replace(false);
        h.security
            .try_send(serde_json::json!({"kind": "alarm"}))
            .unwrap();
        assert!(h.task.step().await.is_continue());
        assert_eq!(h.delivered(), [-1], "the security event, no entry");
        assert_eq!(h.stored(), None, "no cursor written");
        // Another instance forwarded 0..4 meanwhile, then this one takes over.
        h.store.set_sink_cursor("s", 4).unwrap();
        h.lead.send_replace(true);
        assert!(h.task.step().await.is_continue());
        assert_eq!(h.delivered(), [-1, 4, 5]);
        assert_eq!(h.stored(), Some(6));
        h.lead.send_replace(false);
        h.store
            .commit(&Batch {
                old_size: 6,
                entries: vec![leaf(6)],
                records: vec![Some(record(6).encode())],
                ..Batch::default()
            })
            .unwrap();
        h._published.send_replace(published(7));
        assert!(h.task.step().await.is_continue(), "woken by the new entry");
        assert_eq!(h.delivered(), [-1, 4, 5], "not sent without the lead");
        h.stop.send(true).unwrap();
        assert!(h.task.step().await.is_break(), "waits: nothing to send");
        assert_eq!(h.delivered(), [-1, 4, 5]);
    }

    #[tokio::test]
    async fn a_failed_send_keeps_the_cursor_and_loses_only_security_events() {
        let mut h = harness(3, Some(1)).await;
        assert_eq!(
            (h.task.cursor, h.task.acked),
            (1, 1),
            "resumes at the stored cursor"
        );
        // A directory where the file should be: every append fails.
        std::fs::remove_file(&h.file).unwrap();
        std::fs::create_dir(&h.file).unwrap();
        h.security
            .try_send(serde_json::json!({"kind": "alarm"}))
            .unwrap();
        assert!(h.task.step().await.is_continue());
        assert_eq!((h.task.cursor, h.task.acked, h.stored()), (1, 1, Some(1)));
        assert_eq!(h.task.failures, 1);
        assert_eq!(h.metric("forward_failed_total"), 1.0);
        assert_eq!(h.metric("forward_retries_total"), 1.0);
        assert_eq!(h.metric("forward_dropped_events_total"), 1.0);
        assert_eq!(h.metric("forward_sent_total"), 0.0);
        std::fs::remove_dir(&h.file).unwrap();
        assert!(h.task.step().await.is_continue());
        assert_eq!(
            h.delivered(),
            [1, 2],
            "the same entries again, without the event"
        );
        assert_eq!((h.task.cursor, h.task.acked, h.stored()), (3, 3, Some(3)));
        assert_eq!(h.task.failures, 0);
    }

    #[tokio::test]
    async fn an_unreadable_entry_is_retried_without_sending() {
        let mut h = harness(2, None).await;
        h.store.remove_entry(1);
        assert!(h.task.step().await.is_continue());
        assert_eq!((h.task.cursor, h.task.failures, h.stored()), (0, 1, None));
        assert!(h.delivered().is_empty());
        assert_eq!(h.metric("forward_failed_total"), 0.0, "not a send");
        // A back-off long enough that only the stop can end the pause.
        h.task.cfg.retry_initial_ms = 3_600_000;
        h.task.cfg.retry_max_ms = 3_600_000;
        h.stop.send(true).unwrap();
        assert!(
            h.task.step().await.is_break(),
            "a stopped task does not retry"
        );
        assert_eq!(h.task.failures, 2);
    }
}
