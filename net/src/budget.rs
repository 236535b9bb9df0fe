//! A memory budget shared by every request of a process, with a share per client address: bytes
//! the process holds for clients (request bodies arriving, answers not yet read) are taken from it
//! before they are allocated and given back when they are freed. The total bounds what all clients
//! together can make the process hold; the share per address keeps one client from taking all of
//! it, so the others are still served while it misbehaves. Behind a proxy, whose one address
//! carries every client, the share is turned off (0).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The budget. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Budget(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    total: Arc<Semaphore>,
    capacity: usize,
    per_ip: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
    released: Notify,
}

/// Why bytes were not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The whole budget is in use.
    Total,
    /// This address holds its whole share.
    Share,
}

/// Bytes taken from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Held {
    budget: Budget,
    ip: Option<IpAddr>,
    n: usize,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Budget {
    /// A budget of `total` bytes (at most [`Semaphore::MAX_PERMITS`]), of which one address may
    /// hold at most `per_ip` (0: no share per address).
    pub fn new(total: usize, per_ip: usize) -> Self {
        let capacity = total.min(Semaphore::MAX_PERMITS);
        Budget(Arc::new(Inner {
            total: Arc::new(Semaphore::new(capacity)),
            capacity,
            per_ip,
            held: Mutex::new(HashMap::new()),
            released: Notify::new(),
        }))
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.0.total.available_permits()
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.0.capacity - self.available()
    }

    /// The whole budget.
    pub fn capacity(&self) -> usize {
        self.0.capacity
    }

    /// Bytes `ip` holds now.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        self.lock().get(&ip).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `n` bytes for `ip` now, or says why not. A request larger than the whole budget
    /// (or than the share) never fits.
    pub fn try_take(&self, ip: Option<IpAddr>, n: usize) -> Result<Held, Refusal> {
        let ip = ip.filter(|_| self.0.per_ip > 0);
        let mut held = self.lock();
        if let Some(ip) = ip
            && held.get(&ip).copied().unwrap_or(0).saturating_add(n) > self.0.per_ip
        {
            return Err(Refusal::Share);
        }
        let permit = match u32::try_from(n) {
            Ok(0) => None,
            Ok(k) => Some(
                self.0
                    .total
                    .clone()
                    .try_acquire_many_owned(k)
                    .map_err(|_| Refusal::Total)?,
            ),
            Err(_) => return Err(Refusal::Total),
        };
        if let Some(ip) = ip {
            *held.entry(ip).or_insert(0) += n;
        }
        Ok(Held {
            budget: self.clone(),
            ip,
            n,
            _permit: permit,
        })
    }

    /// Takes `n` bytes for `ip` (at most the whole budget or the share: a larger request takes
    /// all of it), waiting up to `wait` for others to give bytes back.
    pub async fn take(
        &self,
        ip: Option<IpAddr>,
        n: usize,
        wait: Duration,
    ) -> Result<Held, Refusal> {
        let n = n.min(self.0.capacity);
        let n = match ip {
            Some(_) if self.0.per_ip > 0 => n.min(self.0.per_ip),
            _ => n,
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before trying, so a release between the try and the wait is not missed.
            let released = self.0.released.notified();
            match self.try_take(ip, n) {
                Ok(h) => return Ok(h),
                Err(why) => {
                    if tokio::time::timeout_at(deadline, released).await.is_err() {
                        return Err(why);
                    }
                }
            }
        }
    }
}

impl Held {
    /// Adds `more` held bytes (same address), taken now or not at all.
    pub fn grow(&mut self, more: usize) -> Result<(), Refusal> {
        let extra = self.budget.try_take(self.ip, more)?;
        self.n += extra.n;
        let mut extra = extra;
        extra.n = 0;
        if let (Some(p), Some(q)) = (self._permit.as_mut(), extra._permit.take()) {
            p.merge(q);
        } else if self._permit.is_none() {
            self._permit = extra._permit.take();
        }
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(ip) = self.ip
            && self.n > 0
        {
            let mut held = self.budget.lock();
            if let Some(v) = held.get_mut(&ip) {
                *v = v.saturating_sub(self.n);
                if *v == 0 {
                    held.remove(&ip);
                }
            }
        }
        // The permit goes back with the fields, after this; waiters retry then.
        let budget = self.budget.clone();
        drop(self._permit.take());
        budget.0.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

    #[test]
    fn one_address_holds_at_most_its_share_and_all_at_most_the_total() {
        let b = Budget::new(100, 40);
        let a1 = b.try_take(Some(A), 30).unwrap();
        assert_eq!(b.try_take(Some(A), 11).unwrap_err(), Refusal::Share);
        let a2 = b.try_take(Some(A), 10).unwrap();
        assert_eq!((b.held_by(A), b.held()), (40, 40));
        // Another address is not held back by A's share.
        let b1 = b.try_take(Some(B), 40).unwrap();
        // Without an address only the total counts.
        let none = b.try_take(None, 20).unwrap();
        assert_eq!(b.try_take(None, 1).unwrap_err(), Refusal::Total);
        drop((a1, none));
        assert_eq!((b.held_by(A), b.held()), (10, 50));
        drop((a2, b1));
        assert_eq!((b.held_by(A), b.held_by(B), b.held()), (0, 0, 0));
        // No share per address: one address may take everything.
        let b = Budget::new(100, 0);
        let all = b.try_take(Some(A), 100).unwrap();
        assert_eq!(b.try_take(Some(B), 1).unwrap_err(), Refusal::Total);
        drop(all);
        assert_eq!(b.available(), 100);
    }

    #[test]
    fn growing_counts_against_the_share_and_is_given_back_whole() {
        let b = Budget::new(100, 50);
        let mut h = b.try_take(Some(A), 20).unwrap();
        h.grow(30).unwrap();
        assert_eq!(h.grow(1).unwrap_err(), Refusal::Share);
        assert_eq!((b.held_by(A), b.held()), (50, 50));
        drop(h);
        assert_eq!((b.held_by(A), b.held()), (0, 0));
    }

    #[tokio::test]
    async fn a_waiter_gets_the_bytes_another_gives_back() {
        let b = Budget::new(100, 60);
        let first = b.try_take(Some(A), 60).unwrap();
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.take(Some(A), 30, Duration::from_secs(30)).await }
        });
        // Not before the bytes are given back: the share is full.
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(b.held_by(A), 30);
        // A wait that ends without room says why.
        let r = b.take(Some(A), 60, Duration::from_millis(20)).await;
        assert_eq!(r.unwrap_err(), Refusal::Share);
        drop(got);
        // More than the share is capped at the share.
        let all = b.take(Some(A), 1000, Duration::from_secs(1)).await.unwrap();
        assert_eq!(b.held_by(A), 60);
        drop(all);
    }
}
