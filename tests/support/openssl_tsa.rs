//! A real RFC 3161 Time-Stamp Authority for tests: OpenSSL's `openssl ts -reply`, with a
//! throw-away CA and TSA certificate made by `openssl req` and `openssl x509`, and a tiny
//! HTTP/1.1 wrapper on 127.0.0.1 that answers each POSTed `TimeStampReq` through it.
//!
//! Shared by `witness/tests/anchors.rs` and `verifier/tests/timestamp.rs` (included with
//! `#[path]`). Needs the `openssl` command (Debian's `openssl`, installed by scripts/test).
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// The TSA's key.
#[derive(Debug, Clone, Copy)]
pub enum TsaKey {
    /// RSA 2048, PKCS#1 v1.5 signatures.
    Rsa,
    /// ECDSA on P-384.
    EcP384,
}

/// A CA, a TSA certificate it issued, and an `openssl ts` configuration using them.
#[derive(Debug)]
pub struct Tsa {
    dir: tempfile::TempDir,
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The TSA certificate (PEM).
    pub cert: PathBuf,
    config: PathBuf,
    lock: Mutex<()>,
}

/// The TSA's default policy.
pub const POLICY: &str = "1.3.6.1.4.1.99999.3161.1";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running openssl (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Tsa {
    /// A TSA with this key and `extendedKeyUsage` value (`critical,timeStamping` is what RFC
    /// 3161 requires; `None` leaves the extension out), valid from now for a year.
    pub fn new(key: TsaKey, eku: Option<&str>) -> Tsa {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-subj",
                "/O=Sealtrail Test/CN=Test Root CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        let newkey: &[&str] = match key {
            TsaKey::Rsa => &["-newkey", "rsa:2048"],
            TsaKey::EcP384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        };
        let mut args = vec!["req"];
        args.extend(newkey);
        args.extend([
            "-nodes",
            "-keyout",
            "tsa.key",
            "-out",
            "tsa.csr",
            "-subj",
            "/O=Sealtrail Test/CN=Test TSA",
        ]);
        openssl(d, &args);
        let mut ext = String::from(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\n",
        );
        if let Some(e) = eku {
            ext.push_str(&format!("extendedKeyUsage={e}\n"));
        }
        std::fs::write(d.join("tsa.ext"), ext).unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "tsa.pem",
                "-days",
                "365",
                "-extfile",
                "tsa.ext",
            ],
        );
        let digest = match key {
            TsaKey::Rsa => "sha256",
            TsaKey::EcP384 => "sha384",
        };
        std::fs::write(d.join("serial"), "01\n").unwrap();
        std::fs::write(
            d.join("tsa.cnf"),
            format!(
                "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\nserial = ./serial\n\
                 crypto_device = builtin\nsigner_cert = ./tsa.pem\ncerts = ./ca.pem\n\
                 signer_key = ./tsa.key\nsigner_digest = {digest}\ndefault_policy = {POLICY}\n\
                 digests = sha256, sha384, sha512\naccuracy = secs:1, millisecs:500\n\
                 ordering = yes\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n"
            ),
        )
        .unwrap();
        Tsa {
            ca: d.join("ca.pem"),
            cert: d.join("tsa.pem"),
            config: d.join("tsa.cnf"),
            dir,
            lock: Mutex::new(()),
        }
    }

    /// The TimeStampResp OpenSSL gives for a DER TimeStampReq (granted, or a rejection).
    pub fn reply(&self, query: &[u8]) -> Vec<u8> {
        let _one_at_a_time = self.lock.lock().unwrap();
        let d = self.dir.path();
        std::fs::write(d.join("q.tsq"), query).unwrap();
        let _ = std::fs::remove_file(d.join("r.tsr"));
        // A rejection is still a response (OpenSSL exits 0 and writes it); a request it cannot
        // parse leaves no file, answered below with an empty body.
        let _ = Command::new("openssl")
            .current_dir(d)
            .args(["ts", "-reply", "-config"])
            .arg(&self.config)
            .args(["-queryfile", "q.tsq", "-out", "r.tsr"])
            .output();
        std::fs::read(d.join("r.tsr")).unwrap_or_default()
    }

    /// A token (`-token_out`) over `data`, requested by OpenSSL itself with `digest`; with the
    /// TSA's certificate in it if `with_cert`.
    pub fn stamp(&self, data: &Path, digest: &str, token_out: &Path, with_cert: bool) {
        let d = self.dir.path();
        let _one_at_a_time = self.lock.lock().unwrap();
        let q = d.join("own.tsq");
        let digest = format!("-{digest}");
        let mut args = vec!["ts", "-query", "-data", data.to_str().unwrap(), &digest];
        if with_cert {
            args.push("-cert");
        }
        args.extend(["-out", q.to_str().unwrap()]);
        openssl(d, &args);
        openssl(
            d,
            &[
                "ts",
                "-reply",
                "-config",
                self.config.to_str().unwrap(),
                "-queryfile",
                q.to_str().unwrap(),
                "-token_out",
                "-out",
                token_out.to_str().unwrap(),
            ],
        );
    }

    /// `openssl ts -verify` of a bare token over `data` against the CA: OpenSSL's own verdict.
    pub fn openssl_verify(&self, data: &Path, token: &Path) -> Result<(), String> {
        let out = Command::new("openssl")
            .args(["ts", "-verify", "-token_in", "-in"])
            .arg(token)
            .arg("-data")
            .arg(data)
            .arg("-CAfile")
            .arg(&self.ca)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Serves the TSA over HTTP on 127.0.0.1; returns its URL. Each request's body goes to
    /// [`Tsa::reply`]; the thread lives as long as the test process.
    pub fn serve(self: &Arc<Self>) -> String {
        let tsa = Arc::clone(self);
        serve_with(move |query| tsa.reply(query))
    }
}

/// Serves `answer(request body)` over HTTP/1.1 on 127.0.0.1 to each POST with the
/// `application/timestamp-query` type (415 otherwise); returns the URL. The thread lives as long
/// as the test process.
pub fn serve_with(answer: impl Fn(&[u8]) -> Vec<u8> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/tsa", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0usize;
            let mut line = String::new();
            let mut ok_type = false;
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if l == "content-type: application/timestamp-query" {
                    ok_type = true;
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let (status, reply) = if ok_type {
                ("200 OK", answer(&body))
            } else {
                ("415 Unsupported Media Type", Vec::new())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/timestamp-reply\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                reply.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&reply);
        }
    });
    url
}
