//! Request bodies under a memory bound: [`read_limited`] reads one body of at most a route's limit,
//! counted in a [`Budget`] shared by every request of the process (with a share per client
//! address) from before its first byte is read until it has arrived. A body that does not fit is
//! refused before it is read, so clients that declare large bodies and send them slowly, or never
//! finish them, cannot make the process hold more than the budget, and one address cannot take
//! the room of the others.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};

use crate::budget::Budget;

/// Why a body was not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// Declared or sent larger than the route's limit (413).
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    /// The budget has no room for it now (503 with `Retry-After`); nothing was read.
    #[error("too many request bodies are arriving at once; retry shortly")]
    Busy,
    /// It did not arrive within the timeout (408).
    #[error("request body not received in time")]
    Timeout,
    /// The connection failed or the framing was broken (400).
    #[error("reading the request body: {0}")]
    Read(String),
}

/// Reads a body of at most `limit` bytes from `ip` within `timeout`. It is counted in `budget`
/// at its `Content-Length`, or at `limit` when chunked, while it arrives.
pub async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    (budget, ip): (&Budget, Option<IpAddr>),
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let reserve = declared.map_or(limit, |len| usize::try_from(len).unwrap_or(limit));
    let _held = budget.try_take(ip, reserve).map_err(|_| BodyError::Busy)?;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if over {
                Err(BodyError::TooLarge(limit))
            } else {
                Err(BodyError::Read(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(len: Option<usize>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(n) = len {
            h.insert(header::CONTENT_LENGTH, n.into());
        }
        h
    }

    const T: Duration = Duration::from_secs(5);

    async fn read(
        body: Body,
        len: Option<usize>,
        limit: usize,
        budget: &Budget,
        timeout: Duration,
    ) -> Result<Bytes, BodyError> {
        read_limited(body, &headers(len), limit, (budget, None), timeout).await
    }

    #[tokio::test]
    async fn bodies_are_counted_while_they_arrive_and_refused_when_they_do_not_fit() {
        let budget = Budget::new(100, 0);
        // A body declared larger than the route's limit: 413, nothing taken.
        let r = read(Body::from(vec![0u8; 10]), Some(60), 50, &budget, T);
        assert_eq!(r.await, Err(BodyError::TooLarge(50)));
        // A body still arriving holds its declared size...
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let slow = tokio::spawn({
            let budget = budget.clone();
            async move { read(Body::from_stream(stream), Some(80), 100, &budget, T).await }
        });
        while budget.available() == 100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(budget.available(), 20);
        // ...so another that does not fit is refused before it is read.
        let r = read(Body::from(vec![1u8; 30]), Some(30), 100, &budget, T);
        assert_eq!(r.await, Err(BodyError::Busy));
        // One that fits is read.
        let r = read(Body::from(vec![2u8; 20]), Some(20), 100, &budget, T);
        assert_eq!(r.await.unwrap().len(), 20);
        // When the slow one arrives, its share is given back.
        tx.send(Ok(Bytes::from(vec![3u8; 80]))).await.unwrap();
        drop(tx);
        assert_eq!(slow.await.unwrap().unwrap().len(), 80);
        assert_eq!(budget.available(), 100);
        // A chunked body (no length) is counted at the limit, and cut at it.
        let r = read(Body::from(vec![4u8; 101]), None, 100, &budget, T);
        assert_eq!(r.await, Err(BodyError::TooLarge(100)));
        let r = read(Body::from(vec![4u8; 10]), None, 101, &budget, T);
        assert_eq!(r.await, Err(BodyError::Busy));
        assert_eq!(budget.available(), 100);
    }

    #[tokio::test]
    async fn a_body_that_never_arrives_times_out_and_gives_its_share_back() {
        let budget = Budget::new(100, 0);
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let short = Duration::from_millis(50);
        let r = read(Body::from_stream(stream), Some(50), 100, &budget, short);
        assert_eq!(r.await, Err(BodyError::Timeout));
        assert_eq!(budget.available(), 100);
    }
}
