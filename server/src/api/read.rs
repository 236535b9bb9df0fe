//! The read API: tlog-tiles resources, the JSON entry and proof endpoints, and the operational
//! endpoints. Every read is bounded by the published tree size, so nothing is served that a
//! signed checkpoint does not cover; store access runs on the blocking pool.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash as StdHash;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealtrail_spec::Hash;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::merkle::{HashReader, Node, consistency_proof, inclusion_proof, tree_root};
use sealtrail_spec::tiles::{
    TILE_HEIGHT, TILE_WIDTH, TileHashReader, TileId, TilePath, TileReadError, TileReader,
    decode_hash_tile, encode_bundle, hashes_at_level, tile_for,
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
/// Bytes of tile summaries (see [`ProofNodes`]): 960 bytes per full tile, so 48 MiB covers the
/// level-0 tiles of a log of about 13M entries. Partial tiles' summaries (a new one per width, so
/// per commit) have their own small cache, so they never push full ones out.
const CACHED_SUMMARY_BYTES: usize = 48 << 20;
const CACHED_PARTIAL_SUMMARY_BYTES: usize = 1 << 20;
/// Partial tiles kept at the right edge of the tree (about one per level).
const CACHED_PARTIAL_TILES: usize = 16;
/// Heights inside a tile from which nodes are served from a tile summary: a node of relative height
/// r costs 2^r - 1 hashes from the tile's own hashes, so summaries keep heights 4 to 7 (30 hashes)
/// and proofs hash at most 7 times per tile level.
const SUMMARY_FROM: u8 = 4;
const SUMMARY_HASHES: usize = 16 + 8 + 4 + 2;

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

/// Reads tiles for proofs through the cache.
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

/// Tiles read while serving one request, kept for that request: a proof, its root and its leaf
/// read the same few tiles.
struct RequestTiles<'a> {
    cached: CachedTiles<'a>,
    memo: Vec<(TileId, Vec<Hash>)>,
}

impl TileReader for RequestTiles<'_> {
    type Error = StoreError;

    fn read_tile(&mut self, tile: TileId) -> Result<Vec<Hash>, StoreError> {
        if let Some((_, h)) = self.memo.iter().find(|(t, _)| *t == tile) {
            return Ok(h.clone());
        }
        let h = self.cached.read_tile(tile)?;
        self.memo.push((tile, h.clone()));
        Ok(h)
    }
}

/// Serves proof nodes: like [`TileHashReader`], but the nodes of relative heights 4 to 7 inside a
/// tile come from a cached summary of that tile (its inner hashes at those heights, 30 for a full
/// tile, built once from the tile's hashes), so a proof hashes at most 7 times per tile level
/// instead of up to 247. Lower nodes are served by [`TileHashReader`].
struct ProofNodes<'a> {
    size: u64,
    tiles: RequestTiles<'a>,
}

impl<'a> ProofNodes<'a> {
    fn new(size: u64, store: &'a dyn LogStore, cache: &'a TileCache) -> Self {
        ProofNodes {
            size,
            tiles: RequestTiles {
                cached: CachedTiles { store, cache },
                memo: Vec::new(),
            },
        }
    }

    /// The summary of `tile`: its hashes at relative heights 4, 5, 6, 7, left to right (for a
    /// partial tile, the complete nodes of its width).
    fn summary(&mut self, tile: TileId) -> Result<Arc<Vec<u8>>, TileReadError<StoreError>> {
        let cache = self.tiles.cached.cache;
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
        let mut row = self
            .tiles
            .read_tile(tile)
            .map_err(|error| TileReadError::Reader { tile, error })?;
        if row.len() != usize::from(tile.width) {
            return Err(TileReadError::Corrupt(tile, row.len()));
        }
        let mut out = Vec::with_capacity(SUMMARY_HASHES * 32);
        for height in 1..TILE_HEIGHT {
            row = row
                .chunks_exact(2)
                .map(|p| sealtrail_spec::node_hash(&p[0], &p[1]))
                .collect();
            if height >= SUMMARY_FROM {
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

    /// The node from its tile's summary, if it is high enough inside its tile.
    fn summary_node(&mut self, node: &Node) -> Result<Option<Hash>, TileReadError<StoreError>> {
        let (level, rel) = (node.height / TILE_HEIGHT, node.height % TILE_HEIGHT);
        if rel < SUMMARY_FROM {
            return Ok(None);
        }
        // The last hash of this level that the node covers, as in `TileHashReader`.
        let last = ((node.index + 1) << rel) - 1;
        let Some(tile) = tile_for(self.size, level, last) else {
            return Ok(None);
        };
        let summary = self.summary(tile)?;
        // The summary holds width >> r hashes for each height r from 4 to 7, in that order.
        let base: usize = (SUMMARY_FROM..rel)
            .map(|r| usize::from(tile.width >> r))
            .sum();
        let within = usize::try_from(node.index % (u64::from(TILE_WIDTH) >> rel)).unwrap_or(0);
        let at = (base + within) * 32;
        let corrupt = || TileReadError::Corrupt(tile, summary.len() / 32);
        let bytes = summary.get(at..at + 32).ok_or_else(corrupt)?;
        Hash::from_slice(bytes).map(Some).map_err(|_| corrupt())
    }
}

impl HashReader for ProofNodes<'_> {
    type Error = TileReadError<StoreError>;

    fn read_nodes(&mut self, nodes: &[Node]) -> Result<Vec<Hash>, Self::Error> {
        let mut out = Vec::with_capacity(nodes.len());
        let mut rest = Vec::new();
        for node in nodes {
            let h = self.summary_node(node)?;
            if h.is_none() {
                rest.push(*node);
            }
            out.push(h);
        }
        let mut rest = TileHashReader::new(self.size, &mut self.tiles)
            .read_nodes(&rest)?
            .into_iter();
        out.into_iter()
            .map(|h| h.or_else(|| rest.next()))
            .collect::<Option<Vec<Hash>>>()
            .ok_or(TileReadError::OutOfTree(
                nodes.first().copied().unwrap_or(Node {
                    height: 0,
                    index: 0,
                }),
                self.size,
            ))
    }
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
    blocking(st, move |store, cache| {
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
            blocking(&st, move |store, cache| {
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
    let v = blocking(&st, move |store, _| {
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
    let v = blocking(&st, move |store, cache| {
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
        Ok(serde_json::json!({
            "index": index,
            "tree_size": size,
            "leaf_hash": leaf.to_hex(),
            "root_hash": root.to_base64(),
            "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
        }))
    })
    .await?;
    Ok(axum::Json(v).into_response())
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
    let v = blocking(&st, move |store, cache| {
        let mut r = ProofNodes::new(to, store, cache);
        let proof = consistency_proof(from, to, &mut r).map_err(proof_error)?;
        let old_root = tree_root(from, &mut r).map_err(proof_error)?;
        let new_root = match published_root {
            Some(root) => root,
            None => tree_root(to, &mut r).map_err(proof_error)?,
        };
        Ok(serde_json::json!({
            "from": from,
            "to": to,
            "old_root": old_root.to_base64(),
            "new_root": new_root.to_base64(),
            "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
        }))
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
