//! The read API: tlog-tiles resources, the JSON entry and proof endpoints, and the operational
//! endpoints. Every read is bounded by the published tree size, so nothing is served that a
//! signed checkpoint does not cover. Point reads (a proof, a tile, an entry) run inline unless the
//! store has recently read from the disk, scans on the blocking pool (see [`ReadPath`]).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash as StdHash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealtrail_spec::Hash;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::merkle::{HashReader, Node, consistency_proof, inclusion_proof, tree_root};
use sealtrail_spec::tiles::{
    TILE_HEIGHT, TILE_WIDTH, TileId, TilePath, TileReadError, TileReader, decode_hash_tile,
    encode_bundle, hashes_at_level, tile_for,
};

use super::{ApiError, AppState, QueryResult, is_json_media, media_essence};
use crate::sequencer::StoreTiles;
use crate::store::{LogStore, StoreError};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SHORT_LIVED: &str = "public, max-age=60";
const CHECKPOINT_CACHE: &str = "public, max-age=1, must-revalidate";
/// Bytes of full tiles and of full entry bundles kept in memory (each cache separately). Bounded
/// by bytes, not count: a bundle of 64 KB entries is 16 MiB.
const CACHED_TILE_BYTES: usize = 64 << 20;
const CACHED_BUNDLE_BYTES: usize = 64 << 20;
/// Bytes of tile summaries (see [`ProofNodes`]): 960 bytes per full level-0 tile and 8 KiB per
/// tile above, so 48 MiB covers a log of about 12M entries. Partial tiles' summaries (a new one per width, so
/// per commit) have their own small cache, so they never push full ones out.
const CACHED_SUMMARY_BYTES: usize = 48 << 20;
const CACHED_PARTIAL_SUMMARY_BYTES: usize = 1 << 20;
/// Partial tiles kept at the right edge of the tree (about one per level).
const CACHED_PARTIAL_TILES: usize = 16;
/// Heights inside a tile from which nodes are served from a tile summary: a node of relative
/// height r costs 2^r - 1 hashes from the tile's own hashes. Level-0 summaries keep heights 4 to 7
/// (30 hashes, 960 bytes), so a proof hashes at most 7 times in its level-0 tile. Tiles of higher
/// levels are 256 times fewer and every proof reads them, so their summaries keep every inner
/// node (heights 1 to 7: 254 hashes, 8 KiB) and proofs hash nothing there.
fn summary_from(level: u8) -> u8 {
    if level == 0 { 4 } else { 1 }
}

/// A first-in, first-out cache of immutable byte strings, bounded by their total size.
#[derive(Debug)]
struct Fifo<K> {
    map: HashMap<K, Arc<Vec<u8>>>,
    order: VecDeque<K>,
    bytes: usize,
    cap: usize,
}

impl<K: StdHash + Eq + Clone> Fifo<K> {
    fn new(cap: usize) -> Self {
        Fifo {
            map: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            cap,
        }
    }

    fn get(&self, k: &K) -> Option<Arc<Vec<u8>>> {
        self.map.get(k).cloned()
    }

    fn put(&mut self, k: K, v: Arc<Vec<u8>>) {
        if v.len() > self.cap || self.map.contains_key(&k) {
            return;
        }
        self.bytes += v.len();
        self.map.insert(k.clone(), v);
        self.order.push_back(k);
        while self.bytes > self.cap {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.map.remove(&old) {
                self.bytes -= v.len();
            }
        }
    }
}

type TileFifo = Mutex<Fifo<(u8, u64)>>;
/// Recently read partial tiles by (level, index), oldest first.
type PartialTiles = Mutex<VecDeque<((u8, u64), Arc<Vec<u8>>)>>;

/// Hot full hash tiles and entry bundles. Only full ones are cached: they never change.
#[derive(Debug)]
pub struct TileCache {
    tiles: TileFifo,
    bundles: Mutex<Fifo<u64>>,
    summaries: TileFifo,
    partial_summaries: Mutex<Fifo<(u8, u64, u16)>>,
    /// The latest stored bytes of recently read partial tiles. A tile's stored hashes only ever
    /// grow at the end, so any prefix of what was read once stays valid.
    partial_tiles: PartialTiles,
}

impl Default for TileCache {
    fn default() -> Self {
        TileCache {
            tiles: Mutex::new(Fifo::new(CACHED_TILE_BYTES)),
            bundles: Mutex::new(Fifo::new(CACHED_BUNDLE_BYTES)),
            summaries: Mutex::new(Fifo::new(CACHED_SUMMARY_BYTES)),
            partial_summaries: Mutex::new(Fifo::new(CACHED_PARTIAL_SUMMARY_BYTES)),
            partial_tiles: Mutex::new(VecDeque::new()),
        }
    }
}

impl TileCache {
    /// The stored bytes of a tile, holding at least its first `width` hashes if the store has
    /// them (callers check the length).
    fn tile(
        &self,
        store: &dyn LogStore,
        level: u8,
        index: u64,
        width: u16,
    ) -> Result<Option<Arc<Vec<u8>>>, StoreError> {
        let full = width == TILE_WIDTH;
        let want = usize::from(width) * 32;
        if full && let Some(t) = self.tiles.lock().ok().and_then(|c| c.get(&(level, index))) {
            return Ok(Some(t));
        }
        if !full
            && let Ok(p) = self.partial_tiles.lock()
            && let Some((_, t)) = p
                .iter()
                .find(|(k, t)| *k == (level, index) && t.len() >= want)
        {
            return Ok(Some(t.clone()));
        }
        let Some(bytes) = store.tile(level, index)? else {
            return Ok(None);
        };
        let bytes = Arc::new(bytes);
        if bytes.len() == usize::from(TILE_WIDTH) * 32 {
            if let Ok(mut c) = self.tiles.lock() {
                c.put((level, index), bytes.clone());
            }
        } else if let Ok(mut p) = self.partial_tiles.lock() {
            p.retain(|(k, _)| *k != (level, index));
            if p.len() == CACHED_PARTIAL_TILES {
                p.pop_front();
            }
            p.push_back(((level, index), bytes.clone()));
        }
        Ok(Some(bytes))
    }
}

/// Reads decoded tiles through the cache (for leaf-hash lookups; proofs use [`ProofNodes`]).
struct CachedTiles<'a> {
    store: &'a dyn LogStore,
    cache: &'a TileCache,
}

impl TileReader for CachedTiles<'_> {
    type Error = StoreError;

    fn read_tile(&mut self, tile: TileId) -> Result<Vec<Hash>, StoreError> {
        let Some(bytes) = self
            .cache
            .tile(self.store, tile.level, tile.index, tile.width)?
        else {
            return StoreTiles(self.store).read_tile(tile);
        };
        let want = usize::from(tile.width) * 32;
        let prefix = bytes.get(..want).ok_or_else(|| {
            StoreError::Corrupt(format!("{} is shorter than {want} bytes", tile.path()))
        })?;
        decode_hash_tile(prefix, tile.width).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// Serves proof nodes from the hash tiles, as [`sealtrail_spec::tiles::TileHashReader`] does,
/// but from shared tile bytes (no per-request copies) and with the nodes high enough inside a
/// tile (see [`summary_from`]) taken from a cached summary of that tile (its inner hashes at
/// those heights, built once from the tile's hashes). So a proof hashes at most 7 times in its
/// level-0 tile and not at all above, instead of up to 247 times per tile level, and reads each
/// tile at most once per request.
struct ProofNodes<'a> {
    size: u64,
    store: &'a dyn LogStore,
    cache: &'a TileCache,
    /// Tiles read for this request: a proof, its root and its leaf read the same few tiles.
    memo: Vec<(TileId, Arc<Vec<u8>>)>,
}

impl<'a> ProofNodes<'a> {
    fn new(size: u64, store: &'a dyn LogStore, cache: &'a TileCache) -> Self {
        ProofNodes {
            size,
            store,
            cache,
            memo: Vec::new(),
        }
    }

    /// The stored bytes of `tile`, at least `tile.width` hashes long.
    fn tile_bytes(&mut self, tile: TileId) -> Result<Arc<Vec<u8>>, TileReadError<StoreError>> {
        if let Some((_, b)) = self.memo.iter().find(|(t, _)| *t == tile) {
            return Ok(b.clone());
        }
        let bytes = self
            .cache
            .tile(self.store, tile.level, tile.index, tile.width)
            .map_err(|error| TileReadError::Reader { tile, error })?
            .ok_or_else(|| TileReadError::Reader {
                tile,
                error: StoreError::Corrupt(format!("{} is missing", tile.path())),
            })?;
        if bytes.len() < usize::from(tile.width) * 32 {
            return Err(TileReadError::Corrupt(tile, bytes.len() / 32));
        }
        self.memo.push((tile, bytes.clone()));
        Ok(bytes)
    }

    /// The summary of `tile`: its hashes at relative heights `summary_from(level)` to 7, height by
    /// height, left to right (for a partial tile, the complete nodes of its width).
    fn summary(&mut self, tile: TileId) -> Result<Arc<Vec<u8>>, TileReadError<StoreError>> {
        let cache = self.cache;
        let full = tile.is_full();
        let (key, pkey) = (
            (tile.level, tile.index),
            (tile.level, tile.index, tile.width),
        );
        let hit = if full {
            cache.summaries.lock().ok().and_then(|c| c.get(&key))
        } else {
            cache
                .partial_summaries
                .lock()
                .ok()
                .and_then(|c| c.get(&pkey))
        };
        if let Some(s) = hit {
            return Ok(s);
        }
        let bytes = self.tile_bytes(tile)?;
        let mut row = decode_hash_tile(&bytes[..usize::from(tile.width) * 32], tile.width)
            .map_err(|_| TileReadError::Corrupt(tile, bytes.len() / 32))?;
        let from = summary_from(tile.level);
        let mut out = Vec::with_capacity((usize::from(tile.width) >> (from - 1)) * 32);
        for height in 1..TILE_HEIGHT {
            row = row
                .chunks_exact(2)
                .map(|p| sealtrail_spec::node_hash(&p[0], &p[1]))
                .collect();
            if height >= from {
                for h in &row {
                    out.extend_from_slice(h.as_bytes());
                }
            }
        }
        let out = Arc::new(out);
        if full {
            if let Ok(mut c) = cache.summaries.lock() {
                c.put(key, out.clone());
            }
        } else if let Ok(mut c) = cache.partial_summaries.lock() {
            c.put(pkey, out.clone());
        }
        Ok(out)
    }

    /// One node: from its tile's summary if it is high enough inside its tile, else hashed from
    /// the tile's hashes (at most 8 of them).
    fn node(&mut self, node: &Node) -> Result<Hash, TileReadError<StoreError>> {
        let (level, rel) = (node.height / TILE_HEIGHT, node.height % TILE_HEIGHT);
        let size = self.size;
        let out_of_tree = || TileReadError::OutOfTree(*node, size);
        let first = node
            .index
            .checked_shl(u32::from(rel))
            .ok_or_else(out_of_tree)?;
        // The last hash of this level that the node covers decides its tile.
        let last = first + ((1u64 << rel) - 1);
        let tile = tile_for(size, level, last).ok_or_else(out_of_tree)?;
        let from = summary_from(level);
        if rel >= from {
            let summary = self.summary(tile)?;
            // The summary holds width >> r hashes for each height r from `from` to 7, in order.
            let base: usize = (from..rel).map(|r| usize::from(tile.width >> r)).sum();
            let within = usize::try_from(node.index % (u64::from(TILE_WIDTH) >> rel)).unwrap_or(0);
            let at = (base + within) * 32;
            let corrupt = || TileReadError::Corrupt(tile, summary.len() / 32);
            let bytes = summary.get(at..at + 32).ok_or_else(corrupt)?;
            return Hash::from_slice(bytes).map_err(|_| corrupt());
        }
        let bytes = self.tile_bytes(tile)?;
        let at = usize::try_from(first % u64::from(TILE_WIDTH)).unwrap_or(0) * 32;
        let count = 1usize << rel;
        let hashes = bytes
            .get(at..at + count * 32)
            .ok_or_else(out_of_tree)?
            .chunks_exact(32)
            .map(Hash::from_slice)
            .collect::<Result<Vec<Hash>, _>>()
            .map_err(|_| TileReadError::Corrupt(tile, bytes.len() / 32))?;
        Ok(sealtrail_spec::merkle::tree_hash(&hashes))
    }
}

impl HashReader for ProofNodes<'_> {
    type Error = TileReadError<StoreError>;

    fn read_nodes(&mut self, nodes: &[Node]) -> Result<Vec<Hash>, Self::Error> {
        nodes.iter().map(|n| self.node(n)).collect()
    }
}

/// After an inline point read that waited for the disk, point reads go to the blocking pool for
/// this many times as long as it waited, so a worker spends at most about a tenth of its time
/// blocked on the disk inline.
const POOL_FACTOR: u32 = 10;
/// The longest stretch of pooled point reads after one slow inline read.
const MAX_POOL_STRETCH: Duration = Duration::from_secs(1);
/// An inline point read that took longer than this counts as having waited for the disk even
/// where the kernel does not account a thread's block reads (a read from memory takes tens of
/// microseconds; preemption on a busy machine adds a few milliseconds at most).
const STALLED_INLINE_READ: Duration = Duration::from_millis(10);

/// Where point reads run: a proof, a tile, an entry. Handing one to the blocking pool and back
/// costs two thread wake-ups, about 30 µs of CPU here (a third of an inclusion proof on a
/// 10M-entry log, measured in BENCHMARKS.md), while the read itself normally comes from memory
/// (the store's cache or the kernel's page cache). So point reads run inline on the HTTP
/// worker. When one of them had to read from the disk (the thread's block-read count went up)
/// or stalled, the following ones go to the blocking pool for ten times as long as it took (at
/// most a second), where disk reads overlap instead of holding up a worker: with a cold page
/// cache (after a reboot) reads mostly run on the pool, with a warm one almost all run inline.
/// Scans (entry pages, bundles, search) always use the pool.
#[derive(Debug)]
pub struct ReadPath {
    epoch: Instant,
    /// Microseconds after `epoch` until which point reads go to the pool.
    pool_until_us: AtomicU64,
    stalled: Duration,
}

impl Default for ReadPath {
    fn default() -> Self {
        ReadPath::new(STALLED_INLINE_READ)
    }
}

impl ReadPath {
    /// A read path that counts an inline read taking longer than `stalled` as a disk wait.
    pub fn new(stalled: Duration) -> Self {
        ReadPath {
            epoch: Instant::now(),
            pool_until_us: AtomicU64::new(0),
            stalled,
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// Whether a point read starting at `now` goes to the blocking pool.
    pub fn pooled_at(&self, now: Instant) -> bool {
        self.micros(now) < self.pool_until_us.load(Ordering::Relaxed)
    }

    /// Records an inline read from `start` to `end` that did (`disk`) or did not read from the
    /// disk. True if it read from the disk or stalled, and point reads now go to the pool.
    pub fn finished_inline(&self, start: Instant, end: Instant, disk: bool) -> bool {
        let took = end.saturating_duration_since(start);
        if !disk && took <= self.stalled {
            return false;
        }
        let until = self.micros(end + (took * POOL_FACTOR).min(MAX_POOL_STRETCH));
        self.pool_until_us.fetch_max(until, Ordering::Relaxed);
        true
    }
}

/// Block reads this thread has made so far (`None` where the kernel does not say).
fn thread_block_reads() -> Option<nix::libc::c_long> {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)
        .ok()
        .map(|u| u.block_reads())
}

/// Runs a point read (a bounded amount of store work: a proof, a tile, an entry) where
/// [`ReadPath`] says: inline, or on the blocking pool after a recent read from the disk.
pub(super) async fn point_read<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&dyn LogStore, &TileCache) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let start = Instant::now();
    if st.reads.pooled_at(start) {
        st.metrics.point_reads_pool.inc();
        return blocking(st, f).await;
    }
    st.metrics.point_reads_inline.inc();
    let before = thread_block_reads();
    let out = f(st.store.as_ref(), &st.cache);
    let disk = matches!((before, thread_block_reads()), (Some(a), Some(b)) if b > a);
    if st.reads.finished_inline(start, Instant::now(), disk) {
        st.metrics.slow_inline_reads.inc();
    }
    out
}

/// Runs store work on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&dyn LogStore, &TileCache) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = st.store.clone();
    let cache = st.cache.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref(), &cache))
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task: {e}")))?
}

fn proof_error<E: std::fmt::Display>(e: sealtrail_spec::merkle::ProofError<E>) -> ApiError {
    match e {
        sealtrail_spec::merkle::ProofError::Range(r) => ApiError::BadRequest(r.to_string()),
        other => ApiError::Internal(format!("building a proof: {other}")),
    }
}

/// The inclusion proof of `index` in the published tree of size `size`.
pub(super) async fn inclusion_proof_at(
    st: &AppState,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ApiError> {
    point_read(st, move |store, cache| {
        let mut r = ProofNodes::new(size, store, cache);
        inclusion_proof(index, size, &mut r).map_err(proof_error)
    })
    .await
}

/// A c2sp.org/tlog-proof@v1 for `index` with `path` against `checkpoint` (built and checked by
/// `sealtrail-spec`).
pub(super) fn tlog_proof_text(
    index: u64,
    path: &[Hash],
    checkpoint: &[u8],
) -> Result<String, ApiError> {
    let proof =
        sealtrail_spec::tlog_proof::TlogProof::new(index, path.to_vec(), checkpoint.to_vec(), None)
            .map_err(|e| ApiError::Internal(format!("building a tlog-proof: {e}")))?;
    String::from_utf8(proof.to_bytes()).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Rejects query parameters other than `allowed`.
pub(super) fn only_params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::BadRequest(format!(
            "unknown query parameter {k:?}; allowed: {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn parse_u64(name: &str, v: &str) -> Result<u64, ApiError> {
    sealtrail_spec::parse_decimal(v).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{name} must be a decimal integer without leading zeros, got {v:?}"
        ))
    })
}

pub(super) fn query(q: QueryResult, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    only_params(&q, allowed)?;
    Ok(q)
}

pub(super) fn param(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name).map(|v| parse_u64(name, v)).transpose()
}

fn with_cache(mut resp: Response, policy: &'static str) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    resp
}

/// `GET /checkpoint`: the latest signed checkpoint (tlog-tiles). With witnesses configured, the
/// newest checkpoint whose cosignatures meet the witness policy, with those cosignatures; until
/// one does (after a start), the latest checkpoint with only the log's signature.
pub(super) async fn checkpoint(State(st): State<AppState>) -> Response {
    let body = match st.witnessing.cosigned() {
        Some(c) => c.note.as_ref().clone(),
        None => st.seq.published().checkpoint.as_ref().clone(),
    };
    let resp = ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    with_cache(resp, CHECKPOINT_CACHE)
}

/// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]` (tlog-tiles).
pub(super) async fn tile(
    State(st): State<AppState>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let path = format!("tile/{rest}");
    let parsed = TilePath::parse(&path).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let size = st.seq.published().size;
    let w = u64::from(TILE_WIDTH);
    let (level, index, width, full) = match parsed {
        TilePath::Hash(t) => (t.level, t.index, t.width, t.is_full()),
        TilePath::Entries(b) => (0, b.index, b.width, b.is_full()),
    };
    // The tile exists at the published size if every hash (entry) it holds does.
    let end = index
        .checked_mul(w)
        .and_then(|s| s.checked_add(u64::from(width)));
    if end.is_none_or(|end| end > hashes_at_level(size, level)) {
        return Err(ApiError::NotFound(format!(
            "{path} is not in the published tree (size {size})"
        )));
    }
    let bytes = match parsed {
        TilePath::Hash(_) => {
            point_read(&st, move |store, cache| {
                let t = cache
                    .tile(store, level, index, width)?
                    .ok_or_else(|| ApiError::Internal(format!("{path} missing from the store")))?;
                t.get(..usize::from(width) * 32)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| ApiError::Internal(format!("{path} is truncated in the store")))
            })
            .await?
        }
        TilePath::Entries(_) => bundle(&st, index, width, full).await?,
    };
    let resp = ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
    Ok(with_cache(resp, if full { IMMUTABLE } else { SHORT_LIVED }))
}

async fn bundle(st: &AppState, index: u64, width: u16, full: bool) -> Result<Vec<u8>, ApiError> {
    if full && let Some(b) = st.cache.bundles.lock().ok().and_then(|c| c.get(&index)) {
        return Ok(b.as_ref().clone());
    }
    blocking(st, move |store, cache| {
        let start = index * u64::from(TILE_WIDTH);
        let entries = store.entries(start, start + u64::from(width))?;
        let bytes = encode_bundle(&entries).map_err(|e| ApiError::Internal(e.to_string()))?;
        if full && let Ok(mut c) = cache.bundles.lock() {
            c.put(index, Arc::new(bytes.clone()));
        }
        Ok(bytes)
    })
    .await
}

/// `GET /v1/log`: what a client needs to know about this log.
pub(super) async fn log_info(State(st): State<AppState>) -> Response {
    let p = st.seq.published();
    let l = &st.config.limits;
    axum::Json(serde_json::json!({
        "origin": st.config.origin,
        "verifier_key": st.verifier_key.as_ref(),
        "tree_size": p.size,
        "root_hash": p.root.to_base64(),
        "checkpoint": String::from_utf8_lossy(&p.checkpoint),
        "checkpoint_signed_at": p.signed_at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "storage_engine": st.store.engine(),
        "witness_policy": st.witnessing.policy_text(),
        "cosigned_tree_size": st.witnessing.cosigned().map(|c| c.size),
        "version": env!("CARGO_PKG_VERSION"),
        // Every configured limit, so clients can size requests and back off correctly.
        "limits": l,
        "access": {
            "anonymous_writes": st.guard.anonymous_writes(),
            "private_reads": st.config.auth.private_reads,
        },
    }))
    .into_response()
}

pub(super) fn entry_json(index: u64, bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    let env = LeafEnvelope::decode(bytes)
        .map_err(|e| ApiError::Internal(format!("entry {index} does not decode: {e}")))?;
    let json_payload = is_json_media(&media_essence(&env.content_type))
        .then(|| serde_json::from_slice::<serde_json::Value>(&env.payload).ok())
        .flatten();
    Ok(serde_json::json!({
        "index": index,
        "leaf_hash": sealtrail_spec::leaf_hash(bytes).to_hex(),
        "timestamp": env.time_ms,
        "principal": env.principal,
        "content_type": env.content_type,
        "event_type": env.event_type,
        "payload_base64": B64.encode(&env.payload),
        "payload": json_payload,
    }))
}

fn parse_index(v: &str) -> Result<u64, ApiError> {
    parse_u64("index", v)
}

/// `GET /v1/entries/{index}`: one entry, decoded.
pub(super) async fn get_entry(
    State(st): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let index = parse_index(&index)?;
    let size = st.seq.published().size;
    if index >= size {
        return Err(ApiError::NotFound(format!(
            "entry {index} is not in the log (size {size})"
        )));
    }
    let v = point_read(&st, move |store, _| {
        let bytes = store
            .entry(index)?
            .ok_or_else(|| ApiError::Internal(format!("entry {index} missing from the store")))?;
        entry_json(index, &bytes)
    })
    .await?;
    Ok(axum::Json(v).into_response())
}

/// `GET /v1/entries?start=&limit=`: a page of entries in index order.
pub(super) async fn list_entries(
    State(st): State<AppState>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let q = query(q, &["start", "limit"])?;
    let start = param(&q, "start")?.unwrap_or(0);
    let max = st.config.limits.max_page_entries;
    let limit = param(&q, "limit")?.unwrap_or(100.min(max));
    if limit == 0 || limit > max {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {max}")));
    }
    let size = st.seq.published().size;
    let end = start.saturating_add(limit).min(size);
    let entries = if start < end {
        blocking(&st, move |store, _| {
            store
                .entries(start, end)?
                .iter()
                .zip(start..)
                .map(|(b, i)| entry_json(i, b))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?
    } else {
        Vec::new()
    };
    Ok(axum::Json(serde_json::json!({
        "entries": entries,
        "tree_size": size,
        "next": (end < size && start < end).then_some(end),
    }))
    .into_response())
}

/// `GET /v1/proof/inclusion?index=|leaf_hash=&size=`.
pub(super) async fn inclusion(
    State(st): State<AppState>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let q = query(q, &["index", "leaf_hash", "size"])?;
    let published = st.seq.published();
    let size = param(&q, "size")?.unwrap_or(published.size);
    if size > published.size {
        return Err(ApiError::BadRequest(format!(
            "size {size} is beyond the published tree size {}",
            published.size
        )));
    }
    let by_hash = q
        .get("leaf_hash")
        .map(|h| {
            Hash::from_hex(h)
                .or_else(|_| Hash::from_base64(h))
                .map_err(|_| {
                    ApiError::BadRequest("leaf_hash must be 64 hex digits or base64".into())
                })
        })
        .transpose()?;
    let index = param(&q, "index")?;
    // The root at the published size is known; older sizes are computed.
    let published_root = (size == published.size).then_some(published.root);
    // A lookup by leaf hash reads one leaf-index row per run of 16,384 entries (a scan, so it
    // goes to the blocking pool); a proof by index is a point read.
    let scan = by_hash.is_some();
    let work = move |store: &dyn LogStore, cache: &TileCache| {
        let index = match (index, by_hash) {
            (Some(i), None) => i,
            (None, Some(h)) => {
                crate::leafindex::find(store, &mut CachedTiles { store, cache }, size, &h)?
                    .ok_or_else(|| {
                        ApiError::NotFound(format!(
                            "no entry in the tree of size {size} has leaf hash {h}"
                        ))
                    })?
            }
            _ => {
                return Err(ApiError::BadRequest(
                    "give exactly one of index and leaf_hash".into(),
                ));
            }
        };
        if index >= size {
            return Err(ApiError::NotFound(format!(
                "entry {index} is not in the tree of size {size}"
            )));
        }
        let mut r = ProofNodes::new(size, store, cache);
        let proof = inclusion_proof(index, size, &mut r).map_err(proof_error)?;
        let root = match published_root {
            Some(root) => root,
            None => tree_root(size, &mut r).map_err(proof_error)?,
        };
        let leaf = r
            .read_nodes(&[Node { height: 0, index }])
            .map_err(|e| ApiError::Internal(format!("reading leaf {index}: {e}")))?
            .first()
            .copied()
            .ok_or_else(|| ApiError::Internal("empty tile".into()))?;
        Ok(InclusionJson {
            index,
            tree_size: size,
            leaf_hash: leaf.to_hex(),
            root_hash: root.to_base64(),
            proof: proof.iter().map(Hash::to_base64).collect(),
        })
    };
    let v = if scan {
        blocking(&st, work).await?
    } else {
        point_read(&st, work).await?
    };
    Ok(axum::Json(v).into_response())
}

/// The answer of `GET /v1/proof/inclusion` (serialized directly, without a `Value` tree).
#[derive(serde::Serialize)]
struct InclusionJson {
    index: u64,
    tree_size: u64,
    leaf_hash: String,
    root_hash: String,
    proof: Vec<String>,
}

/// The answer of `GET /v1/proof/consistency`.
#[derive(serde::Serialize)]
struct ConsistencyJson {
    from: u64,
    to: u64,
    old_root: String,
    new_root: String,
    proof: Vec<String>,
}

/// `GET /v1/proof/consistency?from=&to=`.
pub(super) async fn consistency(
    State(st): State<AppState>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let q = query(q, &["from", "to"])?;
    let published = st.seq.published();
    let from = param(&q, "from")?.ok_or_else(|| ApiError::BadRequest("from is required".into()))?;
    let to = param(&q, "to")?.unwrap_or(published.size);
    if to > published.size {
        return Err(ApiError::BadRequest(format!(
            "to {to} is beyond the published tree size {}",
            published.size
        )));
    }
    if from > to {
        return Err(ApiError::BadRequest(format!(
            "from {from} is larger than to {to}"
        )));
    }
    let published_root = (to == published.size).then_some(published.root);
    let v = point_read(&st, move |store, cache| {
        let mut r = ProofNodes::new(to, store, cache);
        let proof = consistency_proof(from, to, &mut r).map_err(proof_error)?;
        let old_root = tree_root(from, &mut r).map_err(proof_error)?;
        let new_root = match published_root {
            Some(root) => root,
            None => tree_root(to, &mut r).map_err(proof_error)?,
        };
        Ok(ConsistencyJson {
            from,
            to,
            old_root: old_root.to_base64(),
            new_root: new_root.to_base64(),
            proof: proof.iter().map(Hash::to_base64).collect(),
        })
    })
    .await?;
    Ok(axum::Json(v).into_response())
}

/// `GET /v1/proof/{index}`: a c2sp.org/tlog-proof@v1 for the entry against the latest checkpoint.
pub(super) async fn tlog_proof(
    State(st): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let index = parse_index(&index)?;
    let published = st.seq.published();
    if index >= published.size {
        return Err(ApiError::NotFound(format!(
            "entry {index} is not in the log (size {})",
            published.size
        )));
    }
    let proof = inclusion_proof_at(&st, index, published.size).await?;
    let text = tlog_proof_text(index, &proof, &published.checkpoint)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// `GET /livez`: the process is up and its sequencer has not failed. After a failed commit the
/// log refuses writes until a restart (which re-checks the store), so a supervisor that restarts
/// on a failed liveness check is what recovers it.
pub(super) async fn livez(State(st): State<AppState>) -> Result<&'static str, ApiError> {
    if st.seq.is_failed() {
        return Err(ApiError::Unavailable(
            "the sequencer failed (see the logs); restart the server".into(),
        ));
    }
    Ok("ok\n")
}

/// `GET /readyz`: the store answers, the sequencer is alive and accepting writes.
pub(super) async fn readyz(State(st): State<AppState>) -> Result<Response, ApiError> {
    if st.seq.is_failed() {
        return Err(ApiError::Unavailable(
            "the sequencer is not accepting writes".into(),
        ));
    }
    blocking(&st, |store, _| store.tree_size().map_err(ApiError::from)).await?;
    Ok((StatusCode::OK, "ready\n").into_response())
}

/// `GET /metrics`: Prometheus text format.
pub(super) async fn metrics(State(st): State<AppState>) -> Response {
    st.metrics
        .queue_depth
        .set(i64::try_from(st.seq.queue_depth()).unwrap_or(i64::MAX));
    if let Ok(space) = crate::space::disk_space(&st.config.data_dir) {
        st.metrics.observe_disk(&space);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_path_pools_for_ten_times_a_slow_read() {
        let p = ReadPath::new(Duration::from_millis(10));
        let t0 = Instant::now();
        assert!(!p.pooled_at(t0));
        // Fast and from memory: stays inline.
        assert!(!p.finished_inline(t0, t0 + Duration::from_micros(50), false));
        // Slow but under the stall limit, without a disk read: stays inline.
        assert!(!p.finished_inline(t0, t0 + Duration::from_millis(9), false));
        assert!(!p.pooled_at(t0 + Duration::from_millis(9)));
        // A 2 ms read that went to the disk: pooled for the next 20 ms.
        let end = t0 + Duration::from_millis(2);
        assert!(p.finished_inline(t0, end, true));
        assert!(p.pooled_at(end + Duration::from_millis(19)));
        assert!(!p.pooled_at(end + Duration::from_millis(21)));
        // A stall without a disk read counts too, and a shorter later one never shortens the
        // window.
        let t1 = t0 + Duration::from_millis(100);
        let end = t1 + Duration::from_millis(30);
        assert!(p.finished_inline(t1, end, false));
        assert!(p.finished_inline(t1, t1 + Duration::from_micros(100), true));
        assert!(p.pooled_at(end + Duration::from_millis(299)));
        assert!(!p.pooled_at(end + Duration::from_millis(301)));
        // At most a second, however long the read.
        let t2 = t0 + Duration::from_secs(10);
        let end = t2 + Duration::from_secs(5);
        assert!(p.finished_inline(t2, end, true));
        assert!(p.pooled_at(end + Duration::from_millis(999)));
        assert!(!p.pooled_at(end + Duration::from_millis(1001)));
    }

    #[test]
    fn fifo_is_bounded_by_bytes() {
        let mut f = Fifo::new(100);
        for k in 0..10u64 {
            f.put(k, Arc::new(vec![0; 30]));
            assert!(f.bytes <= 100);
        }
        assert_eq!(f.map.len(), 3);
        assert!(f.get(&9).is_some() && f.get(&6).is_none());
        f.put(99, Arc::new(vec![0; 101])); // larger than the whole cache: not kept
        assert!(f.get(&99).is_none());
        f.put(9, Arc::new(vec![0; 50])); // already present: unchanged
        assert_eq!(f.bytes, 90);
    }
}
