//! The sequencer thread: receives submissions, encodes and hashes them into the open batch
//! (see `batch`), and answers each batch once the writer is done with it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sealtrail_spec::Hash;
use tokio::sync::mpsc;

use sealtrail_net::clock::unix_millis;

use super::*;

use super::batch::*;

impl Sequencer {
    pub(super) fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut stopping = false;
        loop {
            self.gather();
            if stopping && self.waiting.is_empty() && self.shared.lock().outstanding == 0 {
                break;
            }
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            self.receive(first, &mut stopping);
            while let Ok(msg) = rx.try_recv() {
                self.receive(msg, &mut stopping);
            }
        }
        // The writer commits what it was given (its answers may find nobody left) and stops.
        self.shared.lock().closing = true;
        self.shared.ready.notify_all();
        if let Some(t) = self.writer.take()
            && t.join().is_err()
        {
            tracing::error!("the writer thread panicked");
        }
        if let Some((stop, t)) = self.follower.take() {
            stop.store(true, Ordering::Release);
            t.thread().unpark();
            let _ = t.join();
        }
        tracing::info!("sequencer stopped");
    }

    fn receive(&mut self, msg: Msg, stopping: &mut bool) {
        match msg {
            Msg::Done(done) => {
                self.shared.lock().outstanding -= 1;
                self.answer(*done);
            }
            Msg::Taken => {}
            Msg::Shutdown => {
                *stopping = true;
                self.shared.lock().stopping = true;
            }
            Msg::Submit(s) if *stopping => {
                self.queued.fetch_sub(s.entries.len(), Ordering::AcqRel);
                self.shared.lock().with_thread -= 1;
                let _ = s.reply.send(Err(SequenceError::ShuttingDown));
            }
            Msg::Import(_, reply) if *stopping => {
                self.shared.lock().with_thread -= 1;
                let _ = reply.send(Err(SequenceError::ShuttingDown));
            }
            Msg::Admin(_, reply) if *stopping => {
                self.shared.lock().with_thread -= 1;
                let _ = reply.send(Err(SequenceError::ShuttingDown));
            }
            Msg::Submit(s) => self.waiting.push_back(Waiting::Submit(s)),
            Msg::Import(leaves, reply) => self.waiting.push_back(Waiting::Import(leaves, reply)),
            Msg::Admin(planned, reply) => self.waiting.push_back(Waiting::Admin(planned, reply)),
        }
    }

    /// Moves waiting submissions into the open batch while it has room, in arrival order.
    fn gather(&mut self) {
        if self.failed.load(Ordering::Acquire) {
            self.refuse_all();
            return;
        }
        let mut added = false;
        while let Some(front) = self.waiting.front() {
            let fits = {
                let mut g = self.shared.lock();
                let fits = match front {
                    Waiting::Import(..) => g.open.is_none(),
                    Waiting::Admin(..) => g.open.is_none(),
                    Waiting::Submit(s) => g.fits(s.entries.len(), self.max_batch),
                };
                if !fits {
                    g.wake_on_take = true;
                }
                fits
            };
            if !fits {
                break;
            }
            match self.waiting.pop_front() {
                Some(Waiting::Submit(sub)) => {
                    self.queued.fetch_sub(sub.entries.len(), Ordering::AcqRel);
                    added |= self.accept(sub);
                }
                Some(Waiting::Import(batch, reply)) => added |= self.import(*batch, reply),
                Some(Waiting::Admin(planned, reply)) => added |= self.admin(*planned, reply),
                None => break,
            }
        }
        if added {
            self.shared.ready.notify_one();
        }
        self.metrics
            .queue_depth
            .set(self.queued.load(Ordering::Acquire) as i64);
    }

    /// After a failed commit: everything waiting or gathered is refused.
    fn refuse_all(&mut self) {
        let err = SequenceError::Unavailable(Unavailable::EarlierFailure);
        self.shared.lock().with_thread -= self.waiting.len();
        for w in self.waiting.drain(..) {
            match w {
                Waiting::Submit(s) => {
                    self.queued.fetch_sub(s.entries.len(), Ordering::AcqRel);
                    let _ = s.reply.send(Err(err.clone()));
                }
                Waiting::Import(_, reply) => {
                    let _ = reply.send(Err(err.clone()));
                }
                Waiting::Admin(_, reply) => {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
        let open = {
            let mut g = self.shared.lock();
            let open = g.open.take();
            if open.is_some() {
                g.outstanding -= 1;
            }
            open
        };
        if let Some(open) = open {
            answer_error(open, &err);
        }
    }

    /// Encodes one submission (outside the lock: the writer may be taking the previous batch
    /// meanwhile) and adds it to the open batch (opening one if needed), or answers it now.
    /// Returns whether the open batch changed.
    fn accept(&mut self, sub: Submission) -> bool {
        // This submission still counts in `with_thread`, so nothing is accepted on a caller's
        // thread until it is in the batch: its time and index stay in order.
        let time_ms = {
            let mut g = self.shared.lock();
            g.last_time_ms = unix_millis().max(g.last_time_ms);
            g.last_time_ms
        };
        let encoded = encode(sub, time_ms);
        let mut g = self.shared.lock();
        g.with_thread -= 1;
        let Some(encoded) = encoded else {
            return false;
        };
        add_to_batch(&mut g, self.store.as_ref(), encoded, time_ms);
        true
    }

    /// Checks verbatim leaves (see [`SequencerHandle::import_blocking`]) and opens a batch of
    /// them alone, or answers why not. Returns whether a batch opened.
    fn import(&mut self, batch: ImportBatch, reply: ImportReply) -> bool {
        let (leaves, reapply) = batch;
        // Nothing is open (imports wait for that) and nothing is accepted elsewhere while the
        // import counts in `with_thread`, so the next index and the time floor stay put.
        let (old_size, floor) = {
            let g = self.shared.lock();
            (g.next_size, g.last_time_ms)
        };
        let checked = check_import(Open::new(old_size), leaves, floor).and_then(|(mut open, t)| {
            reapply_erasures(self.store.as_ref(), &mut open, &reapply)?;
            Ok((open, t))
        });
        let mut g = self.shared.lock();
        g.with_thread -= 1;
        match checked {
            Ok((mut open, time_ms)) => {
                g.last_time_ms = time_ms;
                open.import = Some(reply);
                g.open = Some(open);
                g.outstanding += 1;
                true
            }
            Err(e) => {
                drop(g);
                let _ = reply.send(Err(e));
                false
            }
        }
    }

    /// Gives a planned erasure or hold (see `admin`) its index and time, and opens a batch of
    /// its entry alone. Returns whether a batch opened.
    fn admin(&mut self, planned: admin::Planned, reply: admin::AdminReply) -> bool {
        // Nothing is open (admin work waits for that) and nothing is accepted elsewhere while
        // this counts in `with_thread`, so the next index and the time floor stay put.
        let (size, time_ms) = {
            let mut g = self.shared.lock();
            g.last_time_ms = unix_millis().max(g.last_time_ms);
            (g.next_size, g.last_time_ms)
        };
        let applied = admin::apply(planned, size, time_ms);
        let mut g = self.shared.lock();
        g.with_thread -= 1;
        match applied {
            Ok((leaf, effects)) => {
                let mut open = Open::new(size);
                open.entries.push(leaf.bytes);
                open.records.push(Some(leaf.record));
                open.leaf_hashes.push(leaf.hash);
                open.fields.push(leaf.fields);
                open.erased = effects.erased;
                open.posting_changes = effects.postings;
                open.admin = Some(admin::AdminWork {
                    reply,
                    outcome: effects.outcome,
                    hold_placed: effects.hold_placed,
                    hold_released: effects.hold_released,
                });
                g.open = Some(open);
                g.outstanding += 1;
                true
            }
            Err(e) => {
                drop(g);
                let _ = reply.send(Err(e));
                false
            }
        }
    }

    /// Answers everyone waiting on a batch the writer is done with.
    fn answer(&mut self, done: Done) {
        let Done { result, mut open } = done;
        let published = match result {
            Ok(p) => p,
            Err(e) => return answer_error(open, &e),
        };
        if let Some(work) = open.admin.take() {
            // Before the answer: the next admin operation, planned after it, sees the change.
            let mut holds = self
                .holds
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(hold) = work.hold_placed {
                holds.push(hold);
            }
            if let Some(id) = work.hold_released {
                holds.retain(|h| h.id != id);
            }
            drop(holds);
            // Appends that joined the batch after the admin entry are answered below.
            let _ = work.reply.send(Ok(work.outcome));
        }
        if let Some(reply) = open.import.take() {
            let _ = reply.send(Ok(published));
            return;
        }
        let hashes_of = |first: u64, n: usize| {
            let start = usize::try_from(first - open.old_size).unwrap_or(usize::MAX);
            open.leaf_hashes
                .get(start..start.saturating_add(n))
                .map(<[Hash]>::to_vec)
                .unwrap_or_default()
        };
        let mut slots = Vec::with_capacity(open.accepted.len());
        for a in open.accepted {
            slots.push((a.first_index, a.count, a.time_ms));
            let _ = a.sub.reply.send(Ok(Sequenced {
                first_index: a.first_index,
                leaf_hashes: hashes_of(a.first_index, a.count),
                time_ms: a.time_ms,
                published: published.clone(),
                duplicate: false,
            }));
        }
        for d in open.duplicates {
            let (sub, first_index, hashes, time_ms) = match d {
                Duplicate::InBatch { sub, slot } => {
                    let (first, n, time) = slots.get(slot).copied().unwrap_or_default();
                    (sub, first, hashes_of(first, n), time)
                }
                Duplicate::InFlight {
                    sub,
                    first_index,
                    hashes,
                    time_ms,
                } => (sub, first_index, hashes, time_ms),
                Duplicate::Stored {
                    sub,
                    first_index,
                    count,
                } => match stored_entries(self.store.as_ref(), first_index, count) {
                    Ok((hashes, time)) => (sub, first_index, hashes, time),
                    Err(e) => {
                        let _ = sub
                            .reply
                            .send(Err(SequenceError::Unavailable(Unavailable::Read(
                                Arc::new(e),
                            ))));
                        continue;
                    }
                },
            };
            let _ = sub.reply.send(Ok(Sequenced {
                first_index,
                leaf_hashes: hashes,
                time_ms,
                published: published.clone(),
                duplicate: true,
            }));
        }
    }
}
