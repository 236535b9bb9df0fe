//! Syslog sink: RFC 5424 messages over UDP, TCP or TLS, with octet-counting framing (RFC 6587
//! section 3.4.1) on the stream transports.
//!
//! Message: `<PRI>1 TIMESTAMP HOSTNAME sealtrail PROCID MSGID [sealtrail@32473 origin=".."
//! index=".." leaf_hash=".." checkpoint_size=".."] JSON`, where MSGID is `entry` or `security`, the
//! timestamp is the entry's sequencing time in UTC, and the JSON is the event document
//! (`super::entry_event`). 32473 is the enterprise number RFC 5612 reserves for documentation;
//! the SD-ID is fixed so SIEM parsers can rely on it.
//!
//! Acknowledgement. Syslog has no application-level acknowledgement: a stream send counts as
//! acknowledged once every frame is written and flushed on a connection the receiver has not
//! closed. Frames the receiver's kernel accepted but the receiver never read (it was stopped) are
//! lost to this sender, so after a broken connection, and once at start-up, the sink re-sends the
//! last `replay_entries` entries before its cursor (default 10000): duplicates carry the same
//! origin and index. UDP is best-effort by nature; a message larger than a datagram is sent
//! without its payload (`payload_omitted: true`).

use std::sync::Arc;
use std::time::Duration;

use sealtrail_spec::rfc3339_ms;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

use super::{ForwardEvent, OpenError, SinkConfig, SinkError, Transport};

/// The structured-data ID of every message.
pub const SD_ID: &str = "sealtrail@32473";
/// Default facility: 13, "log audit" (RFC 5424 table 1).
pub const DEFAULT_FACILITY: u8 = 13;
/// Severity of every message: 6, informational.
const SEVERITY: u8 = 6;
/// Default entries re-sent after a broken stream connection.
pub const DEFAULT_REPLAY: u64 = 10_000;
/// Largest UDP message sent whole (IPv4 datagram payload limit, rounded down).
const MAX_DATAGRAM: usize = 65_000;

enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A syslog destination and its connection.
pub struct SyslogSink {
    transport: Transport,
    address: String,
    tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
    hostname: String,
    facility: u8,
    replay: u64,
    pending_replay: u64,
    conn: Option<Conn>,
    udp: Option<UdpSocket>,
    timeout: Duration,
}

impl std::fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSink")
            .field("transport", &self.transport)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The machine's host name for the HOSTNAME field, or `-` (NILVALUE) if unknown.
fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

/// A header field: printable US-ASCII without spaces, at most `max` characters, or `-`.
fn header_field(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

fn tls_connector(cfg: &SinkConfig) -> Result<TlsConnector, OpenError> {
    let ca_file = |detail: String| OpenError::CaFile {
        sink: cfg.name.clone(),
        detail,
    };
    let path = cfg
        .ca_file
        .as_ref()
        .ok_or_else(|| ca_file("TLS needs ca_file".into()))?;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ca_file(format!("reading {}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| ca_file(format!("{}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| ca_file(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(ca_file(format!("{} holds no certificate", path.display())));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OpenError::Tls {
            sink: cfg.name.clone(),
            detail: format!("TLS: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

impl SyslogSink {
    /// Builds the sink (reads the CA file); connects on the first send.
    pub fn new(cfg: &SinkConfig) -> Result<Self, OpenError> {
        let address = cfg.address.clone().unwrap_or_default();
        let transport = cfg.transport.unwrap_or(Transport::Tcp);
        let tls = if transport == Transport::Tls {
            let name = cfg
                .server_name
                .clone()
                .unwrap_or_else(|| host_of(&address).to_owned());
            let server_name =
                rustls::pki_types::ServerName::try_from(name.clone()).map_err(|e| {
                    OpenError::Tls {
                        sink: cfg.name.clone(),
                        detail: format!("server name {name:?}: {e}"),
                    }
                })?;
            Some((tls_connector(cfg)?, server_name))
        } else {
            None
        };
        let replay = match transport {
            Transport::Udp => 0,
            Transport::Tcp | Transport::Tls => cfg.replay_entries.unwrap_or(DEFAULT_REPLAY),
        };
        Ok(SyslogSink {
            transport,
            address,
            tls,
            hostname: header_field(&cfg.hostname.clone().unwrap_or_else(system_hostname), 255),
            facility: cfg.facility.unwrap_or(DEFAULT_FACILITY),
            replay,
            // A restart may follow frames the receiver never read: replay once at start.
            pending_replay: replay,
            conn: None,
            udp: None,
            timeout: cfg.timeout(),
        })
    }

    /// Entries to re-send before the cursor (after start-up or a broken connection).
    pub fn take_replay(&mut self) -> u64 {
        std::mem::take(&mut self.pending_replay)
    }

    /// Sends every event; see the module doc for what acknowledged means.
    pub async fn send(&mut self, events: &[ForwardEvent]) -> Result<(), SinkError> {
        if self.transport == Transport::Udp {
            return self.send_udp(events).await;
        }
        let mut buf = Vec::new();
        for e in events {
            let msg = format_message(self.facility, &self.hostname, e);
            buf.extend_from_slice(msg.len().to_string().as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(&msg);
        }
        let result = self.write_stream(&buf).await;
        if result.is_err() {
            self.conn = None;
            self.pending_replay = self.replay;
        }
        result
    }

    async fn connect(&self) -> Result<Conn, SinkError> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            SinkError(format!("syslog {what} {}: {e}", self.address))
        };
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(&self.address))
            .await
            .map_err(|e| err("connecting to", &e))?
            .map_err(|e| err("connecting to", &e))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Conn::Tcp(tcp)),
            Some((connector, name)) => {
                let tls = tokio::time::timeout(self.timeout, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|e| err("TLS handshake with", &e))?
                    .map_err(|e| err("TLS handshake with", &e))?;
                Ok(Conn::Tls(Box::new(tls)))
            }
        }
    }

    async fn write_stream(&mut self, buf: &[u8]) -> Result<(), SinkError> {
        if let Some(conn) = self.conn.as_mut() {
            let alive = match conn {
                Conn::Tcp(s) => still_open(s).await,
                Conn::Tls(s) => still_open(s.as_mut()).await,
            };
            if let Err(e) = alive {
                return Err(SinkError(format!(
                    "syslog connection to {}: {e}",
                    self.address
                )));
            }
        }
        let conn = match self.conn.take() {
            Some(c) => c,
            None => self.connect().await?,
        };
        let conn = self.conn.insert(conn);
        let written = match conn {
            Conn::Tcp(s) => write_flush(s, buf).await,
            Conn::Tls(s) => write_flush(s.as_mut(), buf).await,
        };
        written.map_err(|e| SinkError(format!("syslog write to {}: {e}", self.address)))
    }

    async fn send_udp(&mut self, events: &[ForwardEvent]) -> Result<(), SinkError> {
        let err = |e: std::io::Error| SinkError(format!("syslog UDP to {}: {e}", self.address));
        if self.udp.is_none() {
            let target = tokio::net::lookup_host(&self.address)
                .await
                .map_err(err)?
                .next()
                .ok_or_else(|| SinkError(format!("{} does not resolve", self.address)))?;
            let local = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let sock = UdpSocket::bind(local).await.map_err(err)?;
            sock.connect(target).await.map_err(err)?;
            self.udp = Some(sock);
        }
        let Some(sock) = self.udp.as_ref() else {
            return Err(SinkError("UDP socket missing".into()));
        };
        for e in events {
            let mut msg = format_message(self.facility, &self.hostname, e);
            if msg.len() > MAX_DATAGRAM {
                msg = format_message(self.facility, &self.hostname, &without_payload(e));
            }
            if let Err(e) = sock.send(&msg).await {
                self.udp = None;
                return Err(err(e));
            }
        }
        Ok(())
    }
}

/// The event with its payload removed (for datagrams).
fn without_payload(e: &ForwardEvent) -> ForwardEvent {
    let mut e = e.clone();
    if let ForwardEvent::Entry(entry) = &mut e
        && let Some(obj) = entry.json.as_object_mut()
    {
        obj.remove("payload");
        obj.remove("payload_base64");
        obj.insert("payload_omitted".into(), true.into());
    }
    e
}

/// `Err` if the receiver closed or reset the connection. The receiver never sends anything, so
/// a readable socket means end of stream or an error; a read that would block means alive.
async fn still_open<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<()> {
    let mut byte = [0u8; 512];
    match tokio::time::timeout(Duration::ZERO, s.read(&mut byte)).await {
        Err(_) => Ok(()),
        Ok(Ok(0)) => Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "closed by the receiver",
        )),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
    }
}

async fn write_flush<S: AsyncWrite + Unpin>(s: &mut S, buf: &[u8]) -> std::io::Result<()> {
    s.write_all(buf).await?;
    s.flush().await
}

/// Escapes an SD-PARAM value: `"`, `\` and `]` get a backslash (RFC 5424 section 6.3.3).
fn sd_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One RFC 5424 message for `event`.
pub fn format_message(facility: u8, hostname: &str, event: &ForwardEvent) -> Vec<u8> {
    let pri = u16::from(facility) * 8 + u16::from(SEVERITY);
    let (msgid, sd) = match event {
        ForwardEvent::Entry(e) => (
            "entry",
            format!(
                "[{SD_ID} origin=\"{}\" index=\"{}\" leaf_hash=\"{}\" checkpoint_size=\"{}\"]",
                sd_escape(&e.origin),
                e.index,
                e.leaf_hash,
                e.checkpoint_size
            ),
        ),
        ForwardEvent::Security(v) => (
            "security",
            format!(
                "[{SD_ID} kind=\"{}\"]",
                sd_escape(v.get("kind").and_then(|k| k.as_str()).unwrap_or("security"))
            ),
        ),
    };
    let mut msg = format!(
        "<{pri}>1 {} {hostname} sealtrail {} {msgid} {sd} ",
        rfc3339_ms(event.time_ms()),
        std::process::id()
    )
    .into_bytes();
    msg.extend_from_slice(&serde_json::to_vec(event.json()).unwrap_or_default());
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        // Checked with `date -u -d @951782400.5`: 2000-02-29 (a leap day of a /400 year).
        assert_eq!(rfc3339_ms(951_782_400_500), "2000-02-29T00:00:00.500Z");
        // `date -u -d @1700000000`: 2023-11-14T22:13:20Z.
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn sd_values_are_escaped_and_hosts_cleaned() {
        assert_eq!(sd_escape(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(header_field("my host\n", 255), "myhost");
        assert_eq!(header_field("", 255), "-");
        assert_eq!(host_of("[::1]:514"), "::1");
        assert_eq!(host_of("siem.example:6514"), "siem.example");
    }

    #[test]
    fn unusable_tls_settings_are_refused_by_category() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = SinkConfig::new("t", super::super::SinkKind::Syslog);
        cfg.address = Some("127.0.0.1:6514".into());
        cfg.transport = Some(Transport::Tls);
        let e = SyslogSink::new(&cfg).unwrap_err();
        assert_eq!(e.category(), "ca_file");
        assert_eq!(e.to_string(), "forward t: TLS needs ca_file");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        cfg.ca_file = Some(empty.clone());
        let e = SyslogSink::new(&cfg).unwrap_err();
        assert_eq!(e.category(), "ca_file");
        assert_eq!(
            e.to_string(),
            format!("forward t: {} holds no certificate", empty.display())
        );
        cfg.server_name = Some("not a name!".into());
        let e = SyslogSink::new(&cfg).unwrap_err();
        assert_eq!(e.category(), "tls");
        assert!(
            e.to_string()
                .starts_with(r#"forward t: server name "not a name!": "#),
            "{e}"
        );
        cfg.transport = Some(Transport::Tcp);
        cfg.server_name = None;
        cfg.ca_file = None;
        assert!(SyslogSink::new(&cfg).is_ok());
    }

    #[test]
    fn an_entry_message_has_every_rfc5424_field() {
        let record = sealtrail_spec::record::PrivateRecord {
            salt: [1; 32],
            principal: "alice".into(),
            payload: br#"{"a":1}"#.to_vec(),
        };
        let leaf = record
            .leaf(1_700_000_000_123, "application/json", Some("user.login"))
            .encode()
            .unwrap();
        let live = crate::store::RecordState::Live(record.encode());
        let e = super::super::entry_event("log.example/a\"b", 42, &leaf, live, 50).unwrap();
        let hash = sealtrail_spec::leaf_hash(&leaf).to_hex();
        let msg = String::from_utf8(format_message(13, "host1", &ForwardEvent::Entry(e))).unwrap();
        let want_head = format!(
            "<110>1 2023-11-14T22:13:20.123Z host1 sealtrail {} entry \
             [sealtrail@32473 origin=\"log.example/a\\\"b\" index=\"42\" leaf_hash=\"{hash}\" \
             checkpoint_size=\"50\"] {{",
            std::process::id()
        );
        assert!(msg.starts_with(&want_head), "{msg}");
        let json: serde_json::Value = serde_json::from_str(&msg[want_head.len() - 1..]).unwrap();
        assert_eq!(json["payload"], serde_json::json!({"a": 1}));
        assert_eq!(json["id"], "log.example/a\"b/42");
    }
}
