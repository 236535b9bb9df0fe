//! Gossip: compare our cosigned checkpoints with what others see, and raise the alarm on a
//! split view.
//!
//! Each round, for every configured log, the witness fetches each peer's monitoring checkpoint
//! (`<peer>/<origin hash>/checkpoint`) and, where the log has a URL, the log's own
//! `<url>/checkpoint`. A checkpoint is only considered if it carries a valid signature from the
//! log's keys (otherwise it is logged and ignored), and a peer's checkpoint is ignored if it
//! carries an invalid cosignature under the peer's key. It is then compared with our latest
//! cosigned checkpoint:
//!
//! - same size: the roots must be equal; different roots are a split view;
//! - different sizes, log URL configured: the consistency proof between the two sizes and the
//!   smaller tree's root are computed from the log's tiles at the larger size
//!   ([`TileHashReader`]), and the proof is verified against the larger checkpoint's root. If it
//!   verifies, the computed smaller root is what the larger checkpoint commits to, and if that
//!   differs from the smaller checkpoint's root the two are a split view. If the tiles do not
//!   match the larger checkpoint, nothing can be concluded (the log serves bad tiles, or tiles of
//!   another fork): that is logged as a warning, not treated as a split view;
//! - different sizes, no log URL: nothing can be concluded (documented limitation).
//!
//! A checkpoint that is ahead and consistent teaches the witness nothing more: its state only
//! advances through add-checkpoint.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sealtrail_net::clock::unix_secs;
use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint::{self, Checkpoint, VerifiedCheckpoint};
use sealtrail_spec::cosignature::CosignatureVerifier;
use sealtrail_spec::merkle::{
    ProofError, VerifyError, consistency_proof, tree_root, verify_consistency,
};
use sealtrail_spec::note::{self, MAX_NOTE_SIZE, NoteError};
use sealtrail_spec::tiles::{
    TILE_WIDTH, TileError, TileHashReader, TileId, TileReadError, TileReader,
};

use crate::state::{Core, Log};
use crate::store::{Cosigned, SplitView};

/// Most tiles fetched for one comparison: a consistency proof and a root need at most two tiles
/// per level, and there are at most 8 levels; the margin covers retries after a missing tile.
const MAX_TILE_FETCHES: usize = 64;

/// Why a GET of a checkpoint or tile failed.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    /// No answer (connection, timeout, body).
    #[error("GET {url}: {error}")]
    Http { url: String, error: reqwest::Error },
    /// An error status other than 404.
    #[error("GET {url}: HTTP {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    /// The body is larger than expected for what was fetched.
    #[error("GET {url}: body larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
}

/// Why two checkpoints of different sizes could not be compared through the log's tiles.
#[derive(Debug, thiserror::Error)]
enum TileCompareError {
    /// A tile could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The log serves neither the tile nor the full tile it is a prefix of.
    #[error("the log does not serve {0}")]
    Missing(String),
    /// A fetched tile is not a hash tile of its width.
    #[error("{path}: {error}")]
    Decode { path: String, error: TileError },
    /// The proof computed from the tiles does not verify against the larger checkpoint.
    #[error("the log's tiles do not match its checkpoint of size {size}: {error}")]
    Mismatch { size: u64, error: VerifyError },
    /// The proof or root could not be computed from the tiles.
    #[error("computing a proof from the log's tiles: {0}")]
    Proof(ProofError<TileReadError<NotFetched>>),
    /// More than [`MAX_TILE_FETCHES`] tiles were needed.
    #[error("too many tiles needed")]
    TooManyTiles,
}

impl TileCompareError {
    /// A short static label for logs: the log could not be reached (`fetch`), or what it served
    /// does not add up (`verification`).
    fn category(&self) -> &'static str {
        match self {
            TileCompareError::Fetch(_) | TileCompareError::Missing(_) => "fetch",
            TileCompareError::Decode { .. }
            | TileCompareError::Mismatch { .. }
            | TileCompareError::Proof(_)
            | TileCompareError::TooManyTiles => "verification",
        }
    }
}

/// Runs a round every `gossip.interval_secs`, forever.
pub(crate) async fn run(core: Arc<Core>) {
    let interval = Duration::from_secs(core.config.gossip.interval_secs);
    loop {
        round(&core).await;
        tokio::time::sleep(interval).await;
    }
}

/// One gossip round over every log and source.
pub(crate) async fn round(core: &Arc<Core>) {
    for log in &core.logs {
        for peer in &core.config.peers {
            let url = format!(
                "{}/{}/checkpoint",
                peer.url.trim_end_matches('/'),
                log.origin_hash
            );
            // Validated at start-up; a failure here would be a bug, so skip the peer.
            let Ok(verifier) = CosignatureVerifier::from_vkey(&peer.vkey) else {
                continue;
            };
            check_source(core, log, "peer", &url, Some(&verifier)).await;
        }
        if let Some(base) = &log.url {
            check_source(core, log, "log", &format!("{base}/checkpoint"), None).await;
        }
    }
}

fn timeout(core: &Core) -> Duration {
    Duration::from_secs(core.config.gossip.timeout_secs)
}

fn count(core: &Core, kind: &str, result: &str) {
    core.metrics
        .gossip_checks
        .with_label_values(&[kind, result])
        .inc();
}

async fn check_source(
    core: &Arc<Core>,
    log: &Log,
    kind: &str,
    url: &str,
    peer: Option<&CosignatureVerifier>,
) {
    let bytes = match get(&core.client, url, MAX_NOTE_SIZE, timeout(core)).await {
        Ok(Some(b)) => b,
        Ok(None) => return count(core, kind, "not_found"),
        Err(e) => {
            tracing::warn!(origin = %log.origin, url, error = %e, "gossip fetch failed");
            return count(core, kind, "fetch_error");
        }
    };
    let theirs = match checkpoint::open(&bytes, &log.origin, &log.verifiers()) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(origin = %log.origin, url, error = %e,
                "gossip: checkpoint without a valid log signature ignored");
            return count(core, kind, "bad_signature");
        }
    };
    if let Some(p) = peer {
        match note::verify(theirs.note(), &[p]) {
            Ok(_) | Err(NoteError::Unverified) => {}
            Err(e) => {
                tracing::warn!(origin = %log.origin, url, error = %e,
                    "gossip: peer checkpoint with a bad peer cosignature ignored");
                return count(core, kind, "bad_peer_signature");
            }
        }
    }
    let origin = log.origin.clone();
    let state = core
        .with_store(move |s| Ok((s.split_view(&origin)?.is_some(), s.latest(&origin)?)))
        .await;
    let ours = match state {
        Ok((true, _)) => return count(core, kind, "blocked"),
        Ok((false, Some(c))) => c,
        Ok((false, None)) => return count(core, kind, "no_state"),
        Err(e) => {
            tracing::error!(error = %e, "gossip: reading the store");
            return count(core, kind, "store_error");
        }
    };
    match compare(core, log, &ours, &theirs).await {
        Verdict::Consistent => count(core, kind, "consistent"),
        Verdict::Unknown { why, category } => {
            tracing::info!(origin = %log.origin, url, why, category, "gossip: cannot compare");
            count(core, kind, "unverifiable");
        }
        Verdict::Split(reason) => {
            count(core, kind, "split_view");
            let split = SplitView {
                origin: log.origin.clone(),
                detected_at: unix_secs(),
                source: format!("{kind} {url}"),
                reason,
                ours: String::from_utf8_lossy(&ours.note).into_owned(),
                theirs: String::from_utf8_lossy(theirs.bytes()).into_owned(),
            };
            core.report_split_view(split).await;
        }
    }
}

enum Verdict {
    Consistent,
    Split(String),
    /// Nothing can be concluded; `category` is a short static label for logs.
    Unknown {
        why: String,
        category: &'static str,
    },
}

async fn compare(core: &Core, log: &Log, ours: &Cosigned, theirs: &VerifiedCheckpoint) -> Verdict {
    let (a, b) = (&ours.checkpoint, theirs.checkpoint());
    if a.size() == b.size() {
        return if a.root() == b.root() {
            Verdict::Consistent
        } else {
            Verdict::Split(format!(
                "two checkpoints of size {} with different root hashes",
                a.size()
            ))
        };
    }
    let Some(base) = &log.url else {
        return Verdict::Unknown {
            why: format!(
                "sizes {} and {} differ and no log URL is configured to fetch a proof",
                a.size(),
                b.size()
            ),
            category: "no_log_url",
        };
    };
    let (small, big) = if a.size() < b.size() { (a, b) } else { (b, a) };
    match prefix_root_from_tiles(&core.client, timeout(core), base, small.size(), big).await {
        Ok(prefix) if prefix == small.root() => Verdict::Consistent,
        Ok(prefix) => Verdict::Split(format!(
            "the checkpoint of size {} commits to root {} at size {}, but the checkpoint of \
             size {} has root {}",
            big.size(),
            prefix.to_base64(),
            small.size(),
            small.size(),
            small.root().to_base64()
        )),
        Err(e) => Verdict::Unknown {
            why: e.to_string(),
            category: e.category(),
        },
    }
}

/// The root at size `small` that checkpoint `big` commits to, computed from the log's tiles and
/// authenticated by verifying the consistency proof (also from the tiles) against `big`'s root.
async fn prefix_root_from_tiles(
    client: &reqwest::Client,
    timeout: Duration,
    base: &str,
    small: u64,
    big: &Checkpoint,
) -> Result<Hash, TileCompareError> {
    let n = big.size();
    let mut tiles: HashMap<TileId, Vec<Hash>> = HashMap::new();
    for _ in 0..MAX_TILE_FETCHES {
        let attempt = {
            let mut reader = TileHashReader::new(n, Fetched(&tiles));
            consistency_proof(small, n, &mut reader)
                .and_then(|proof| Ok((proof, tree_root(small, &mut reader)?)))
        };
        match attempt {
            Ok((proof, prefix)) => {
                verify_consistency(small, n, &prefix, &big.root(), &proof)
                    .map_err(|error| TileCompareError::Mismatch { size: n, error })?;
                return Ok(prefix);
            }
            Err(ProofError::Reader(TileReadError::Reader { tile, .. })) => {
                let hashes = fetch_tile(client, timeout, base, tile).await?;
                tiles.insert(tile, hashes);
            }
            Err(e) => return Err(TileCompareError::Proof(e)),
        }
    }
    Err(TileCompareError::TooManyTiles)
}

/// Tiles fetched so far; a missing one is an error naming it, so the caller fetches and retries.
struct Fetched<'a>(&'a HashMap<TileId, Vec<Hash>>);

/// A tile not fetched yet.
#[derive(Debug)]
struct NotFetched;

impl fmt::Display for NotFetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tile not fetched")
    }
}

impl TileReader for Fetched<'_> {
    type Error = NotFetched;
    fn read_tile(&mut self, tile: TileId) -> Result<Vec<Hash>, NotFetched> {
        self.0.get(&tile).cloned().ok_or(NotFetched)
    }
}

/// Fetches a hash tile; a missing partial tile is read from the full one and truncated, as
/// tlog-tiles lets logs delete partial tiles once the full tile exists.
async fn fetch_tile(
    client: &reqwest::Client,
    timeout: Duration,
    base: &str,
    tile: TileId,
) -> Result<Vec<Hash>, TileCompareError> {
    let limit = usize::from(TILE_WIDTH) * sealtrail_spec::hash::HASH_SIZE;
    let url = format!("{base}/{}", tile.path());
    let bytes = match get(client, &url, limit, timeout).await? {
        Some(b) => b,
        None if !tile.is_full() => {
            let full = TileId {
                width: TILE_WIDTH,
                ..tile
            };
            let url = format!("{base}/{}", full.path());
            let mut b = get(client, &url, limit, timeout)
                .await?
                .ok_or_else(|| TileCompareError::Missing(tile.path()))?;
            b.truncate(usize::from(tile.width) * sealtrail_spec::hash::HASH_SIZE);
            b
        }
        None => return Err(TileCompareError::Missing(tile.path())),
    };
    sealtrail_spec::tiles::decode_hash_tile(&bytes, tile.width).map_err(|error| {
        TileCompareError::Decode {
            path: tile.path(),
            error,
        }
    })
}

/// GETs `url`: `Ok(None)` on 404, the body (at most `limit` bytes) on success.
async fn get(
    client: &reqwest::Client,
    url: &str,
    limit: usize,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, FetchError> {
    let http = |error| FetchError::Http {
        url: url.to_owned(),
        error,
    };
    let mut resp = client
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(http)?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: resp.status(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_errors_say_whether_the_log_was_unreachable_or_inconsistent() {
        let fetch = TileCompareError::from(FetchError::TooLarge {
            url: "http://log.example/tile/0/000".into(),
            limit: 8192,
        });
        assert_eq!(
            fetch.to_string(),
            "GET http://log.example/tile/0/000: body larger than 8192 bytes"
        );
        assert_eq!(fetch.category(), "fetch");
        let missing = TileCompareError::Missing("tile/0/000.p/5".into());
        assert_eq!(missing.to_string(), "the log does not serve tile/0/000.p/5");
        assert_eq!(missing.category(), "fetch");
        let mismatch = TileCompareError::Mismatch {
            size: 300,
            error: verify_consistency(1, 2, &Hash([1; 32]), &Hash([2; 32]), &[]).unwrap_err(),
        };
        assert!(
            mismatch
                .to_string()
                .starts_with("the log's tiles do not match its checkpoint of size 300: "),
            "{mismatch}"
        );
        assert_eq!(mismatch.category(), "verification");
        assert_eq!(TileCompareError::TooManyTiles.category(), "verification");
    }
}
