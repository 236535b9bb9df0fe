//! The load's two shapes. Closed loop: `concurrency` workers, each on its own connection, send
//! their next request as soon as the previous one is answered. Open loop: requests start on a
//! fixed schedule whatever the server's pace, and latency counts from the scheduled start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{Conn, Failure};
use super::modes::{Ctx, Rng, one, op_for};
use super::stats::Stats;
use super::{Mode, Options};

/// How long one request may take before it counts as a timeout error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `concurrency` workers, each with its own connection, until the count or the time is used up.
pub(super) async fn closed_loop(ctx: Arc<Ctx>, start: Instant) -> Stats {
    let o = &ctx.opts;
    let until = start
        + o.duration.unwrap_or(if o.count.is_some() {
            o.deadline
        } else {
            Duration::from_secs(10)
        });
    let hard = start + o.deadline;
    let issued = Arc::new(AtomicU64::new(0));
    let limit = o.count.unwrap_or(u64::MAX);
    let every = sample_every(o);
    let mut workers = Vec::new();
    for w in 0..o.concurrency {
        let ctx = ctx.clone();
        let issued = issued.clone();
        workers.push(tokio::spawn(async move {
            let mut st = Stats::default();
            let mut conn = None;
            let mut rng = Rng::new(w as u64 + 1);
            let mut buf = Vec::new();
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= limit || Instant::now() >= until {
                    break;
                }
                let t = Instant::now();
                let op = op_for(ctx.opts.mode, n);
                // Each request gets 30 s, and none outlives the run's hard deadline.
                let r = tokio::time::timeout_at(
                    hard.min(t + REQUEST_TIMEOUT).into(),
                    one(
                        &ctx,
                        &mut conn,
                        op,
                        &mut rng,
                        n.is_multiple_of(every),
                        &mut buf,
                    ),
                )
                .await
                .unwrap_or_else(|_| Err(Failure::new("timeout", "no answer in time")));
                st.record(t, r);
            }
            st
        }));
    }
    let mut all = Stats::default();
    for w in workers {
        if let Ok(st) = w.await {
            all.merge(st);
        }
    }
    all
}

/// Request `n` keeps its acknowledged entry for the post-run check if `n % sample_every == 0`:
/// about `post_check` samples over a counted run, one in 500 requests over a timed one.
fn sample_every(o: &Options) -> u64 {
    if !o.mode.appends() && o.mode != Mode::Mixed {
        return u64::MAX;
    }
    o.count
        .map_or(500, |c| c / (o.post_check.max(1) as u64))
        .max(1)
}

/// Requests started at `rate` per second on their schedule, at most `max_in_flight` at once, with
/// a pool of idle connections.
pub(super) async fn open_loop(ctx: Arc<Ctx>, start: Instant, rate: f64) -> Stats {
    let o = &ctx.opts;
    let until = start
        + o.duration.unwrap_or(if o.count.is_some() {
            o.deadline
        } else {
            Duration::from_secs(10)
        });
    let limit = o.count.unwrap_or(u64::MAX);
    let every = sample_every(o);
    let total = Arc::new(Mutex::new(Stats::default()));
    let pool: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
    let slots = Arc::new(tokio::sync::Semaphore::new(o.max_in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut n = 0u64;
    while n < limit {
        let due = start + interval.mul_f64(n as f64);
        if due >= until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (ctx, total, pool) = (ctx.clone(), total.clone(), pool.clone());
        tasks.spawn(async move {
            let mut conn = pool.lock().ok().and_then(|mut p| p.pop());
            let mut rng = Rng::new(n + 1);
            let mut st = Stats::default();
            let mut buf = Vec::new();
            let op = op_for(ctx.opts.mode, n);
            let r = tokio::time::timeout(
                REQUEST_TIMEOUT,
                one(
                    &ctx,
                    &mut conn,
                    op,
                    &mut rng,
                    n.is_multiple_of(every),
                    &mut buf,
                ),
            )
            .await
            .unwrap_or_else(|_| Err(Failure::new("timeout", "no answer within 30 s")));
            st.record(due, r);
            if let Some(c) = conn
                && let Ok(mut p) = pool.lock()
            {
                p.push(c);
            }
            if let Ok(mut t) = total.lock() {
                t.merge(st);
            }
            drop(permit);
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
        n += 1;
    }
    while tasks.join_next().await.is_some() {}
    let mut all = Stats::default();
    if let Ok(mut t) = total.lock() {
        all.merge(std::mem::take(&mut *t));
    }
    all
}
