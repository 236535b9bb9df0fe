//! `audit`: recompute a whole log from its entry bundles and check everything it serves.
//!
//! Bundle by bundle, the entries are hashed and appended to a [`TiledEdge`]; every hash tile
//! that becomes full is compared byte for byte with the log's, then the final partial tiles, and
//! the recomputed root with the signed checkpoint's. Bundles and their level-0 tiles are fetched
//! [`FETCH_WINDOW`] at a time by [`FETCH_THREADS`] threads, then hashed in order. Memory is
//! bounded: besides one window of bundles, only the right edge and one partial tile per level
//! are held. After every [`SAVE_EVERY`] full bundles the progress (size and partial tiles) is
//! written atomically to the optional state file, so a later run resumes there. The state is the
//! auditor's own and trusted, and it is progress, not a verdict: every run ends with the root
//! check, whose recomputed root covers the resumed prefix too.

use std::path::Path;

use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint::VerifiedCheckpoint;
use sealtrail_spec::edge::TiledEdge;
use sealtrail_spec::tiles::{self, BundleId, TileId};
use serde_json::{Value, json};

use crate::source::Source;
use crate::trust::Trust;
use crate::{Error, Report, show};

/// Full bundles between state-file saves.
pub const SAVE_EVERY: u64 = 64;

/// Bundles fetched per round (with their level-0 tiles); bounds the memory held for fetches.
pub const FETCH_WINDOW: u64 = 16;

/// Threads fetching one window.
pub const FETCH_THREADS: usize = 4;

/// A bundle's bytes and, for a full bundle, the log's level-0 tile over the same entries.
struct Fetched {
    bundle: BundleId,
    bytes: Vec<u8>,
    tile0: Option<Vec<Hash>>,
}

/// Audits the log at `source`, resuming from `state` if given and present.
pub fn run(trust: &Trust, source: &Source, state: Option<&Path>) -> Result<Report, Error> {
    run_with_progress(trust, source, state, &mut |_, _| {})
}

/// [`run`], calling `progress(audited, size)` after each fetch window.
pub fn run_with_progress(
    trust: &Trust,
    source: &Source,
    state: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report, Error> {
    let (cp, witnesses) = trust.open(&source.checkpoint()?, "the log's checkpoint")?;
    let size = cp.checkpoint().size();
    let (done, partials) = match state {
        Some(p) if p.exists() => load_state(p, trust.origin())?,
        _ => (0, Vec::new()),
    };
    if done > size {
        return Err(Error::failed(format!(
            "rollback: the log's checkpoint has size {size}, but {done} entries were already audited"
        )));
    }
    let resumed = done;
    let edge = TiledEdge::from_partial_tiles(done, partials)
        .map_err(|e| Error::Io(format!("state file: {e}")))?;
    let on_window = progress;
    let mut progress = Progress { done, edge };
    check_from(source, &cp, &mut progress, state, trust.origin(), on_window).map_err(
        |e| match e {
            Error::Failed(m) if resumed > 0 => Error::Failed(format!(
                "{m}; resumed from the state of {resumed} audited entries, so this may be a fork \
                 of the audited history"
            )),
            other => other,
        },
    )?;
    if let Some(p) = state {
        save_state(
            p,
            trust.origin(),
            size - size % 256,
            full_only(&progress.edge),
        )?;
    }
    let mut lines = show::checkpoint_lines("checkpoint", &cp, &witnesses);
    lines.push(format!(
        "audited entries {resumed}..{size}: every entry bundle, hash tile and the root match"
    ));
    Ok(Report {
        lines,
        json: json!({
            "checkpoint": show::checkpoint_json(&cp, &witnesses),
            "audited_from": resumed,
            "audited_to": size,
        }),
    })
}

/// The audit so far: entries below `done` (a multiple of 256) are checked; `edge` is the
/// recomputed tree, with its partial tiles, after the last appended bundle.
struct Progress {
    done: u64,
    edge: TiledEdge,
}

/// Audits the entries from `p.done` to the checkpoint's size, then the final partial tiles and
/// the root.
fn check_from(
    source: &Source,
    cp: &VerifiedCheckpoint,
    p: &mut Progress,
    state: Option<&Path>,
    origin: &str,
    on_window: &mut dyn FnMut(u64, u64),
) -> Result<(), Error> {
    let size = cp.checkpoint().size();
    let end = size.div_ceil(256);
    let mut next = p.done / 256;
    while next < end {
        let window: Vec<BundleId> = (next..end.min(next + FETCH_WINDOW))
            .map(|i| bundle_at(i, size))
            .collect();
        next += window.len() as u64;
        for fetched in fetch_window(source, &window) {
            let fetched = fetched?;
            p.edge = append_bundle(source, &p.edge, fetched)?;
            if p.edge.size().is_multiple_of(256) {
                p.done = p.edge.size();
                if let Some(f) = state.filter(|_| (p.done / 256).is_multiple_of(SAVE_EVERY)) {
                    save_state(f, origin, p.done, p.edge.partial_tiles())?;
                }
            }
        }
        on_window(p.edge.size(), size);
    }
    let edge = &p.edge;
    for (tile, hashes) in edge.partial_tiles() {
        compare(tile, &source.tile(tile)?, hashes)?;
    }
    if edge.root() != cp.checkpoint().root() {
        return Err(Error::failed(format!(
            "the root recomputed from every entry bundle, {}, is not the checkpoint's root {} \
             (size {size})",
            edge.root().to_base64(),
            cp.checkpoint().root().to_base64()
        )));
    }
    Ok(())
}

/// Bundle `index` of a tree of `size` leaves, with its width there.
fn bundle_at(index: u64, size: u64) -> BundleId {
    let width = (size - index * 256).min(256);
    BundleId {
        index,
        width: u16::try_from(width).unwrap_or(tiles::TILE_WIDTH),
    }
}

/// Fetches a window of bundles (and level-0 tiles) in parallel; results in window order.
fn fetch_window(source: &Source, window: &[BundleId]) -> Vec<Result<Fetched, Error>> {
    let per_thread = window.len().div_ceil(FETCH_THREADS).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = window
            .chunks(per_thread)
            .map(|chunk| s.spawn(move || chunk.iter().map(|b| fetch(source, *b)).collect()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err(Error::Io("a fetch thread panicked".into()))])
            })
            .collect()
    })
}

fn fetch(source: &Source, bundle: BundleId) -> Result<Fetched, Error> {
    let bytes = source.bundle(bundle)?;
    let tile0 = if bundle.is_full() {
        Some(source.tile(TileId {
            level: 0,
            index: bundle.index,
            width: tiles::TILE_WIDTH,
        })?)
    } else {
        None
    };
    Ok(Fetched {
        bundle,
        bytes,
        tile0,
    })
}

/// Hashes one bundle into the tree, checking every tile it completes.
fn append_bundle(source: &Source, edge: &TiledEdge, fetched: Fetched) -> Result<TiledEdge, Error> {
    let Fetched {
        bundle,
        bytes,
        mut tile0,
    } = fetched;
    let entries = tiles::decode_bundle(&bytes, Some(bundle.width))
        .map_err(|e| Error::failed(format!("{}: {e}", bundle.path())))?;
    let leaves: Vec<Hash> = entries
        .iter()
        .map(|e| sealtrail_spec::leaf_hash(e))
        .collect();
    let ext = edge
        .extend(&leaves)
        .map_err(|e| Error::Io(format!("internal: {e}")))?;
    // Partial tiles stay in the edge; they are compared once, at the audited size.
    for (tile, hashes) in ext.tiles.iter().filter(|(t, _)| t.is_full()) {
        let theirs = match tile0.take().filter(|_| tile.level == 0) {
            Some(t) => t,
            None => source.tile(*tile)?,
        };
        compare(*tile, &theirs, hashes).map_err(|e| with_bundle(e, bundle))?;
    }
    Ok(ext.edge)
}

fn with_bundle(e: Error, bundle: BundleId) -> Error {
    match e {
        Error::Failed(m) => Error::Failed(format!(
            "{m} (recomputed from the entry bundles up to {})",
            bundle.path()
        )),
        other => other,
    }
}

/// Checks the log's tile against our recomputed hashes, byte for byte.
fn compare(tile: TileId, theirs: &[Hash], ours: &[Hash]) -> Result<(), Error> {
    match theirs.iter().zip(ours).position(|(a, b)| a != b) {
        None if theirs.len() == ours.len() => Ok(()),
        None => Err(Error::failed(format!(
            "{}: wrong number of hashes",
            tile.path()
        ))),
        Some(i) => Err(Error::failed(format!(
            "{}: hash {i} (level {} position {}) is {} in the log but recomputes to {}",
            tile.path(),
            tile.level,
            tile.index * 256 + i as u64,
            theirs[i].to_base64(),
            ours[i].to_base64()
        ))),
    }
}

/// The partial tiles at the last full-bundle boundary at or below the edge's size, for the state
/// file: level 0 has none there; higher levels keep theirs (a partial level-0 tile never feeds
/// them).
fn full_only(edge: &TiledEdge) -> impl Iterator<Item = (TileId, &[Hash])> {
    let at_boundary = edge.size().is_multiple_of(256);
    edge.partial_tiles()
        .filter(move |(t, _)| at_boundary || t.level > 0)
}

fn save_state<'a>(
    path: &Path,
    origin: &str,
    size: u64,
    partials: impl Iterator<Item = (TileId, &'a [Hash])>,
) -> Result<(), Error> {
    let tiles: Vec<Value> = partials
        .map(|(t, hs)| json!({ "level": t.level, "hashes": hs.iter().map(Hash::to_hex).collect::<Vec<_>>() }))
        .collect();
    let text = json!({ "origin": origin, "size": size, "partial_tiles": tiles }).to_string();
    crate::write_atomically(path, text.as_bytes())
}

/// A state file's partial tiles: level and hashes, as [`TiledEdge::from_partial_tiles`] takes them.
type Partials = Vec<(u8, Vec<Hash>)>;

/// The audited size and the partial tiles there, from the state file.
fn load_state(path: &Path, origin: &str) -> Result<(u64, Partials), Error> {
    let bad = |what: &str| Error::Usage(format!("state file {}: {what}", path.display()));
    let v: Value =
        serde_json::from_slice(&crate::read_file(path)?).map_err(|e| bad(&e.to_string()))?;
    if v["origin"] != origin {
        return Err(bad("it is for another origin"));
    }
    let size = v["size"].as_u64().ok_or_else(|| bad("no size"))?;
    let mut partials = Vec::new();
    for t in v["partial_tiles"]
        .as_array()
        .ok_or_else(|| bad("no partial_tiles"))?
    {
        let level = t["level"]
            .as_u64()
            .and_then(|l| u8::try_from(l).ok())
            .ok_or_else(|| bad("level"))?;
        let hashes = t["hashes"].as_array().ok_or_else(|| bad("hashes"))?;
        let hashes: Result<Vec<Hash>, _> = hashes
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|h| Hash::from_hex(h).ok())
                    .ok_or_else(|| bad("hash"))
            })
            .collect();
        partials.push((level, hashes?));
    }
    Ok((size, partials))
}
