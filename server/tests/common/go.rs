//! The Go client built on `golang.org/x/mod/sumdb/tlog` and `sumdb/note`
//! (`tests/interop/sumdbclient`): an independent implementation that verifies a log from its
//! static read path, and the consistency of older checkpoints with the current one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bound on one run of the Go client.
const GUARD: Duration = Duration::from_secs(60);
/// Bound on building the Go client (a cold build compiles Go's standard library).
const BUILD_GUARD: Duration = Duration::from_secs(600);
/// Where Debian's `golang-*-dev` packages put Go sources for GOPATH builds.
const DEBIAN_GOPATH: &str = "/usr/share/gocode";
const INSTALL_HINT: &str = "install Go and x/mod: `apt-get install -y golang-go golang-golang-x-mod-dev` (scripts/test does this)";

pub struct GoClient {
    _dir: tempfile::TempDir,
    bin: PathBuf,
}

pub struct GoRun {
    pub code: Option<i32>,
    pub stderr: String,
    pub summary: serde_json::Value,
}

/// Builds `tests/interop/sumdbclient` into a temporary directory, or fails with the reason.
pub async fn build_go_client() -> GoClient {
    let gopath = std::env::var_os("SEALTRAIL_GOPATH")
        .map_or_else(|| PathBuf::from(DEBIAN_GOPATH), PathBuf::from);
    match tokio::process::Command::new("go")
        .arg("version")
        .output()
        .await
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`go version` failed ({}): {}; {INSTALL_HINT}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("Go is not installed (`go`: {e}); {INSTALL_HINT}"),
    }
    for pkg in ["sumdb/note", "sumdb/tlog"] {
        let dir = gopath.join("src/golang.org/x/mod").join(pkg);
        assert!(
            dir.join(format!("{}.go", pkg.rsplit('/').next().unwrap()))
                .is_file(),
            "golang.org/x/mod/{pkg} is not in {}; {INSTALL_HINT}",
            gopath.display()
        );
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/sumdbclient");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("sumdbclient");
    let mut cmd = tokio::process::Command::new("go");
    cmd.args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", &gopath)
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
        .kill_on_drop(true);
    // Go needs a build cache; use the user's if there is one, else a throwaway one.
    if ["GOCACHE", "HOME", "XDG_CACHE_HOME"]
        .iter()
        .all(|v| std::env::var_os(v).is_none())
    {
        cmd.env("GOCACHE", dir.path().join("gocache"));
    }
    let started = Instant::now();
    let out = tokio::time::timeout(BUILD_GUARD, cmd.output())
        .await
        .expect("`go build` finished within the guard timeout")
        .expect("running `go build`");
    assert!(
        out.status.success(),
        "`go build` of the sumdb client failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("built the Go client in {:?}", started.elapsed());
    GoClient { _dir: dir, bin }
}

impl GoClient {
    /// Runs the client against `base` with the verifier key and older checkpoint files.
    pub async fn run(&self, base: &str, vkey: &str, olds: &[PathBuf]) -> GoRun {
        let mut args = vec!["-url".into(), base.into(), "-vkey".into(), vkey.into()];
        args.extend(olds.iter().map(|p| p.clone().into_os_string()));
        let what = format!("{base} with {} older checkpoints", olds.len());
        self.exec(&args, &what).await
    }

    /// Runs the client's `-evidence` mode on an extracted evidence package.
    pub async fn run_evidence(&self, dir: &Path, vkey: &str) -> GoRun {
        let args = vec![
            "-evidence".into(),
            dir.as_os_str().to_owned(),
            "-vkey".into(),
            vkey.into(),
        ];
        self.exec(&args, &format!("evidence package {}", dir.display()))
            .await
    }

    async fn exec(&self, args: &[std::ffi::OsString], what: &str) -> GoRun {
        let started = Instant::now();
        let out = tokio::time::timeout(
            GUARD,
            tokio::process::Command::new(&self.bin)
                .args(args)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the Go client finished within the guard timeout")
        .expect("running the Go client");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let summary = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("Go client printed no JSON summary ({e}):\n{stdout}\n{stderr}")
        });
        eprintln!(
            "Go client against {what}: {} in {:?}",
            out.status,
            started.elapsed()
        );
        GoRun {
            code: out.status.code(),
            stderr,
            summary,
        }
    }
}

impl GoRun {
    pub fn assert_ok(&self) -> &serde_json::Value {
        assert_eq!(
            self.code,
            Some(0),
            "the Go client rejected the log:\n{}\n{:#}",
            self.stderr,
            self.summary
        );
        assert_eq!(self.summary["ok"], true);
        &self.summary
    }

    /// Asserts a verification failure (exit 1, not a crash or a usage error) at `stage`, with
    /// `detail` in the message.
    pub fn assert_failed(&self, stage: &str, detail: &str) {
        assert_eq!(
            self.code,
            Some(1),
            "the Go client should have failed at {stage}:\n{}\n{:#}",
            self.stderr,
            self.summary
        );
        assert_eq!(self.summary["ok"], false, "{:#}", self.summary);
        assert_eq!(self.summary["stage"], stage, "{:#}", self.summary);
        let err = self.summary["error"].as_str().unwrap();
        assert!(err.contains(detail), "expected {detail:?} in {err:?}");
        assert!(
            self.stderr.contains(&format!("FAILED at {stage}: ")),
            "{}",
            self.stderr
        );
    }
}
