//! Where a log's tlog-tiles resources come from: an HTTP(S) base URL or a local directory laid
//! out as static tlog-tiles (`checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`).
//!
//! Nothing read here is trusted: callers verify every byte against a signed checkpoint. A
//! resource the log should have but does not serve is a verification failure naming its path;
//! a network or file-system failure is an I/O error. A missing partial tile or bundle is read
//! from its full version and truncated, as tlog-tiles allows logs to drop partial versions.

use std::path::PathBuf;
use std::time::Duration;

use sealtrail_spec::Hash;
use sealtrail_spec::tiles::{self, BundleId, TileId, TileReader};

use crate::Error;

/// Attempts per HTTP request (transient failures and 5xx/429 are retried).
const HTTP_ATTEMPTS: u32 = 3;
/// Per-request timeout: a full entry bundle is at most 16 MiB.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);
/// First retry delay; doubled per attempt.
const RETRY_DELAY: Duration = Duration::from_millis(250);
/// Largest answer read from the log's JSON API: a record's payload is at most 1 MiB, served both
/// as base64 and, for JSON, parsed.
const MAX_API_ANSWER: u64 = 16 << 20;

/// What the log's JSON API answered to a GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAnswer {
    /// 2xx, with the body.
    Body(Vec<u8>),
    /// 404: the log does not serve this resource.
    NotFound,
    /// 401 or 403: the log refuses this caller (no token, or a token without the right).
    Denied(u16),
}

/// A log's static resources.
#[derive(Debug)]
pub enum Source {
    /// `base` ends without a slash.
    Http {
        /// The log's base URL.
        base: String,
        /// The shared client.
        client: reqwest::blocking::Client,
    },
    /// A directory of static tiles.
    Dir(PathBuf),
    /// An export archive, unpacked into a scratch directory for as long as this lives.
    Archive(crate::archive::Scratch),
}

impl Source {
    /// `http://` and `https://` locations are URLs; a file is an export archive
    /// (`sealtrail export --archive`); anything else is a directory.
    pub fn open(location: &str) -> Result<Self, Error> {
        if location.starts_with("http://") || location.starts_with("https://") {
            let client = http_client()?;
            let base = location.trim_end_matches('/').to_owned();
            Ok(Source::Http { base, client })
        } else {
            let dir = PathBuf::from(location);
            if dir.is_file() {
                return Ok(Source::Archive(crate::archive::extract(&dir)?));
            }
            if !dir.is_dir() {
                return Err(Error::Io(format!(
                    "{location} is neither a URL nor a directory"
                )));
            }
            Ok(Source::Dir(dir))
        }
    }

    /// Fetches `path` (relative to the log root); `None` when the log says it does not exist.
    pub fn get(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Source::Dir(_) | Source::Archive(_) => match std::fs::read(self.dir_path(path)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::Io(format!("reading {path}: {e}"))),
            },
            Source::Http { base, client } => http_get(client, &format!("{base}/{path}")),
        }
    }

    /// GETs `path` from the log's JSON API (relative to the log's base URL) with an optional
    /// bearer token. `None` for a tile directory, which has no API. The token is sent only
    /// here, never with tile requests.
    pub fn api_get(&self, path: &str, token: Option<&str>) -> Result<Option<ApiAnswer>, Error> {
        match self {
            Source::Dir(_) | Source::Archive(_) => Ok(None),
            Source::Http { base, client } => {
                let url = format!("{base}/{path}");
                http_fetch(client, &url, Api::Json { token }, MAX_API_ANSWER).map(Some)
            }
        }
    }

    /// `path` inside a directory or an unpacked archive.
    fn dir_path(&self, path: &str) -> PathBuf {
        match self {
            Source::Dir(dir) => dir.join(path),
            Source::Archive(s) => s.path().join(path),
            Source::Http { .. } => PathBuf::from(path),
        }
    }

    /// The log's current checkpoint note.
    pub fn checkpoint(&self) -> Result<Vec<u8>, Error> {
        self.get("checkpoint")?
            .ok_or_else(|| Error::failed("the log serves no checkpoint"))
    }

    /// A hash tile's hashes (exactly `tile.width`).
    pub fn tile(&self, tile: TileId) -> Result<Vec<Hash>, Error> {
        let bytes = match self.get(&tile.path())? {
            Some(b) => b,
            None if !tile.is_full() => {
                let full = TileId {
                    width: tiles::TILE_WIDTH,
                    ..tile
                };
                let mut b = self
                    .get(&full.path())?
                    .ok_or_else(|| missing(&tile.path()))?;
                b.truncate(usize::from(tile.width) * sealtrail_spec::hash::HASH_SIZE);
                b
            }
            None => return Err(missing(&tile.path())),
        };
        tiles::decode_hash_tile(&bytes, tile.width)
            .map_err(|e| Error::failed(format!("{}: {e}", tile.path())))
    }

    /// An entry bundle's bytes, exactly `bundle.width` entries (checked by the caller).
    pub fn bundle(&self, bundle: BundleId) -> Result<Vec<u8>, Error> {
        if let Some(b) = self.get(&bundle.path())? {
            return Ok(b);
        }
        if bundle.is_full() {
            return Err(missing(&bundle.path()));
        }
        let full = BundleId {
            width: tiles::TILE_WIDTH,
            ..bundle
        };
        let bytes = self
            .get(&full.path())?
            .ok_or_else(|| missing(&bundle.path()))?;
        let entries = tiles::decode_bundle(&bytes, None)
            .map_err(|e| Error::failed(format!("{}: {e}", full.path())))?;
        let keep = entries
            .iter()
            .take(usize::from(bundle.width))
            .map(|e| 2 + e.len())
            .sum();
        Ok(bytes[..keep].to_vec())
    }
}

/// The verifier's HTTP client: rustls with the ring provider, timeouts. Installs ring as the
/// process's default rustls provider if none is (reqwest is built without one).
pub fn http_client() -> Result<reqwest::blocking::Client, Error> {
    // Ignore the error: another caller in this process may have installed one already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("sealtrail-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Io(format!("HTTP client: {e}")))
}

fn missing(path: &str) -> Error {
    Error::failed(format!("{path} is missing: the log does not serve it"))
}

fn http_get(client: &reqwest::blocking::Client, url: &str) -> Result<Option<Vec<u8>>, Error> {
    match http_fetch(client, url, Api::Static, u64::MAX)? {
        ApiAnswer::Body(b) => Ok(Some(b)),
        ApiAnswer::NotFound => Ok(None),
        ApiAnswer::Denied(status) => {
            let status = reqwest::StatusCode::from_u16(status)
                .map_or_else(|_| status.to_string(), |s| s.to_string());
            Err(Error::Io(format!("GET {url}: HTTP {status}")))
        }
    }
}

/// What a GET asks for: a static resource, or a JSON API answer with an optional bearer token.
#[derive(Clone, Copy)]
enum Api<'a> {
    Static,
    Json { token: Option<&'a str> },
}

/// GETs `url` with retries (transient failures, 5xx and 429) and a body of at most `limit`
/// bytes.
fn http_fetch(
    client: &reqwest::blocking::Client,
    url: &str,
    api: Api<'_>,
    limit: u64,
) -> Result<ApiAnswer, Error> {
    use std::io::Read as _;
    let mut last = String::new();
    for attempt in 0..HTTP_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(RETRY_DELAY * 2u32.pow(attempt - 1));
        }
        let mut request = client.get(url);
        if let Api::Json { token } = api {
            request = request.header(reqwest::header::ACCEPT, "application/json");
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
        }
        match request.send() {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                return Ok(ApiAnswer::NotFound);
            }
            Ok(r) if matches!(r.status().as_u16(), 401 | 403) => {
                return Ok(ApiAnswer::Denied(r.status().as_u16()));
            }
            Ok(r) if r.status().is_success() => {
                let mut body = Vec::new();
                match r.take(limit.saturating_add(1)).read_to_end(&mut body) {
                    Ok(n) if n as u64 > limit => {
                        return Err(Error::failed(format!(
                            "GET {url}: the answer is larger than {limit} bytes"
                        )));
                    }
                    Ok(_) => return Ok(ApiAnswer::Body(body)),
                    Err(e) => last = e.to_string(),
                }
            }
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                last = format!("HTTP {}", r.status());
            }
            Ok(r) => return Err(Error::Io(format!("GET {url}: HTTP {}", r.status()))),
            Err(e) => last = e.to_string(),
        }
    }
    Err(Error::Io(format!(
        "GET {url}: {last} (after {HTTP_ATTEMPTS} attempts)"
    )))
}

/// A [`TileReader`] over a [`Source`].
#[derive(Debug)]
pub struct SourceTiles<'a>(pub &'a Source);

impl TileReader for SourceTiles<'_> {
    type Error = Error;

    fn read_tile(&mut self, tile: TileId) -> Result<Vec<Hash>, Error> {
        self.0.tile(tile)
    }
}
