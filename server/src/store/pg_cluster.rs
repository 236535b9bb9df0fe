//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, the server
//! listening on a Unix socket in that directory only (no TCP), `fsync` on.
//!
//! One cluster per test process ([`shared`]); each test takes its own database
//! ([`Cluster::new_database`]). The binaries come from Debian's `postgresql` package
//! (`/usr/lib/postgresql/<version>/bin`, or `SEALTRAIL_PG_BIN`); `scripts/test` installs it.
//! PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` user the
//! package creates (`runuser`), in a directory chowned to it; as the root of a user namespace
//! (`scripts/test` run by a normal user), where `postgres` is not mapped, they run in a nested
//! namespace as a non-zero user (`unshare --user --map-user=1`).
//!
//! Stopping: a shared cluster lives in a static, which is never dropped, so a watchdog shell
//! started with the cluster waits for its standard input to close (it does when this process
//! exits, however it exits), then stops the server (`pg_ctl stop -m immediate`) and removes the
//! directory. Dropping a [`Cluster`] closes that input and waits for the watchdog.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

/// A running cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// The directory holding `data/`, the socket and the log.
    dir: PathBuf,
    bin: PathBuf,
    as_user: AsUser,
    watchdog: Mutex<Option<Child>>,
    next_db: AtomicU64,
    /// The port (also the socket's name); 5432 unless the cluster listens on TCP too.
    port: u16,
    /// The server's options, to start it again after [`Cluster::stop_server`].
    options: Mutex<String>,
}

/// What [`Cluster::start_tls`] adds: TCP on 127.0.0.1 with TLS.
#[derive(Debug)]
pub(crate) struct TlsListener {
    /// The TCP port on 127.0.0.1.
    pub(crate) port: u16,
    /// The CA (PEM) that signed the server's certificate for `localhost`.
    pub(crate) ca_file: PathBuf,
    /// Another CA, which signed nothing the server shows.
    pub(crate) other_ca_file: PathBuf,
}

/// The process's cluster, started on first use.
pub(crate) fn shared() -> &'static Cluster {
    static CLUSTER: LazyLock<Cluster> = LazyLock::new(Cluster::start);
    &CLUSTER
}

/// The directory of the PostgreSQL server binaries, or a panic naming the package to install.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SEALTRAIL_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "the PostgreSQL tests need the server binaries (initdb, pg_ctl, postgres, psql) under \
             /usr/lib/postgresql/<version>/bin: install the Debian package `postgresql` \
             (`apt-get install -y --no-install-recommends postgresql`; scripts/test does it), \
             or point SEALTRAIL_PG_BIN at another bin directory"
        ),
    }
}

/// Who runs the PostgreSQL binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AsUser {
    /// This process's user (not root).
    Me,
    /// `postgres`, through runuser (this process is root).
    Postgres,
    /// User 1 of a nested user namespace (this process is root of a user namespace).
    Nested,
}

fn as_user() -> AsUser {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .expect("running id -u");
    if String::from_utf8_lossy(&out.stdout).trim() != "0" {
        return AsUser::Me;
    }
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    if map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"] {
        AsUser::Postgres
    } else {
        AsUser::Nested
    }
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("running id");
        assert!(
            out.status.success(),
            "running the PostgreSQL tests as root needs the `postgres` user, which Debian's \
             `postgresql` package creates"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    (id("-u"), id("-g"))
}

impl Cluster {
    /// initdb, start, and the watchdog. Panics with the reason (and the server log) on failure.
    pub(crate) fn start() -> Cluster {
        Self::start_inner(false).0
    }

    /// A cluster of its own that also listens on 127.0.0.1 (a free port) with TLS on, with a
    /// server certificate for `localhost` signed by a fresh CA.
    pub(crate) fn start_tls() -> (Cluster, TlsListener) {
        let (cluster, tls) = Self::start_inner(true);
        (cluster, tls.expect("TLS listener"))
    }

    fn start_inner(tls: bool) -> (Cluster, Option<TlsListener>) {
        let port = if tls {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("its address").port()
        } else {
            5432
        };
        let bin = bin_dir();
        let as_user = as_user();
        let dir = tempfile::Builder::new()
            .prefix("sealtrail-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let cluster = Cluster {
            dir,
            bin,
            as_user,
            watchdog: Mutex::new(None),
            next_db: AtomicU64::new(0),
            port,
            options: Mutex::new(String::new()),
        };
        let data = cluster.dir.join("data");
        // The watchdog first: a start that fails below unwinds through `Drop`, which cleans up.
        *cluster.watchdog.lock().expect("watchdog lock") = Some(cluster.spawn_watchdog(&data));
        if as_user == AsUser::Postgres {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(&cluster.dir, Some(uid), Some(gid))
                .expect("chown the cluster dir");
        }
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                // The cluster is thrown away; the server itself runs with fsync on.
                "--no-sync".as_ref(),
            ],
        );
        let mut options = format!(
            "-k {} -p {port} -c fsync=on -c max_connections=200",
            cluster.dir.display()
        );
        let listener = if tls {
            let (listener, extra) = cluster.write_tls_files(port);
            options.push_str(&extra);
            Some(listener)
        } else {
            options.push_str(" -c listen_addresses=''");
            None
        };
        *cluster.options.lock().expect("options lock") = options;
        cluster.start_server();
        (cluster, listener)
    }

    /// Starts the server (`pg_ctl start`, waiting until it accepts connections).
    pub(crate) fn start_server(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let options = self.options.lock().expect("options lock").clone();
        let status = self
            .command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(&options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("running pg_ctl");
        assert!(
            status.success(),
            "pg_ctl start failed ({status}); server log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server as an outage would (`pg_ctl stop -m immediate`: every session is cut,
    /// no checkpoint; the restart replays the WAL), and waits until it is down. Used by the
    /// integration tests, which include this file (`server/tests/postgres_ha.rs`).
    #[allow(dead_code)]
    pub(crate) fn stop_server(&self) {
        self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-w".as_ref(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-D".as_ref(),
                self.dir.join("data").as_os_str(),
            ],
        );
    }

    /// Writes a CA, a server certificate and key for `localhost` (owned by the server's user),
    /// and another CA; returns them and the server options that use them.
    fn write_tls_files(&self, port: u16) -> (TlsListener, String) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        use std::os::unix::fs::OpenOptionsExt as _;
        let ca = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name
                .push(rcgen::DnType::CommonName, name.to_owned());
            CertifiedIssuer::self_signed(p, KeyPair::generate().expect("CA key")).expect("CA")
        };
        let issuer = ca("sealtrail test CA");
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("server params")
            .signed_by(&key, &issuer)
            .expect("server certificate");
        let write = |name: &str, text: &str, mode: u32| {
            let path = self.dir.join(name);
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            if self.as_user == AsUser::Postgres {
                let (uid, gid) = postgres_ids();
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown");
            }
            path
        };
        let crt = write("server.crt", &cert.pem(), 0o644);
        let key = write("server.key", &key.serialize_pem(), 0o600);
        let listener = TlsListener {
            port,
            ca_file: write("ca.pem", &issuer.pem(), 0o644),
            other_ca_file: write("other-ca.pem", &ca("another CA").pem(), 0o644),
        };
        let options = format!(
            " -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            crt.display(),
            key.display()
        );
        (listener, options)
    }

    /// `name` from the bin directory, run as [`AsUser`] says.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        match self.as_user {
            AsUser::Me => Command::new(program),
            AsUser::Postgres => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            }
            AsUser::Nested => {
                let mut c = Command::new("unshare");
                c.args(["--user", "--map-user=1", "--map-group=1", "--"])
                    .arg(program);
                c
            }
        }
    }

    fn run(&self, name: &str, args: &[&std::ffi::OsStr]) {
        let out = self
            .command(name)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {name}: {e}"));
        assert!(
            out.status.success(),
            "{name} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn spawn_watchdog(&self, data: &Path) -> Child {
        let mut stop = self.command("pg_ctl");
        stop.args(["stop", "-m", "immediate", "-D"]).arg(data);
        let stop = std::iter::once(stop.get_program())
            .chain(stop.get_args())
            .map(|a| a.to_str().expect("a UTF-8 path"))
            .collect::<Vec<_>>();
        Command::new("sh")
            .arg("-c")
            .arg(r#"cat >/dev/null; dir="$1"; shift; "$@"; rm -rf "$dir""#)
            .arg("sh")
            .arg(&self.dir)
            .args(stop)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the cluster's watchdog")
    }

    /// A connection string for database `db` over the cluster's socket.
    pub(crate) fn url(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db}",
            self.dir.display(),
            self.port
        )
    }

    /// Creates a new, empty database and returns its connection string.
    pub(crate) fn new_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::SeqCst);
        let name = format!("t_{n}");
        self.execute(&self.url("postgres"), &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs `sql` over its own connection (psql), panicking on any error.
    pub(crate) fn execute(&self, url: &str, sql: &str) {
        self.query(url, sql);
    }

    /// Runs `sql` over its own connection (psql) and returns its unaligned output.
    pub(crate) fn query(&self, url: &str, sql: &str) -> String {
        let mut child = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running psql");
        child
            .stdin
            .take()
            .expect("psql stdin")
            .write_all(sql.as_bytes())
            .expect("writing to psql");
        let out = child.wait_with_output().expect("psql");
        assert!(
            out.status.success(),
            "psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    /// Stops the server and removes its directory (through the watchdog).
    fn drop(&mut self) {
        let watchdog = self
            .watchdog
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut w) = watchdog {
            drop(w.stdin.take());
            let _ = w.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster of its own (not the shared one) starts, serves, and is gone after the drop.
    #[test]
    fn starts_serves_and_stops() {
        let cluster = Cluster::start();
        let url = cluster.new_database();
        assert_eq!(cluster.query(&url, "SELECT 40 + 2").trim(), "42");
        assert_eq!(cluster.query(&url, "SHOW fsync").trim(), "on");
        let dir = cluster.dir.clone();
        drop(cluster);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
