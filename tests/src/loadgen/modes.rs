//! What each mode's request does: build it, send it on the worker's connection, and check the
//! answer (see `checks`); and the run's unmeasured phases around the load, the prefill before it
//! and the post-run check of acknowledged entries.

use std::sync::atomic::{AtomicU64, Ordering};

use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use sealtrail_spec::Hash;

use super::checks::{self, AppendReply, BatchReply, ConsistencyReply, InclusionReply, Tree, Trust};
use super::client::{Client, Conn, Failure, expect_status};
use super::stats::Done;
use super::{LoadError, Mode, Options};

/// What every request needs: the client, the trusted key and origin, and the signed tree the
/// read modes work against.
pub(super) struct Ctx {
    pub(super) http: Client,
    pub(super) trust: Trust,
    pub(super) opts: Options,
    /// The signed tree that proofs and tiles are requested against.
    pub(super) tree: Option<Tree>,
    payload_pad: String,
    next_seq: AtomicU64,
}

impl Ctx {
    pub(super) fn new(http: Client, trust: Trust, opts: Options) -> Self {
        Ctx {
            http,
            trust,
            payload_pad: "x".repeat(opts.payload_bytes),
            next_seq: AtomicU64::new(0),
            tree: None,
            opts,
        }
    }

    /// A JSON payload of exactly `payload_bytes` bytes, unique within the run.
    fn payload(&self, out: &mut Vec<u8>) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let head = format!("{{\"seq\":{seq},\"pad\":\"");
        let pad = self
            .opts
            .payload_bytes
            .saturating_sub(head.len() + 2)
            .min(self.payload_pad.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.payload_pad.as_bytes()[..pad]);
        out.extend_from_slice(b"\"}");
    }

    fn tree(&self) -> Result<Tree, Failure> {
        self.tree
            .ok_or_else(|| Failure::new("usage", "no signed tree to read"))
    }

    /// `GET /checkpoint`, opened with the trusted key.
    pub(super) async fn signed_tree(&self, conn: &mut Option<Conn>) -> Result<Tree, Failure> {
        let (status, body) = self
            .http
            .call(conn, Method::GET, "/checkpoint", None, Bytes::new())
            .await?;
        expect_status(status, StatusCode::OK, &body)?;
        self.trust.open_checkpoint(&body)
    }
}

/// A small, fast, seeded generator (xorshift64*); quality is irrelevant here.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Which request a mode makes for request number `n`.
pub(super) fn op_for(mode: Mode, n: u64) -> Mode {
    if mode != Mode::Mixed {
        return mode;
    }
    match n % 10 {
        0..=4 => Mode::Append,
        5..=7 => Mode::Inclusion,
        8 => Mode::Tiles,
        _ => Mode::Consistency,
    }
}

/// One request of kind `op` on `conn`, its answer checked. `keep`: keep an acknowledged entry
/// for the post-run check. `buf` is the worker's reusable body buffer.
pub(super) async fn one(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    op: Mode,
    rng: &mut Rng,
    keep: bool,
    buf: &mut Vec<u8>,
) -> Result<Done, Failure> {
    let check_path = rng.below(ctx.opts.verify_every.max(1)) == 0;
    match op {
        Mode::Append | Mode::Checkpoint | Mode::Mixed => append(ctx, conn, op, keep, buf).await,
        Mode::Batch => batch(ctx, conn, rng, keep, buf).await,
        Mode::Inclusion => {
            let tree = ctx.tree()?;
            let index = rng.below(tree.size);
            inclusion(ctx, conn, tree, index, None, check_path).await
        }
        Mode::Consistency => consistency(ctx, conn, rng, check_path).await,
        Mode::Tiles => tile(ctx, conn, rng, check_path).await,
    }
}

/// `POST /v1/entries` (with `wait=checkpoint` in checkpoint mode, its tlog-proof verified).
async fn append(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    op: Mode,
    keep: bool,
    buf: &mut Vec<u8>,
) -> Result<Done, Failure> {
    buf.clear();
    ctx.payload(buf);
    let path = if op == Mode::Checkpoint {
        "/v1/entries?wait=checkpoint"
    } else {
        "/v1/entries"
    };
    let (status, body) = ctx
        .http
        .call(
            conn,
            Method::POST,
            path,
            Some("application/json"),
            Bytes::copy_from_slice(buf),
        )
        .await?;
    expect_status(status, StatusCode::CREATED, &body)?;
    let r: AppendReply = checks::parse("append reply", &body)?;
    let leaf = checks::append_reply(&r)?;
    let mut verified = false;
    if op == Mode::Checkpoint {
        checks::tlog_proof(&ctx.trust, r.index, &leaf, r.tlog_proof.as_deref())?;
        verified = true;
    }
    Ok(Done {
        entries: 1,
        first_index: r.index,
        verified,
        sample: keep.then_some((r.index, leaf)),
    })
}

/// `POST /v1/entries/batch` with [`Options::batch`] entries; one acknowledged entry sampled.
async fn batch(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    rng: &mut Rng,
    keep: bool,
    buf: &mut Vec<u8>,
) -> Result<Done, Failure> {
    buf.clear();
    for _ in 0..ctx.opts.batch {
        ctx.payload(buf);
        buf.push(b'\n');
    }
    let (status, body) = ctx
        .http
        .call(
            conn,
            Method::POST,
            "/v1/entries/batch",
            Some("application/x-ndjson"),
            Bytes::copy_from_slice(buf),
        )
        .await?;
    expect_status(status, StatusCode::CREATED, &body)?;
    let r: BatchReply = checks::parse("batch reply", &body)?;
    let n = ctx.opts.batch as u64;
    checks::batch_reply(&r, n)?;
    let k = rng.below(n);
    let leaf = checks::hash_hex(r.leaf_hashes.get(k as usize).map_or("", String::as_str))?;
    Ok(Done {
        entries: n,
        first_index: r.first_index,
        verified: false,
        sample: keep.then_some((r.first_index + k, leaf)),
    })
}

/// `GET /v1/proof/consistency` from a random size to the signed tree.
async fn consistency(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    rng: &mut Rng,
    check_path: bool,
) -> Result<Done, Failure> {
    let tree = ctx.tree()?;
    let from = 1 + rng.below(tree.size);
    let path = format!("/v1/proof/consistency?from={from}&to={}", tree.size);
    let r: ConsistencyReply = ctx.http.get_json(conn, &path).await?;
    checks::consistency_reply(&r, from, tree, check_path)?;
    Ok(Done {
        verified: check_path,
        ..Done::default()
    })
}

/// `GET /tile/0/<N>`: a random full level-0 tile of the signed tree (the partial first one if
/// there is no full one); with `check_path`, one of its hashes proven into the signed tree.
async fn tile(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    rng: &mut Rng,
    check_path: bool,
) -> Result<Done, Failure> {
    let tree = ctx.tree()?;
    let full = tree.size / 256;
    let (index, width) = if full > 0 {
        (rng.below(full), 256u64)
    } else {
        (0, tree.size)
    };
    let path = if width == 256 {
        format!("/tile/0/{}", sealtrail_spec::tiles::encode_index(index))
    } else {
        format!("/tile/0/000.p/{width}")
    };
    let (status, body) = ctx
        .http
        .call(conn, Method::GET, &path, None, Bytes::new())
        .await?;
    expect_status(status, StatusCode::OK, &body)?;
    checks::tile_body(&path, &body, width)?;
    if check_path {
        // One hash of the tile must be the leaf hash at its index in the signed tree.
        let k = rng.below(width);
        let leaf = checks::tile_hash(&path, &body, k)?;
        inclusion(ctx, conn, tree, index * 256 + k, Some(leaf), true).await?;
    }
    Ok(Done {
        verified: check_path,
        ..Done::default()
    })
}

/// Requests the inclusion proof of `index` in `tree` and checks it; `leaf`, if given, must be
/// the proven leaf hash.
async fn inclusion(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    tree: Tree,
    index: u64,
    leaf: Option<Hash>,
    check_path: bool,
) -> Result<Done, Failure> {
    let path = format!("/v1/proof/inclusion?index={index}&size={}", tree.size);
    let r: InclusionReply = ctx.http.get_json(conn, &path).await?;
    checks::inclusion_reply(&r, index, tree, leaf, check_path)?;
    Ok(Done {
        verified: check_path,
        ..Done::default()
    })
}

/// Appends `prefill` entries in batches of up to 1000, unmeasured, one request at a time.
pub(super) async fn prefill(ctx: &Ctx, conn: &mut Option<Conn>) -> Result<(), LoadError> {
    let mut left = ctx.opts.prefill;
    let mut bodies = Vec::new();
    while left > 0 {
        let n = left.min(1000);
        left -= n;
        let mut buf = Vec::new();
        for _ in 0..n {
            ctx.payload(&mut buf);
            buf.push(b'\n');
        }
        bodies.push((n, Bytes::from(buf)));
    }
    for (n, body) in bodies {
        let (status, reply) = ctx
            .http
            .call(
                conn,
                Method::POST,
                "/v1/entries/batch",
                Some("application/x-ndjson"),
                body,
            )
            .await
            .map_err(|e| LoadError::Server(format!("prefill: {}", e.message)))?;
        expect_status(status, StatusCode::CREATED, &reply)
            .map_err(|e| LoadError::Server(format!("prefill: {}", e.message)))?;
        let r: BatchReply = serde_json::from_slice(&reply)
            .map_err(|e| LoadError::Server(format!("prefill reply: {e}")))?;
        if r.count != n {
            return Err(LoadError::Server(format!(
                "prefill: {n} entries acknowledged as {}",
                r.count
            )));
        }
    }
    Ok(())
}

/// Proves up to `post_check` sampled acknowledged entries into a fresh signed checkpoint.
pub(super) async fn post_check(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    samples: &[(u64, Hash)],
) -> Result<u64, Failure> {
    if samples.is_empty() || ctx.opts.post_check == 0 {
        return Ok(0);
    }
    let tree = ctx.signed_tree(conn).await?;
    let step = samples.len().div_ceil(ctx.opts.post_check).max(1);
    let mut n = 0;
    for &(index, leaf) in samples.iter().step_by(step) {
        if index >= tree.size {
            return Err(Failure::verify(format!(
                "entry {index} was acknowledged but the signed tree has only {} entries",
                tree.size
            )));
        }
        inclusion(ctx, conn, tree, index, Some(leaf), true).await?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_mode_proportions() {
        let ops: Vec<Mode> = (0..10).map(|n| op_for(Mode::Mixed, n)).collect();
        let count = |m| ops.iter().filter(|&&o| o == m).count();
        assert_eq!(count(Mode::Append), 5);
        assert_eq!(count(Mode::Inclusion), 3);
        assert_eq!(count(Mode::Tiles), 1);
        assert_eq!(count(Mode::Consistency), 1);
    }
}
