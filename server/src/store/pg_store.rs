//! The PostgreSQL engine: the log in one PostgreSQL database, which several sealtrail instances
//! may share.
//!
//! Client: `tokio-postgres`, without an ORM. It is the well-kept asynchronous client the Rust
//! PostgreSQL ecosystem builds on (the synchronous `postgres` crate, deadpool and bb8 wrap it), it
//! needs no database at compile time (sqlx's checked queries do, or a cache of them), and its
//! dependency tree is small beside sqlx's (no query macros, no database-agnostic layer); plain
//! SQL over a handful of tables needs nothing more.
//!
//! [`LogStore`] is synchronous and is called from tokio workers, blocking-pool threads and plain
//! threads alike. So the store owns a small tokio runtime of its own ([`RUNTIME_THREADS`]
//! workers) that drives its connections: every call spawns its async work there and waits for the
//! answer on a `std::sync::mpsc` channel, which is safe from any thread (`Handle::block_on` and
//! tokio's `blocking_recv` panic inside an async context). Reads use a pool of
//! [`PgConfig::pool_size`] connections; commits have a connection of their own.
//!
//! Layout (schema version [`SCHEMA_VERSION`], applied at connect by versioned migrations recorded
//! in `sealtrail_schema`): `meta` (one row: tree size, checkpoint), `entries` (index → leaf and
//! its live record, NULL once erased), `tombstones` (index → erasure entry index), `holds`,
//! `tiles` ((level, index) → bytes), `idempotency` (key digest → 16-byte record), `leaf_runs`
//! ((run, bucket) → row), `postings` (key → row; `bytea` compares bytewise, as the contract
//! wants), `sink_cursors` (name → next index). Indices are `u64` stored bit for bit in `bigint`
//! (values of 2^63 and more read as negative in SQL); range reads are bounded to `0..2^63`, far
//! beyond any tree.
//!
//! Durability: every session runs with `synchronous_commit = on`, so `COMMIT` returns once the
//! WAL is flushed (with the server's `fsync` on). Cursor writes commit with `synchronous_commit =
//! off` and become durable with the next commit's WAL flush, as the [`CursorStore`] contract
//! allows.
//!
//! Several instances ([`LogStore::shared`]): every commit locks the `meta` row (`FOR UPDATE`) and
//! compares the tree size in the same transaction, so two writers can never both extend the same
//! tree. The sequencer opens that transaction first ([`LogStore::begin_commit`]), learns the
//! stored size, lands its batch after it (`sequencer::follow`) and commits in the same
//! transaction; a plain [`LogStore::commit`] on a stale size gets [`StoreError::SizeMismatch`]
//! and writes nothing. Idempotency keys are inserted without overwriting: a key another instance
//! committed first refuses the batch ([`StoreError::Conflict`]). Background singletons hold
//! session advisory locks ([`LogStore::try_lead`]) on connections of their own. A second
//! connection is therefore not refused, unlike the embedded engines.
//!
//! Erased records: PostgreSQL keeps an updated row's old version until VACUUM reclaims it
//! (autovacuum does, in time); there is no directory to compact, so [`LogStore::copy_into`] is
//! refused.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use super::{
    Batch, CursorStore, EntryStore, IdempotencyRecord, IdempotencyStore, LeafIndex, LogStore,
    PostingStore, RecordState, RecordStore, StoreError, StoreResult, TileStore,
};

/// The schema version this build writes and reads. A database with a newer one is refused.
pub const SCHEMA_VERSION: i32 = 2;

/// Worker threads of the store's own runtime: it only drives sockets.
pub const RUNTIME_THREADS: usize = 2;

/// The default number of pooled read connections.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// The migrations, in order: migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    "CREATE TABLE meta (
         singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
         tree_size bigint NOT NULL,
         checkpoint bytea
     );
     INSERT INTO meta (tree_size) VALUES (0);
     CREATE TABLE entries (idx bigint PRIMARY KEY, leaf bytea NOT NULL, record bytea);
     CREATE TABLE tombstones (idx bigint PRIMARY KEY, erased_by bigint NOT NULL);
     CREATE TABLE holds (id bigint PRIMARY KEY, hold bytea NOT NULL);
     CREATE TABLE tiles (
         level smallint NOT NULL, idx bigint NOT NULL, data bytea NOT NULL,
         PRIMARY KEY (level, idx)
     );
     CREATE TABLE idempotency (key bytea PRIMARY KEY, rec bytea NOT NULL);
     CREATE TABLE leaf_runs (
         run bigint NOT NULL, bucket smallint NOT NULL, body bytea NOT NULL,
         PRIMARY KEY (run, bucket)
     );
     CREATE TABLE postings (key bytea PRIMARY KEY, body bytea NOT NULL);
     CREATE TABLE sink_cursors (name text PRIMARY KEY, next bigint NOT NULL);",
    // Version 2: the newest checkpoint the witnesses cosigned, shared by the instances.
    "CREATE TABLE cosigned (
         singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
         size bigint NOT NULL,
         note bytea NOT NULL
     );",
];

/// An arbitrary key for the advisory lock that serialises migrations between instances.
const MIGRATION_LOCK: i64 = 0x5EA1_7A11;

/// How to reach the database: the `[postgres]` section of the configuration.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PgConfig {
    /// A libpq-style connection string: a URL (`postgresql://user@host/db?sslmode=require`) or
    /// `key=value` pairs (`host=/run/postgresql dbname=log`). `sslmode=verify-ca` and
    /// `verify-full` are accepted and mean the same as `require` here: TLS always verifies the
    /// server's certificate chain and name.
    pub url: String,
    /// Pooled read connections (commits have one more of their own). At least 1.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// The CA certificates (PEM) that sign the server's certificate. Setting it turns TLS on.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
}

fn default_pool_size() -> usize {
    DEFAULT_POOL_SIZE
}

/// `url` with its password replaced by `***`, for printing: in a URL's user information
/// (`postgres://user:secret@host/db`) and in `password=...` pairs (`host=h password=secret`, also
/// as a URL query parameter).
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme) = out.find("://") {
        let rest = scheme + 3;
        let end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    let mut from = 0;
    while let Some(i) = out[from..].find("password=") {
        let start = from + i + "password=".len();
        let quoted = out[start..].starts_with('\'');
        let end = if quoted {
            out[start + 1..]
                .find('\'')
                .map_or(out.len(), |j| start + 1 + j + 1)
        } else {
            out[start..]
                .find([' ', '&'])
                .map_or(out.len(), |j| start + j)
        };
        out.replace_range(start..end, "***");
        from = start + 3;
    }
    out
}

impl PgConfig {
    /// A configuration for `url` with the default pool and no CA file.
    pub fn new(url: impl Into<String>) -> Self {
        PgConfig {
            url: url.into(),
            pool_size: DEFAULT_POOL_SIZE,
            tls_ca_file: None,
        }
    }
}

/// The TLS side of a connection.
#[derive(Clone)]
enum Tls {
    Plain,
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// What every connection is opened with.
struct Connector {
    config: tokio_postgres::Config,
    tls: Tls,
}

fn io(what: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError + '_ {
    move |e| StoreError::Io(format!("postgres {what}: {}", error_text(&e)))
}

/// The error with its causes (tokio-postgres's `Display` omits them: the server's message, the
/// TLS failure).
fn error_text(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Builds the connector from the configuration: parses the connection string and, when TLS is
/// asked for, loads the CA file into a rustls client configuration (ring provider).
fn connector(cfg: &PgConfig) -> StoreResult<Connector> {
    let bad = |detail: String| StoreError::Io(format!("postgres configuration: {detail}"));
    // tokio-postgres knows disable/prefer/require; rustls always verifies, so the libpq modes
    // that ask for verification are `require` here.
    let url = cfg
        .url
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require");
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| bad(format!("connection string: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("sealtrail");
    }
    let wants_tls = config.get_ssl_mode() == tokio_postgres::config::SslMode::Require;
    let tls = match (&cfg.tls_ca_file, wants_tls) {
        (None, false) => Tls::Plain,
        (None, true) => {
            return Err(bad(
                "sslmode=require needs tls_ca_file (the CA certificates, PEM, that sign the \
                 server's certificate)"
                    .into(),
            ));
        }
        (Some(path), _) => {
            // A CA file means TLS, never a silent fallback to plain text.
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            Tls::Rustls(rustls_connector(path).map_err(bad)?)
        }
    };
    Ok(Connector { config, tls })
}

fn rustls_connector(path: &Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The prepared statements every connection holds.
struct Statements {
    entry: Statement,
    entries: Statement,
    record: Statement,
    live_records: Statement,
    erased_records: Statement,
    holds: Statement,
    tile: Statement,
    idempotency: Statement,
    leaf_run: Statement,
    postings_up: Statement,
    postings_down: Statement,
    sink_cursor: Statement,
    set_sink_cursor: Statement,
    cosigned: Statement,
    set_cosigned: Statement,
    catch_up: Statement,
    idempotency_after: Statement,
    sink_cursors: Statement,
    tree_size: Statement,
    checkpoint: Statement,
    lock_size: Statement,
    put_entries: Statement,
    erase: Statement,
    put_tombstones: Statement,
    put_holds: Statement,
    release_holds: Statement,
    put_tiles: Statement,
    put_idempotency: Statement,
    put_leaf_runs: Statement,
    remove_postings: Statement,
    put_postings: Statement,
    set_meta: Statement,
}

impl Statements {
    async fn prepare(c: &Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Statements {
            entry: c.prepare("SELECT leaf FROM entries WHERE idx = $1").await?,
            entries: c
                .prepare(
                    "SELECT idx, leaf FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                )
                .await?,
            record: c
                .prepare(
                    "SELECT (SELECT record FROM entries WHERE idx = $1), \
                            (SELECT erased_by FROM tombstones WHERE idx = $1)",
                )
                .await?,
            live_records: c
                .prepare(
                    "SELECT idx, record FROM entries \
                     WHERE idx >= $1 AND idx < $2 AND record IS NOT NULL ORDER BY idx LIMIT $3",
                )
                .await?,
            erased_records: c
                .prepare(
                    "SELECT idx, erased_by FROM tombstones \
                     WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT $3",
                )
                .await?,
            holds: c.prepare("SELECT id, hold FROM holds ORDER BY id").await?,
            tile: c
                .prepare("SELECT data FROM tiles WHERE level = $1 AND idx = $2")
                .await?,
            idempotency: c
                .prepare("SELECT rec FROM idempotency WHERE key = $1")
                .await?,
            leaf_run: c
                .prepare("SELECT body FROM leaf_runs WHERE run = $1 AND bucket = $2")
                .await?,
            postings_up: c
                .prepare(
                    "SELECT key, body FROM postings WHERE key >= $1 AND key < $2 \
                     ORDER BY key LIMIT $3",
                )
                .await?,
            postings_down: c
                .prepare(
                    "SELECT key, body FROM postings WHERE key >= $1 AND key < $2 \
                     ORDER BY key DESC LIMIT $3",
                )
                .await?,
            sink_cursor: c
                .prepare("SELECT next FROM sink_cursors WHERE name = $1")
                .await?,
            cosigned: c.prepare("SELECT note FROM cosigned").await?,
            // A row only when the tree grew past $1 by at most $2 entries.
            catch_up: c
                .prepare(
                    "SELECT m.checkpoint, \
                            ARRAY(SELECT t.data FROM tiles t WHERE t.level = 0 \
                                  AND t.idx >= $1::bigint / 256 \
                                  AND t.idx <= (m.tree_size - 1) / 256 \
                                  ORDER BY t.idx), \
                            (SELECT e.leaf FROM entries e WHERE e.idx = m.tree_size - 1) \
                     FROM meta m \
                     WHERE m.tree_size > $1::bigint AND m.tree_size - $1::bigint <= $2::bigint",
                )
                .await?,
            idempotency_after: c
                .prepare(
                    "SELECT key, rec FROM idempotency WHERE key > $1 ORDER BY key LIMIT $2",
                )
                .await?,
            sink_cursors: c
                .prepare("SELECT name, next FROM sink_cursors ORDER BY name COLLATE \"C\"")
                .await?,
            // Only ever forward: two instances storing at once keep the larger.
            set_cosigned: c
                .prepare(
                    "INSERT INTO cosigned (size, note) VALUES ($1, $2) \
                     ON CONFLICT (singleton) DO UPDATE SET size = EXCLUDED.size, \
                     note = EXCLUDED.note WHERE cosigned.size < EXCLUDED.size",
                )
                .await?,
            set_sink_cursor: c
                .prepare(
                    "INSERT INTO sink_cursors (name, next) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET next = EXCLUDED.next",
                )
                .await?,
            tree_size: c.prepare("SELECT tree_size FROM meta").await?,
            checkpoint: c.prepare("SELECT checkpoint FROM meta").await?,
            lock_size: c
                .prepare("SELECT tree_size FROM meta FOR UPDATE")
                .await?,
            put_entries: c
                .prepare(
                    "INSERT INTO entries (idx, leaf, record) \
                     SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) \
                     ON CONFLICT (idx) DO UPDATE SET leaf = EXCLUDED.leaf, record = EXCLUDED.record",
                )
                .await?,
            erase: c
                .prepare(
                    "UPDATE entries SET record = NULL \
                     WHERE idx = ANY($1::bigint[]) AND record IS NOT NULL RETURNING idx",
                )
                .await?,
            put_tombstones: c
                .prepare(
                    "INSERT INTO tombstones (idx, erased_by) \
                     SELECT * FROM unnest($1::bigint[], $2::bigint[]) \
                     ON CONFLICT (idx) DO UPDATE SET erased_by = EXCLUDED.erased_by",
                )
                .await?,
            put_holds: c
                .prepare(
                    "INSERT INTO holds (id, hold) SELECT * FROM unnest($1::bigint[], $2::bytea[]) \
                     ON CONFLICT (id) DO UPDATE SET hold = EXCLUDED.hold",
                )
                .await?,
            release_holds: c
                .prepare("DELETE FROM holds WHERE id = ANY($1::bigint[])")
                .await?,
            put_tiles: c
                .prepare(
                    "INSERT INTO tiles (level, idx, data) \
                     SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) \
                     ON CONFLICT (level, idx) DO UPDATE SET data = EXCLUDED.data",
                )
                .await?,
            put_idempotency: c
                .prepare(
                    "INSERT INTO idempotency (key, rec) \
                     SELECT * FROM unnest($1::bytea[], $2::bytea[])",
                )
                .await?,
            put_leaf_runs: c
                .prepare(
                    "INSERT INTO leaf_runs (run, bucket, body) \
                     SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bytea[]) \
                     ON CONFLICT (run, bucket) DO UPDATE SET body = EXCLUDED.body",
                )
                .await?,
            remove_postings: c
                .prepare("DELETE FROM postings WHERE key = ANY($1::bytea[])")
                .await?,
            put_postings: c
                .prepare(
                    "INSERT INTO postings (key, body) \
                     SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                     ON CONFLICT (key) DO UPDATE SET body = EXCLUDED.body",
                )
                .await?,
            set_meta: c
                .prepare("UPDATE meta SET tree_size = $1, checkpoint = $2")
                .await?,
        })
    }
}

/// One open connection: its client, the task driving its socket, its statements.
struct Conn {
    client: Client,
    driver: tokio::task::JoinHandle<()>,
    st: Statements,
}

/// Opens a connection (on the store's runtime), with `synchronous_commit = on` for the session.
async fn open_client(c: &Connector) -> StoreResult<(Client, tokio::task::JoinHandle<()>)> {
    let connect = io("connect");
    let (client, driver) = match &c.tls {
        Tls::Plain => {
            let (client, conn) = c.config.connect(NoTls).await.map_err(connect)?;
            (client, tokio::spawn(drive(conn)))
        }
        Tls::Rustls(tls) => {
            let (client, conn) = c.config.connect(tls.clone()).await.map_err(connect)?;
            (client, tokio::spawn(drive(conn)))
        }
    };
    // A transaction left open by a stopped (not killed) instance would hold the tree lock of
    // every instance: PostgreSQL ends it after a minute.
    client
        .batch_execute(
            "SET synchronous_commit = on; SET idle_in_transaction_session_timeout = '60s'",
        )
        .await
        .map_err(io("session setup"))?;
    Ok((client, driver))
}

async fn drive<F: Future<Output = Result<(), tokio_postgres::Error>>>(conn: F) {
    if let Err(e) = conn.await {
        tracing::warn!(error = %error_text(&e), "postgres connection closed");
    }
}

async fn open_conn(c: &Connector) -> StoreResult<Conn> {
    let (client, driver) = open_client(c).await?;
    let st = Statements::prepare(&client)
        .await
        .map_err(io("prepare statements"))?;
    Ok(Conn { client, driver, st })
}

/// Applies the missing migrations in one transaction, under an advisory lock so that instances
/// starting together do not race. Refuses a schema newer than [`SCHEMA_VERSION`].
async fn migrate(client: &mut Client) -> StoreResult<()> {
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    let txn = client.transaction().await.map_err(io("begin migration"))?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(io("migration lock"))?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS sealtrail_schema (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(io("create sealtrail_schema"))?;
    let row = txn
        .query_one("SELECT max(version) FROM sealtrail_schema", &[])
        .await
        .map_err(io("read schema version"))?;
    let current: Option<i32> = row.try_get(0).map_err(io("read schema version"))?;
    let current = current.unwrap_or(0);
    if current > known {
        // Dropping the transaction rolls it back.
        return Err(StoreError::Corrupt(format!(
            "PostgreSQL schema version {current}; this build knows versions up to {known} \
             (a newer sealtrail migrated this database)"
        )));
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        txn.batch_execute(sql)
            .await
            .map_err(io("apply migration"))?;
        txn.execute(
            "INSERT INTO sealtrail_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(io("record migration"))?;
    }
    txn.commit().await.map_err(io("commit migration"))
}

/// The read connections: `None` is a slot whose connection was lost and is opened again on use.
struct Pool {
    idle: Mutex<Vec<Option<Conn>>>,
    returned: Condvar,
}

/// A u64 stored bit for bit in a `bigint`.
fn db(u: u64) -> i64 {
    u as i64
}

/// The inverse of [`db`].
fn un(i: i64) -> u64 {
    i as u64
}

/// A range bound for an index column: indices of 2^63 and more are out of range reads.
fn bound(u: u64) -> i64 {
    i64::try_from(u).unwrap_or(i64::MAX)
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A log store in a PostgreSQL database. All methods take `&self`; share it behind an `Arc`.
pub struct PgStore {
    /// `None` only while dropping.
    rt: Option<tokio::runtime::Runtime>,
    connector: Arc<Connector>,
    pool: Pool,
    writer: Mutex<CommitConn>,
}

/// The commit connection, and the tree size its open transaction locked
/// ([`LogStore::begin_commit`]); `None` when no transaction is open.
struct CommitConn {
    conn: Option<Conn>,
    locked: Option<u64>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PgStore {
    /// Connects to the database, applies the missing migrations (refusing a newer schema), and
    /// opens the commit connection and `pool_size` read connections.
    pub fn connect(cfg: &PgConfig) -> StoreResult<Self> {
        let connector = Arc::new(connector(cfg)?);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("sealtrail-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io(format!("postgres runtime: {e}")))?;
        let pool_size = cfg.pool_size.max(1);
        let c = connector.clone();
        let opened = run_on(rt.handle(), async move {
            let (mut client, driver) = open_client(&c).await?;
            migrate(&mut client).await?;
            let st = Statements::prepare(&client)
                .await
                .map_err(io("prepare statements"))?;
            let writer = Conn { client, driver, st };
            let mut readers = Vec::with_capacity(pool_size);
            for _ in 0..pool_size {
                readers.push(Some(open_conn(&c).await?));
            }
            Ok::<_, StoreError>((writer, readers))
        })
        .and_then(|r| r);
        let (writer, readers) = match opened {
            Ok(v) => v,
            Err(e) => {
                rt.shutdown_background();
                return Err(e);
            }
        };
        Ok(PgStore {
            rt: Some(rt),
            connector,
            pool: Pool {
                idle: Mutex::new(readers),
                returned: Condvar::new(),
            },
            writer: Mutex::new(CommitConn {
                conn: Some(writer),
                locked: None,
            }),
        })
    }

    fn rt(&self) -> StoreResult<&tokio::runtime::Runtime> {
        self.rt
            .as_ref()
            .ok_or_else(|| StoreError::Io("postgres store is closed".into()))
    }

    /// Runs `body` on a pooled connection (waiting for one if all are busy; reopening it if it
    /// was lost) and returns its answer.
    fn read<T, F>(&self, body: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a Conn) -> BoxFuture<'a, StoreResult<T>> + Send + 'static,
    {
        REMOTE_READS.with(|n| n.set(n.get() + 1));
        let rt = self.rt()?;
        let slot = {
            let mut idle = lock(&self.pool.idle);
            loop {
                if let Some(slot) = idle.pop() {
                    break slot;
                }
                idle = self
                    .pool
                    .returned
                    .wait(idle)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let connector = self.connector.clone();
        let answer = run_on(rt.handle(), async move {
            let conn = match slot {
                Some(conn) if !conn.client.is_closed() => conn,
                _ => match open_conn(&connector).await {
                    Ok(conn) => conn,
                    Err(e) => return (None, Err(e)),
                },
            };
            let r = body(&conn).await;
            (Some(conn), r)
        });
        let (slot, result) = match answer {
            Ok(a) => a,
            Err(e) => (None, Err(e)),
        };
        lock(&self.pool.idle).push(slot);
        self.pool.returned.notify_one();
        result
    }
}

thread_local! {
    /// Reads this thread sent to PostgreSQL (see [`remote_reads`]).
    static REMOTE_READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many reads the calling thread has sent to a PostgreSQL store so far: the read path treats
/// a point read that sent one like one that read from the disk (it waited a round trip), and
/// sends the next ones to the blocking pool for a while.
pub fn remote_reads() -> u64 {
    REMOTE_READS.with(std::cell::Cell::get)
}

/// Runs `fut` on `rt` and waits for it on a std channel (safe on any thread, async or not).
fn run_on<T: Send + 'static>(
    rt: &tokio::runtime::Handle,
    fut: impl Future<Output = T> + Send + 'static,
) -> StoreResult<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| StoreError::Io("postgres: the store's runtime dropped the request".into()))
}

/// Ends a transaction that failed with `e`: rolled back, the connection goes on being used; if
/// even the rollback fails, the connection is dropped (PostgreSQL then aborts the transaction).
/// A refusal stays a refusal only once rolled back.
async fn end_failed<T>(conn: Conn, e: StoreError) -> (Option<Conn>, StoreResult<T>) {
    let rolled_back = conn.client.batch_execute("ROLLBACK").await.is_ok();
    match e {
        StoreError::Io(_) if rolled_back => (Some(conn), Err(e)),
        StoreError::Io(_) => (None, Err(e)),
        e if rolled_back => (Some(conn), Err(e)),
        e => (
            None,
            Err(StoreError::Io(format!("{e}; then the rollback failed"))),
        ),
    }
}

impl PgStore {
    /// Rolls back the transaction [`LogStore::begin_commit`] opened on `slot`.
    fn rollback(&self, slot: &mut CommitConn) {
        slot.locked = None;
        let (Ok(rt), Some(conn)) = (self.rt(), slot.conn.take()) else {
            return;
        };
        slot.conn = run_on(rt.handle(), async move {
            end_failed::<()>(conn, StoreError::Io(String::new()))
                .await
                .0
        })
        .ok()
        .flatten();
    }
}

/// The first key of every sealtrail advisory lock (PostgreSQL's two-key form); the second is
/// [`lead_key`] of the lock's name. `0x5EA1` reads "SEAL".
const LEAD_LOCK_CLASS: i32 = 0x5EA1;

/// The advisory lock key of a leadership `name`: FNV-1a, stable across builds and instances.
fn lead_key(name: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    i32::from_be_bytes(h.to_be_bytes())
}

/// How long [`PgLeader::held`] waits for PostgreSQL to answer before it counts the lock lost.
const LEAD_PING: Duration = Duration::from_secs(5);

/// A session-level advisory lock, held on a connection of its own: released when the session
/// ends (this guard dropped, or the instance dead).
struct PgLeader {
    rt: tokio::runtime::Handle,
    client: Arc<Client>,
    driver: tokio::task::JoinHandle<()>,
}

impl super::Leadership for PgLeader {
    /// Asks PostgreSQL, so that a session it already dropped (a partition, a restart) counts as
    /// lost even before the socket notices.
    fn held(&self) -> bool {
        if self.client.is_closed() {
            return false;
        }
        let client = self.client.clone();
        run_on(&self.rt, async move {
            matches!(
                tokio::time::timeout(LEAD_PING, client.simple_query("SELECT 1")).await,
                Ok(Ok(_))
            )
        })
        .unwrap_or(false)
    }
}

impl Drop for PgLeader {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Drop for PgStore {
    /// Closes the connections (each driver sends PostgreSQL its goodbye), waiting a little for
    /// them, then stops the runtime without blocking (dropping a runtime inside another runtime's
    /// thread would panic).
    fn drop(&mut self) {
        let Some(rt) = self.rt.take() else { return };
        let mut drivers = Vec::new();
        let conns = lock(&self.pool.idle)
            .drain(..)
            .chain(lock(&self.writer).conn.take().map(Some))
            .collect::<Vec<_>>();
        for conn in conns.into_iter().flatten() {
            drivers.push(conn.driver);
            drop(conn.client);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            for d in drivers {
                let _ = tokio::time::timeout(Duration::from_secs(2), d).await;
            }
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_secs(3));
        rt.shutdown_background();
    }
}

fn row_get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
) -> StoreResult<T> {
    row.try_get(i).map_err(io("decode row"))
}

/// A statement parameter, owned so that the query can run on the store's runtime.
type Param = Box<dyn ToSql + Sync + Send>;

/// Which of a connection's prepared statements to run.
type Pick = fn(&Statements) -> &Statement;

impl PgStore {
    /// Runs the prepared statement `pick` chooses with `params` on a pooled connection and maps
    /// each row it returns; `what` names the read in errors.
    fn rows<T: Send + 'static>(
        &self,
        what: &'static str,
        pick: Pick,
        params: Vec<Param>,
        map: fn(&tokio_postgres::Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.read(move |c| {
            Box::pin(async move {
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
                let rows = c.client.query(pick(&c.st), &refs).await.map_err(io(what))?;
                rows.iter().map(map).collect()
            })
        })
    }

    /// [`PgStore::rows`] of a lookup by primary key: its row, if any.
    fn row<T: Send + 'static>(
        &self,
        what: &'static str,
        pick: Pick,
        params: Vec<Param>,
        map: fn(&tokio_postgres::Row) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        Ok(self.rows(what, pick, params, map)?.into_iter().next())
    }

    /// [`PgStore::rows`] of a statement that always returns exactly one row.
    fn one<T: Send + 'static>(
        &self,
        what: &'static str,
        pick: Pick,
        params: Vec<Param>,
        map: fn(&tokio_postgres::Row) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut rows = self.rows(what, pick, params, map)?;
        match rows.len() {
            1 => Ok(rows.remove(0)),
            n => Err(StoreError::Io(format!("{what}: {n} rows, not one"))),
        }
    }
}

fn bytes_at_0(r: &tokio_postgres::Row) -> StoreResult<Vec<u8>> {
    row_get(r, 0)
}

impl EntryStore for PgStore {
    fn entry(&self, index: u64) -> StoreResult<Option<Vec<u8>>> {
        self.row(
            "read entry",
            |s| &s.entry,
            vec![Box::new(db(index))],
            bytes_at_0,
        )
    }

    fn entries(&self, start: u64, end: u64) -> StoreResult<Vec<Vec<u8>>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let rows = self.rows(
            "scan entries",
            |s| &s.entries,
            vec![Box::new(bound(start)), Box::new(bound(end))],
            |r| Ok((un(row_get(r, 0)?), row_get::<Vec<u8>>(r, 1)?)),
        )?;
        let mut out = Vec::with_capacity(rows.len());
        let mut expected = start;
        for (index, leaf) in rows {
            if index != expected {
                break;
            }
            out.push(leaf);
            expected += 1;
        }
        if expected != end {
            return Err(StoreError::Corrupt(format!("entry {expected} missing")));
        }
        Ok(out)
    }
}

impl RecordStore for PgStore {
    fn record(&self, index: u64) -> StoreResult<RecordState> {
        self.one(
            "read record",
            |s| &s.record,
            vec![Box::new(db(index))],
            |row| {
                let record: Option<Vec<u8>> = row_get(row, 0)?;
                let erased_by: Option<i64> = row_get(row, 1)?;
                Ok(match (record, erased_by) {
                    (Some(r), _) => RecordState::Live(r),
                    (None, Some(by)) => RecordState::Erased(un(by)),
                    (None, None) => RecordState::Absent,
                })
            },
        )
    }

    fn live_records(&self, start: u64, end: u64, limit: usize) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        if start >= end || limit == 0 {
            return Ok(Vec::new());
        }
        self.rows(
            "scan records",
            |s| &s.live_records,
            vec![
                Box::new(bound(start)),
                Box::new(bound(end)),
                Box::new(limit_of(limit)),
            ],
            |r| Ok((un(row_get(r, 0)?), row_get(r, 1)?)),
        )
    }

    fn erased_records(&self, start: u64, end: u64, limit: usize) -> StoreResult<Vec<(u64, u64)>> {
        if start >= end || limit == 0 {
            return Ok(Vec::new());
        }
        self.rows(
            "scan tombstones",
            |s| &s.erased_records,
            vec![
                Box::new(bound(start)),
                Box::new(bound(end)),
                Box::new(limit_of(limit)),
            ],
            |r| Ok((un(row_get(r, 0)?), un(row_get(r, 1)?))),
        )
    }

    fn holds(&self) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        self.rows(
            "scan holds",
            |s| &s.holds,
            Vec::new(),
            |r| Ok((un(row_get(r, 0)?), row_get(r, 1)?)),
        )
    }
}

impl TileStore for PgStore {
    fn tile(&self, level: u8, index: u64) -> StoreResult<Option<Vec<u8>>> {
        self.row(
            "read tile",
            |s| &s.tile,
            vec![Box::new(i16::from(level)), Box::new(db(index))],
            bytes_at_0,
        )
    }
}

impl IdempotencyStore for PgStore {
    fn idempotency(&self, key: &[u8; 32]) -> StoreResult<Option<IdempotencyRecord>> {
        self.row(
            "read idempotency",
            |s| &s.idempotency,
            vec![Box::new(key.to_vec())],
            bytes_at_0,
        )?
        .map(|b| IdempotencyRecord::from_bytes(&b))
        .transpose()
    }

    fn idempotency_after(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> StoreResult<Vec<([u8; 32], IdempotencyRecord)>> {
        // Every key is 32 bytes: the empty string sorts before all of them.
        let after = after.map(|a| a.to_vec()).unwrap_or_default();
        self.rows(
            "scan idempotency",
            |s| &s.idempotency_after,
            vec![Box::new(after), Box::new(limit_of(limit))],
            |r| {
                let key: Vec<u8> = row_get(r, 0)?;
                let key = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| {
                    StoreError::Corrupt(format!("idempotency key of {} bytes", key.len()))
                })?;
                Ok((
                    key,
                    IdempotencyRecord::from_bytes(&row_get::<Vec<u8>>(r, 1)?)?,
                ))
            },
        )
    }
}

impl LeafIndex for PgStore {
    fn leaf_run(&self, run: u64, bucket: u8) -> StoreResult<Option<Vec<u8>>> {
        self.row(
            "read leaf run",
            |s| &s.leaf_run,
            vec![Box::new(db(run)), Box::new(i16::from(bucket))],
            bytes_at_0,
        )
    }
}

impl PostingStore for PgStore {
    fn postings(
        &self,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let pick: Pick = if reverse {
            |s| &s.postings_down
        } else {
            |s| &s.postings_up
        };
        self.rows(
            "scan postings",
            pick,
            vec![
                Box::new(from.to_vec()),
                Box::new(to.to_vec()),
                Box::new(limit_of(limit)),
            ],
            |r| Ok((row_get(r, 0)?, row_get(r, 1)?)),
        )
    }
}

impl CursorStore for PgStore {
    fn sink_cursors(&self) -> StoreResult<Vec<(String, u64)>> {
        self.rows(
            "scan cursors",
            |s| &s.sink_cursors,
            Vec::new(),
            |r| Ok((row_get(r, 0)?, un(row_get::<i64>(r, 1)?))),
        )
    }

    fn sink_cursor(&self, name: &str) -> StoreResult<Option<u64>> {
        self.row(
            "read cursor",
            |s| &s.sink_cursor,
            vec![Box::new(name.to_owned())],
            |r| row_get::<i64>(r, 0).map(un),
        )
    }

    /// Its own transaction with `synchronous_commit = off`: no WAL flush of its own; the next
    /// commit's flush covers it (WAL is flushed in order).
    fn set_sink_cursor(&self, name: &str, next: u64) -> StoreResult<()> {
        let name = name.to_owned();
        self.read(move |c| {
            Box::pin(async move {
                // `Client::transaction` needs `&mut Client` and the lent connection is `&Conn`:
                // the transaction is opened and closed by hand (the connection is ours alone
                // meanwhile).
                c.client
                    .batch_execute("BEGIN; SET LOCAL synchronous_commit = off")
                    .await
                    .map_err(io("begin cursor"))?;
                let written = c
                    .client
                    .execute(&c.st.set_sink_cursor, &[&name, &db(next)])
                    .await;
                let end = if written.is_ok() {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                };
                let ended = c.client.batch_execute(end).await;
                written.map_err(io("write cursor"))?;
                ended.map_err(io("commit cursor"))
            })
        })
    }
}

/// The rows of `items` with the last one of each key kept (a later write replaces an earlier one,
/// as in the embedded engines), in first-seen key order.
fn last_per_key<K: Eq + std::hash::Hash + Clone, V>(
    items: impl IntoIterator<Item = (K, V)>,
) -> Vec<(K, V)> {
    let mut at: HashMap<K, usize> = HashMap::new();
    let mut out: Vec<(K, V)> = Vec::new();
    for (k, v) in items {
        match at.get(&k) {
            Some(&i) => {
                if let Some(slot) = out.get_mut(i) {
                    slot.1 = v;
                }
            }
            None => {
                at.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// Opens a transaction on `client` and locks the tree size (`meta` row, `FOR UPDATE`): every
/// instance's commit takes this lock, so the size read stays the stored one until `COMMIT`.
async fn begin_locked(client: &Client, st: &Statements) -> StoreResult<u64> {
    // Both in one round trip (pipelined).
    let (begun, found) = futures_util::join!(
        client.batch_execute("BEGIN"),
        client.query_one(&st.lock_size, &[])
    );
    begun.map_err(io("begin commit"))?;
    let found = found.map_err(io("lock tree size"))?;
    row_get::<i64>(&found, 0).map(un)
}

/// [`begin_locked`], and in the same round trip, once the lock is held, what catching up from
/// `known` needs (see [`super::Locked`]). The catch-up query is a statement of its own after the
/// lock: in READ COMMITTED each statement sees what was committed before it started, so it sees
/// the commit the lock waited for (a subquery of the locking statement would not).
async fn begin_locked_with(
    client: &Client,
    st: &Statements,
    known: u64,
) -> StoreResult<super::Locked> {
    let (known, rows) = (db(known), db(super::CATCH_UP_ROWS));
    let params: [&(dyn ToSql + Sync); 2] = [&known, &rows];
    let (begun, found, caught) = futures_util::join!(
        client.batch_execute("BEGIN"),
        client.query_one(&st.lock_size, &[]),
        client.query_opt(&st.catch_up, &params)
    );
    begun.map_err(io("begin commit"))?;
    let size = un(row_get::<i64>(&found.map_err(io("lock tree size"))?, 0)?);
    let catch_up = match caught.map_err(io("read what to catch up with"))? {
        Some(row) => Some(super::CatchUp {
            checkpoint: row_get(&row, 0)?,
            tiles: row_get(&row, 1)?,
            last_leaf: row_get(&row, 2)?,
        }),
        None => None,
    };
    Ok(super::Locked { size, catch_up })
}

/// A statement to run in a pipeline: its statement, its parameters, what it is (for errors).
type Step<'a> = (&'a Statement, Vec<&'a (dyn ToSql + Sync)>, &'static str);

/// The rest of a commit, inside a transaction that [`begin_locked`] opened and found the tree at
/// `found`: the compare-and-swap, then one statement per table and `COMMIT`, all sent at once
/// (tokio-postgres pipelines requests made together on one connection), so the whole batch costs
/// one round trip to the server however many tables it touches. The server runs them in order; a
/// failing statement aborts the transaction, and PostgreSQL answers the `COMMIT` of an aborted
/// transaction with a rollback, so nothing of it lands. A refusal ([`StoreError::SizeMismatch`],
/// [`StoreError::Conflict`], [`StoreError::Corrupt`]) or a failure leaves the transaction to be
/// ended by the caller.
async fn write_batch(txn: &Client, st: &Statements, batch: &Batch, found: u64) -> StoreResult<()> {
    if found != batch.old_size {
        return Err(StoreError::SizeMismatch {
            expected: batch.old_size,
            found,
        });
    }
    // Erasures first and alone: each record must have been live, which the answer tells.
    if !batch.erased.is_empty() {
        let idx: Vec<i64> = batch.erased.iter().map(|&(i, _)| db(i)).collect();
        let rows = txn
            .query(&st.erase, &[&idx])
            .await
            .map_err(io("erase records"))?;
        let mut live = std::collections::HashSet::with_capacity(rows.len());
        for row in &rows {
            live.insert(un(row_get(row, 0)?));
        }
        // Each erased record must have been live, once: the second erasure of one index in a
        // batch finds it erased already.
        for &(index, _) in &batch.erased {
            if !live.remove(&index) {
                return Err(super::not_live(index));
            }
        }
    }
    // Every parameter first, so that the statements can borrow them all at once.
    let entry_idx: Vec<i64> = (batch.old_size..batch.new_size()).map(db).collect();
    let leaves: Vec<&[u8]> = batch.entries.iter().map(Vec::as_slice).collect();
    // An empty record is no record, as in `join_row`.
    let records: Vec<Option<&[u8]>> = batch
        .records
        .iter()
        .map(|r| r.as_deref().filter(|r| !r.is_empty()))
        .collect();
    let tombstones = last_per_key(batch.tombstones.iter().chain(&batch.erased).copied());
    let (tomb_idx, tomb_by): (Vec<i64>, Vec<i64>) =
        tombstones.iter().map(|&(i, b)| (db(i), db(b))).unzip();
    let placed = last_per_key(batch.holds_placed.iter().map(|(id, h)| (*id, h.as_slice())));
    let (hold_ids, holds): (Vec<i64>, Vec<&[u8]>) =
        placed.iter().map(|&(id, h)| (db(id), h)).unzip();
    let released: Vec<i64> = batch.holds_released.iter().copied().map(db).collect();
    let tiles = last_per_key(
        batch
            .tiles
            .iter()
            .map(|(id, bytes)| ((id.level, id.index), bytes.as_slice())),
    );
    let tile_levels: Vec<i16> = tiles.iter().map(|((l, _), _)| i16::from(*l)).collect();
    let tile_idx: Vec<i64> = tiles.iter().map(|((_, i), _)| db(*i)).collect();
    let tile_data: Vec<&[u8]> = tiles.iter().map(|(_, d)| *d).collect();
    let idem = last_per_key(batch.idempotency.iter().map(|(k, r)| (*k, r.to_bytes())));
    let (idem_keys, idem_recs): (Vec<&[u8]>, Vec<&[u8]>) = idem
        .iter()
        .map(|(k, r)| (k.as_slice(), r.as_slice()))
        .unzip();
    let runs = last_per_key(
        batch
            .leaf_runs
            .iter()
            .map(|(run, bucket, row)| ((*run, *bucket), row.as_slice())),
    );
    let run_ids: Vec<i64> = runs.iter().map(|((r, _), _)| db(*r)).collect();
    let run_buckets: Vec<i16> = runs.iter().map(|((_, b), _)| i16::from(*b)).collect();
    let run_rows: Vec<&[u8]> = runs.iter().map(|(_, row)| *row).collect();
    let removed: Vec<&[u8]> = batch.postings_removed.iter().map(Vec::as_slice).collect();
    let postings = last_per_key(
        batch
            .postings
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice())),
    );
    let (post_keys, post_rows): (Vec<&[u8]>, Vec<&[u8]>) = postings.into_iter().unzip();
    let new_size = db(batch.new_size());

    let mut steps: Vec<Step<'_>> = Vec::new();
    if !entry_idx.is_empty() {
        steps.push((
            &st.put_entries,
            vec![&entry_idx, &leaves, &records],
            "write entries",
        ));
    }
    if !tomb_idx.is_empty() {
        steps.push((
            &st.put_tombstones,
            vec![&tomb_idx, &tomb_by],
            "write tombstones",
        ));
    }
    if !hold_ids.is_empty() {
        steps.push((&st.put_holds, vec![&hold_ids, &holds], "write holds"));
    }
    if !released.is_empty() {
        steps.push((&st.release_holds, vec![&released], "release holds"));
    }
    if !tile_idx.is_empty() {
        steps.push((
            &st.put_tiles,
            vec![&tile_levels, &tile_idx, &tile_data],
            "write tiles",
        ));
    }
    if !idem_keys.is_empty() {
        steps.push((
            &st.put_idempotency,
            vec![&idem_keys, &idem_recs],
            IDEMPOTENCY_STEP,
        ));
    }
    if !run_ids.is_empty() {
        steps.push((
            &st.put_leaf_runs,
            vec![&run_ids, &run_buckets, &run_rows],
            "write leaf runs",
        ));
    }
    if !removed.is_empty() {
        steps.push((&st.remove_postings, vec![&removed], "remove postings"));
    }
    if !post_keys.is_empty() {
        steps.push((
            &st.put_postings,
            vec![&post_keys, &post_rows],
            "write postings",
        ));
    }
    steps.push((
        &st.set_meta,
        vec![&new_size, &batch.checkpoint],
        "write tree size",
    ));
    let writes = futures_util::future::try_join_all(steps.iter().map(|(st, params, what)| {
        let what: &'static str = what;
        async move {
            txn.execute(*st, params).await.map_err(|e| {
                // A key another instance committed first: this batch must not commit a second
                // answer for it.
                if what == IDEMPOTENCY_STEP
                    && e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
                {
                    StoreError::Conflict
                } else {
                    io(what)(e)
                }
            })
        }
    }));
    let commit = async { txn.batch_execute("COMMIT").await.map_err(io("commit")) };
    // Both sent now; the writes' answers come first. If one failed, the COMMIT rolled back.
    let (written, committed) = futures_util::join!(writes, commit);
    written?;
    committed
}

/// The idempotency step's name: its unique violation is a [`StoreError::Conflict`].
const IDEMPOTENCY_STEP: &str = "write idempotency";

impl LogStore for PgStore {
    fn tree_size(&self) -> StoreResult<u64> {
        self.one(
            "read tree size",
            |s| &s.tree_size,
            Vec::new(),
            |r| row_get::<i64>(r, 0).map(un),
        )
    }

    fn checkpoint(&self) -> StoreResult<Option<Vec<u8>>> {
        self.one(
            "read checkpoint",
            |s| &s.checkpoint,
            Vec::new(),
            |r| row_get(r, 0),
        )
    }

    /// One transaction on the commit connection (the one [`LogStore::begin_commit`] opened, or
    /// a new one): lock the `meta` row and compare the tree size (compare-and-swap, against this
    /// and every other instance), write everything with one array statement per table, set the
    /// new size, `COMMIT` (which waits for the WAL flush). A refusal (size mismatch, an
    /// idempotency key already committed, a record not live) rolls back. A failure is
    /// [`StoreError::Io`]: the outcome of a `COMMIT` that failed in flight is unknown.
    fn commit(&self, batch: &Batch) -> StoreResult<()> {
        let mut slot = lock(&self.writer);
        let locked = slot.locked.take();
        if let Err(e) = super::check_batch_shape(batch) {
            if locked.is_some() {
                self.rollback(&mut slot);
            }
            return Err(e);
        }
        let rt = self.rt()?;
        let conn = slot.conn.take();
        let connector = self.connector.clone();
        let batch = batch.clone();
        let answer = run_on(rt.handle(), async move {
            let conn = match conn {
                Some(conn) if !conn.client.is_closed() => conn,
                _ if locked.is_some() => {
                    return (
                        None,
                        Err(StoreError::Io(
                            "the commit connection was lost inside its transaction".into(),
                        )),
                    );
                }
                _ => match open_conn(&connector).await {
                    Ok(conn) => conn,
                    Err(e) => return (None, Err(e)),
                },
            };
            let r = async {
                let found = match locked {
                    Some(found) => found,
                    None => begin_locked(&conn.client, &conn.st).await?,
                };
                write_batch(&conn.client, &conn.st, &batch, found).await
            }
            .await;
            match r {
                Ok(()) => (Some(conn), Ok(())),
                Err(e) => end_failed(conn, e).await,
            }
        });
        let (conn, result) = match answer {
            Ok(a) => a,
            Err(e) => (None, Err(e)),
        };
        slot.conn = conn;
        result
    }

    fn shared(&self) -> bool {
        true
    }

    fn cosigned(&self) -> StoreResult<Option<Vec<u8>>> {
        self.row(
            "read cosigned",
            |s| &s.cosigned,
            Vec::new(),
            |r| row_get(r, 0),
        )
    }

    fn set_cosigned(&self, size: u64, note: &[u8]) -> StoreResult<()> {
        let note = note.to_vec();
        self.read(move |c| {
            Box::pin(async move {
                c.client
                    .execute(&c.st.set_cosigned, &[&db(size), &note])
                    .await
                    .map(drop)
                    .map_err(io("write cosigned"))
            })
        })
    }

    fn begin_commit(&self, known: u64) -> StoreResult<Option<super::Locked>> {
        let mut slot = lock(&self.writer);
        if slot.locked.is_some() {
            self.rollback(&mut slot);
        }
        let rt = self.rt()?;
        let conn = slot.conn.take();
        let connector = self.connector.clone();
        let answer = run_on(rt.handle(), async move {
            let conn = match conn {
                Some(conn) if !conn.client.is_closed() => conn,
                _ => match open_conn(&connector).await {
                    Ok(conn) => conn,
                    Err(e) => return (None, Err(e)),
                },
            };
            match begin_locked_with(&conn.client, &conn.st, known).await {
                Ok(locked) => (Some(conn), Ok(locked)),
                Err(e) => end_failed(conn, e).await,
            }
        });
        let (conn, result) = match answer {
            Ok(a) => a,
            Err(e) => (None, Err(e)),
        };
        slot.conn = conn;
        let locked = result?;
        slot.locked = Some(locked.size);
        Ok(Some(locked))
    }

    fn abort_commit(&self) {
        let mut slot = lock(&self.writer);
        if slot.locked.is_some() {
            self.rollback(&mut slot);
        }
    }

    fn try_lead(&self, name: &str) -> StoreResult<Option<Box<dyn super::Leadership>>> {
        let rt = self.rt()?;
        let connector = self.connector.clone();
        let key = lead_key(name);
        let got = run_on(rt.handle(), async move {
            let (client, driver) = open_client(&connector).await?;
            let row = client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, $2)",
                    &[&LEAD_LOCK_CLASS, &key],
                )
                .await
                .map_err(io("try the leadership lock"))?;
            let got: bool = row_get(&row, 0)?;
            Ok::<_, StoreError>(got.then_some((client, driver)))
        })??;
        Ok(got.map(|(client, driver)| {
            Box::new(PgLeader {
                rt: rt.handle().clone(),
                client: Arc::new(client),
                driver,
            }) as Box<dyn super::Leadership>
        }))
    }

    fn engine(&self) -> &'static str {
        "postgres"
    }

    fn copy_into(&self, dir: &Path) -> StoreResult<u64> {
        Err(StoreError::Io(format!(
            "cannot copy the PostgreSQL store into {}: compaction copies the embedded engines \
             only; PostgreSQL reclaims erased rows with VACUUM",
            dir.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{Expected, batch, leaf};
    use crate::store::pg_cluster;

    fn store(url: &str) -> PgStore {
        PgStore::connect(&PgConfig::new(url)).unwrap()
    }

    #[test]
    fn printed_urls_hide_the_password() {
        for (url, want) in [
            (
                "postgres://log:s3cr%40t@db.example:5432/audit?sslmode=require",
                "postgres://log:***@db.example:5432/audit?sslmode=require",
            ),
            ("postgresql://log@db/audit", "postgresql://log@db/audit"),
            (
                "host=/run/postgresql dbname=log password=hunter2 user=x",
                "host=/run/postgresql dbname=log password=*** user=x",
            ),
            ("host=h password='a b c'", "host=h password=***"),
            (
                "postgres://db/audit?user=u&password=pw&sslmode=require",
                "postgres://db/audit?user=u&password=***&sslmode=require",
            ),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    /// An idempotency key another instance committed first refuses the whole batch, which
    /// writes nothing: the second answer for a key never lands.
    #[test]
    fn a_key_committed_by_another_instance_refuses_the_batch() {
        let url = pg_cluster::shared().new_database();
        let (a, b) = (store(&url), store(&url));
        a.commit(&batch(0, 2)).unwrap();
        let mut late = batch(2, 2);
        // Entry 2's request carries the key entry 0's request used.
        late.idempotency[0].0 = crate::store::conformance::idem_key(0);
        let locked = b.begin_commit(0).unwrap().unwrap();
        assert_eq!(locked.size, 2);
        let caught = locked.catch_up.expect("grew past 0");
        assert_eq!(caught.last_leaf, crate::store::conformance::leaf(1));
        assert_eq!(caught.tiles.len(), 1);
        assert_eq!(Some(caught.checkpoint), a.checkpoint().unwrap());
        match b.commit(&late) {
            Err(StoreError::Conflict) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(b.tree_size().unwrap(), 2);
        assert_eq!(b.entry(2).unwrap(), None);
        assert_eq!(
            b.idempotency(&crate::store::conformance::idem_key(0))
                .unwrap(),
            Some(crate::store::conformance::idem_record(0)),
            "the first answer stays"
        );
        // The connection is usable again, and a batch without the key commits.
        b.commit(&batch(2, 2)).unwrap();
        assert_eq!(a.tree_size().unwrap(), 4);
    }

    /// The read path learns from this counter that a point read waited for PostgreSQL.
    #[test]
    fn reads_are_counted_per_thread() {
        let url = pg_cluster::shared().new_database();
        let s = store(&url);
        let before = remote_reads();
        assert_eq!(s.tile(0, 0).unwrap(), None);
        assert_eq!(remote_reads(), before + 1);
        let other = std::thread::spawn(remote_reads).join().unwrap();
        assert_eq!(other, 0, "another thread's count is its own");
    }

    #[test]
    fn refuses_a_newer_schema_version() {
        let url = pg_cluster::shared().new_database();
        drop(store(&url));
        pg_cluster::shared().execute(
            &url,
            &format!(
                "INSERT INTO sealtrail_schema (version) VALUES ({})",
                SCHEMA_VERSION + 1
            ),
        );
        match PgStore::connect(&PgConfig::new(&url)) {
            Err(StoreError::Corrupt(msg)) => {
                let newer = format!("schema version {}", SCHEMA_VERSION + 1);
                assert!(msg.contains(&newer), "{msg}");
                assert!(msg.contains(&format!("up to {SCHEMA_VERSION}")), "{msg}");
            }
            other => panic!("expected a schema refusal, got {other:?}"),
        }
        // The refusal changed nothing: the known version opens again once the newer row goes.
        pg_cluster::shared().execute(
            &url,
            &format!(
                "DELETE FROM sealtrail_schema WHERE version = {}",
                SCHEMA_VERSION + 1
            ),
        );
        assert_eq!(store(&url).tree_size().unwrap(), 0);
    }

    #[test]
    fn migrations_apply_once_and_in_order() {
        let url = pg_cluster::shared().new_database();
        drop(store(&url));
        drop(store(&url));
        let out = pg_cluster::shared().query(
            &url,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM sealtrail_schema",
        );
        assert_eq!(out.trim(), "1,2");
    }

    #[test]
    fn a_thousand_entry_batch_commits_and_reads_back() {
        let url = pg_cluster::shared().new_database();
        let connecting = std::time::Instant::now();
        let s = store(&url);
        let connected = connecting.elapsed();
        let mut want = Expected::default();
        let started = std::time::Instant::now();
        want.commit(&s, &batch(0, 1000));
        let first = started.elapsed();
        want.commit(&s, &batch(1000, 1000));
        eprintln!(
            "connect (migrations, 5 connections): {connected:?}; 1000-entry batches: {first:?}, \
             then {:?}",
            started.elapsed() - first
        );
        want.check(&s);
        assert_eq!(s.entries(500, 1500).unwrap().len(), 1000);
        drop(s);
        want.check(&store(&url));
    }

    /// The whole server on PostgreSQL: appends through the router, a signed checkpoint that
    /// verifies, and a restart (a new connection, a new sequencer) that recovers the same tree,
    /// which fsck then checks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_appends_restarts_and_passes_fsck_on_postgres() {
        use tower::ServiceExt as _;
        const ORIGIN: &str = "pg.test.example/log";
        let url = pg_cluster::shared().new_database();
        let signer = || sealtrail_spec::note::Ed25519Signer::from_seed(ORIGIN, [9; 32]).unwrap();
        let config = crate::config::Config {
            origin: ORIGIN.to_owned(),
            store: crate::store::Engine::Postgres,
            postgres: Some(PgConfig::new(&url)),
            ..crate::config::Config::default()
        };
        config.validate().unwrap();
        let open = |c: &crate::config::Config| -> Arc<dyn LogStore> {
            Arc::from(
                crate::store::open_configured(c.store, &c.data_dir, c.postgres.as_ref()).unwrap(),
            )
        };
        let call = |app: axum::Router, method: &str, uri: &str, body: &str| {
            let req = axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_owned()))
                .unwrap();
            async move {
                let resp = app.oneshot(req).await.unwrap();
                let status = resp.status();
                let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (status, bytes.to_vec())
            }
        };

        let server = crate::serve::Server::start(config.clone(), open(&config), signer()).unwrap();
        let app = crate::api::router(server.state().clone());
        for i in 0..5 {
            let (status, body) = call(
                app.clone(),
                "POST",
                "/v1/entries",
                &format!("{{\"n\":{i}}}"),
            )
            .await;
            assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        }
        let (status, note) = call(app.clone(), "GET", "/checkpoint", "").await;
        assert_eq!(status, 200);
        let verifier = signer().verifier();
        let cp = sealtrail_spec::checkpoint::open(&note, ORIGIN, &[&verifier]).unwrap();
        assert_eq!(cp.checkpoint().size(), 5);
        let (_, log) = call(app.clone(), "GET", "/v1/log", "").await;
        let log: serde_json::Value = serde_json::from_slice(&log).unwrap();
        assert_eq!(log["storage_engine"], "postgres");
        drop(app);
        server.stop().await;

        let store = open(&config);
        let server = crate::serve::Server::start(config.clone(), store.clone(), signer()).unwrap();
        let app = crate::api::router(server.state().clone());
        let (status, body) = call(
            app.clone(),
            "POST",
            "/v1/entries",
            "{\"after\":\"restart\"}",
        )
        .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["index"], 5,
            "the restarted server continued the same tree"
        );
        drop(app);
        server.stop().await;
        let report = crate::fsck::fsck(store.as_ref(), ORIGIN, &verifier).unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.size, 6);
    }

    /// Two instances on one database: the compare-and-swap on the tree size keeps them apart.
    #[test]
    fn a_stale_second_handle_is_refused_and_writes_nothing() {
        let url = pg_cluster::shared().new_database();
        let a = store(&url);
        let b = store(&url);
        let mut want = Expected::default();
        want.commit(&a, &batch(0, 10));
        // `b` still believes the tree is empty.
        match b.commit(&batch(0, 5)) {
            Err(StoreError::SizeMismatch { expected, found }) => {
                assert_eq!((expected, found), (0, 10));
            }
            other => panic!("expected SizeMismatch, got {other:?}"),
        }
        want.check(&a);
        want.check(&b);
        // Once it catches up, `b` commits and `a` sees it.
        want.commit(&b, &batch(10, 5));
        want.check(&a);
        assert!(matches!(
            a.commit(&batch(10, 1)),
            Err(StoreError::SizeMismatch {
                expected: 10,
                found: 15
            })
        ));
        // Racing writers: exactly one of two commits on the same size wins.
        let results = std::thread::scope(|scope| {
            let ta = scope.spawn(|| a.commit(&batch(15, 7)));
            let tb = scope.spawn(|| b.commit(&batch(15, 7)));
            [ta.join().unwrap(), tb.join().unwrap()]
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "{results:?}");
        assert!(results.iter().any(|r| matches!(
            r,
            Err(StoreError::SizeMismatch {
                expected: 15,
                found: 22
            })
        )));
        let leaves: Vec<_> = (0..22).map(leaf).collect();
        for s in [&a, &b] {
            assert_eq!(s.tree_size().unwrap(), 22);
            assert_eq!(s.entries(0, 22).unwrap(), leaves);
            assert_eq!(s.checkpoint().unwrap(), Some(batch(15, 7).checkpoint));
        }
    }

    #[test]
    fn works_from_inside_an_async_runtime_and_copy_into_is_refused() {
        let url = pg_cluster::shared().new_database();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = store(&url);
            s.commit(&batch(0, 3)).unwrap();
            assert_eq!(s.tree_size().unwrap(), 3);
            let tmp = tempfile::tempdir().unwrap();
            match s.copy_into(tmp.path()) {
                Err(StoreError::Io(msg)) => assert!(msg.contains("VACUUM"), "{msg}"),
                other => panic!("expected a refusal, got {other:?}"),
            }
            // Dropped inside the async context: must not panic.
            drop(s);
        });
    }

    /// Over TCP with TLS: the server's certificate verifies against the CA file; against
    /// another CA the connection is refused.
    #[test]
    fn connects_over_tls_and_verifies_the_server() {
        let (cluster, tls) = pg_cluster::Cluster::start_tls();
        let socket_url = cluster.new_database();
        let db = socket_url.rsplit("dbname=").next().unwrap().to_owned();
        let url = format!(
            "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname={db} sslmode=verify-full",
            tls.port
        );
        let cfg = PgConfig {
            tls_ca_file: Some(tls.ca_file.clone()),
            ..PgConfig::new(&url)
        };
        let s = PgStore::connect(&cfg).unwrap();
        s.commit(&batch(0, 5)).unwrap();
        assert_eq!(s.tree_size().unwrap(), 5);
        // The sessions are encrypted.
        let ssl = cluster.query(
            &socket_url,
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE s.ssl AND a.application_name = 'sealtrail'",
        );
        assert_eq!(ssl.trim(), (DEFAULT_POOL_SIZE + 1).to_string());
        drop(s);
        let wrong = PgConfig {
            tls_ca_file: Some(tls.other_ca_file.clone()),
            ..PgConfig::new(&url)
        };
        match PgStore::connect(&wrong) {
            Err(StoreError::Io(msg)) => assert!(msg.contains("UnknownIssuer"), "{msg}"),
            other => panic!("expected a refused certificate, got {other:?}"),
        }
    }

    #[test]
    fn tls_needs_a_ca_file_and_reads_it() {
        let bad = PgStore::connect(&PgConfig::new(
            "postgresql://u@localhost/db?sslmode=verify-full",
        ));
        match bad {
            Err(StoreError::Io(msg)) => assert!(msg.contains("tls_ca_file"), "{msg}"),
            other => panic!("expected a configuration error, got {other:?}"),
        }
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let cfg = PgConfig {
            tls_ca_file: Some(empty),
            ..PgConfig::new("host=localhost dbname=x")
        };
        match PgStore::connect(&cfg) {
            Err(StoreError::Io(msg)) => assert!(msg.contains("no certificate"), "{msg}"),
            other => panic!("expected a CA error, got {other:?}"),
        }
    }
}
