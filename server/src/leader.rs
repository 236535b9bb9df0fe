//! Background singletons: tasks that must run on exactly one instance of a log at a time
//! (witnessing, forwarding entries, retention). On a shared store each holds a PostgreSQL
//! advisory lock on a session of its own ([`LogStore::try_lead`]); the instances that do not
//! hold it try again every [`RETRY`], so when the holder dies (its session ends and PostgreSQL
//! frees the lock) another takes over within about that long. The holder checks every
//! [`CHECK`] that its session still holds the lock, and stands down when it does not. On an
//! embedded store the one process always leads.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::store::LogStore;

/// How often an instance that does not lead tries to take the lock.
pub const RETRY: Duration = Duration::from_secs(2);

/// How often the leader checks that it still holds the lock.
pub const CHECK: Duration = Duration::from_secs(2);

/// Whether this instance runs one named singleton, as it changes. Dropping it stands down.
#[derive(Debug)]
pub struct Leader {
    rx: watch::Receiver<bool>,
    /// Keeps the channel open for an embedded store (always leading, no task).
    _tx: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Attempts to take the lock so far.
    tries: watch::Receiver<u64>,
}

impl Leader {
    /// Starts contending for `name` on the current runtime (at once leading on an embedded
    /// store).
    pub fn spawn(store: Arc<dyn LogStore>, name: &'static str, metrics: Arc<Metrics>) -> Self {
        let gauge = metrics.leader.with_label_values(&[name]);
        if !store.shared() {
            gauge.set(1);
            let (tx, rx) = watch::channel(true);
            return Leader {
                rx,
                _tx: Some(tx),
                task: None,
                tries: watch::channel(0).1,
            };
        }
        gauge.set(0);
        let (tx, rx) = watch::channel(false);
        let (tries_tx, tries) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            loop {
                let s = store.clone();
                let tried = tokio::task::spawn_blocking(move || s.try_lead(name)).await;
                tries_tx.send_modify(|n| *n += 1);
                match tried {
                    Ok(Ok(Some(lead))) => {
                        tracing::info!(task = name, "leading: this instance runs it now");
                        gauge.set(1);
                        tx.send_replace(true);
                        let lead = Arc::new(lead);
                        loop {
                            tokio::time::sleep(CHECK).await;
                            let l = lead.clone();
                            let held = tokio::task::spawn_blocking(move || l.held())
                                .await
                                .unwrap_or(false);
                            if !held {
                                break;
                            }
                        }
                        tracing::warn!(task = name, "lost the lead: standing down");
                        gauge.set(0);
                        tx.send_replace(false);
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(task = name, error = %e, "cannot contend for the lead")
                    }
                    Err(e) => tracing::warn!(task = name, error = %e, "lead task failed"),
                }
                tokio::time::sleep(RETRY).await;
            }
        });
        Leader {
            rx,
            _tx: None,
            task: Some(task),
            tries,
        }
    }

    /// Follows how many attempts to take the lock were made.
    pub fn tries(&self) -> watch::Receiver<u64> {
        self.tries.clone()
    }

    /// Follows whether this instance leads.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Whether this instance leads now.
    pub fn leads(&self) -> bool {
        *self.rx.borrow()
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            // The lock's session is closed with the task's guard.
            t.abort();
        }
    }
}

/// Runs the task `start` makes while `lead` says this instance leads, aborting it on standing
/// down and starting a fresh one on leading again. Ends when `lead`'s sender is gone.
pub async fn while_leading<F, Fut>(mut lead: watch::Receiver<bool>, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        if lead.wait_for(|l| *l).await.is_err() {
            return;
        }
        let task = tokio::spawn(start());
        let lost = lead.wait_for(|l| !*l).await;
        task.abort();
        if lost.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg_cluster;
    use crate::store::pg_store::{PgConfig, PgStore};

    fn store(url: &str) -> Arc<dyn LogStore> {
        Arc::new(PgStore::connect(&PgConfig::new(url)).unwrap())
    }

    async fn until(rx: &mut watch::Receiver<bool>, want: bool, what: &str) {
        tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|l| *l == want))
            .await
            .unwrap_or_else(|_| panic!("{what} within 20 s"))
            .unwrap();
    }

    /// One instance of two leads; the other cannot take the lock meanwhile, takes over once the
    /// first stands down, and a task run `while_leading` moves with the lead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_instance_leads_and_another_takes_over() {
        let url = pg_cluster::shared().new_database();
        let (a, b) = (store(&url), store(&url));
        let metrics = Arc::new(Metrics::new().unwrap());
        let lead_a = Leader::spawn(a.clone(), "test", metrics.clone());
        until(&mut lead_a.watch(), true, "the first instance leads").await;
        assert_eq!(metrics.leader.with_label_values(&["test"]).get(), 1);
        assert!(
            b.try_lead("test").unwrap().is_none(),
            "a second instance got a lock already held"
        );
        assert!(
            b.try_lead("other").unwrap().is_some(),
            "locks of different names are independent"
        );
        let metrics_b = Arc::new(Metrics::new().unwrap());
        let lead_b = Leader::spawn(b.clone(), "test", metrics_b.clone());
        let (ran_tx, mut ran) = tokio::sync::mpsc::unbounded_channel();
        let runs = tokio::spawn(while_leading(lead_b.watch(), move || {
            let tx = ran_tx.clone();
            async move {
                let _ = tx.send(());
                std::future::pending::<()>().await;
            }
        }));
        // Its first attempt was refused.
        tokio::time::timeout(
            Duration::from_secs(20),
            lead_b.tries().wait_for(|n| *n >= 1),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(!lead_b.leads());
        assert!(ran.try_recv().is_err(), "ran without the lead");
        drop(lead_a);
        until(&mut lead_b.watch(), true, "the second instance took over").await;
        tokio::time::timeout(Duration::from_secs(5), ran.recv())
            .await
            .expect("the task started with the lead");
        assert_eq!(metrics_b.leader.with_label_values(&["test"]).get(), 1);
        assert!(a.try_lead("test").unwrap().is_none());
        runs.abort();
    }

    /// An embedded store's only process always leads.
    #[tokio::test]
    async fn an_embedded_store_always_leads() {
        let store: Arc<dyn LogStore> = Arc::new(crate::store::mem::MemStore::new());
        let lead = Leader::spawn(store, "x", Arc::new(Metrics::new().unwrap()));
        assert!(lead.leads());
    }
}
