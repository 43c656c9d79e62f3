//! TLS with rustls (ring provider) on the shards' own io_uring reactors.
//!
//! Ciphertext moves through the ring exactly as plain bytes do; each connection accepted on
//! a `tls-port` listener carries a [`Session`] (a rustls connection) as its
//! [`Transport`]: received records become plaintext in the connection's input, which the
//! RESP parser reads as ever, and the replies it writes are sealed into records when the
//! connection is flushed. The server's rustls configuration (certificate, key, CA, client
//! authentication, protocols, suites, session cache) is built from the `tls-*` options at
//! start-up and again by CONFIG SET of any of them (new connections use the new one, as in
//! Redis); the session cache is shared by every shard, since a client reconnecting may
//! land on another.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use percore_net::reactor::InBuf;
use percore_net::transport::{Transport, TransportError};
use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, StoresServerSessions, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// rustls's cap on records waiting to be sent and on plaintext written before the
/// handshake completes; [`Session::seal`] drains the records into the connection's send
/// buffer whenever it fills, so this bounds one step, not the reply.
pub const TLS_SEND_BUFFER_BYTES: usize = 64 * 1024;
/// Entries of the session cache when `tls-session-cache-size` is 0 (OpenSSL: no limit).
pub const TLS_SESSION_CACHE_MAX_ENTRIES: usize = 1 << 20;
/// Certificate files larger than this are refused at load (a PEM chain is a few KB).
pub const TLS_PEM_FILE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// `tls-auth-clients`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthClients {
    No,
    Yes,
    Optional,
}

impl AuthClients {
    /// In Redis's order (its error lists them so).
    pub const NAMES: [&'static str; 3] = ["no", "yes", "optional"];
    const ALL: [AuthClients; 3] = [Self::No, Self::Yes, Self::Optional];

    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    #[must_use]
    pub fn from_index(i: usize) -> Self {
        Self::ALL[i]
    }
}

/// The `tls-*` options, part of [`crate::config::Config`]. Strings are as given (empty:
/// unset), checked when the rustls configuration is built.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsConfig {
    /// `tls-port`: 0 = no TLS listener. Immutable at runtime in percore.
    pub port: u16,
    pub cert_file: String,
    pub key_file: String,
    pub key_file_pass: String,
    pub client_cert_file: String,
    pub client_key_file: String,
    pub client_key_file_pass: String,
    /// `tls-dh-params-file`: accepted, unused (rustls offers no finite-field DH suites).
    pub dh_params_file: String,
    pub ca_cert_file: String,
    pub ca_cert_dir: String,
    pub protocols: String,
    pub ciphers: String,
    pub ciphersuites: String,
    pub auth_clients: AuthClients,
    pub prefer_server_ciphers: bool,
    pub session_caching: bool,
    pub session_cache_size: u32,
    pub session_cache_timeout_s: u32,
    pub replication: bool,
    pub cluster: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            port: 0,
            cert_file: String::new(),
            key_file: String::new(),
            key_file_pass: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
            client_key_file_pass: String::new(),
            dh_params_file: String::new(),
            ca_cert_file: String::new(),
            ca_cert_dir: String::new(),
            protocols: String::new(),
            ciphers: String::new(),
            ciphersuites: String::new(),
            auth_clients: AuthClients::Yes,
            prefer_server_ciphers: false,
            session_caching: true,
            session_cache_size: 20480,
            session_cache_timeout_s: 300,
            replication: false,
            cluster: false,
        }
    }
}

impl TlsConfig {
    /// Whether TLS is in use at all (Redis configures its context only then).
    #[must_use]
    pub fn active(&self) -> bool {
        self.port != 0 || self.replication || self.cluster
    }
}

/// The server's TLS state, shared by the shards.
#[derive(Default)]
pub struct Tls {
    /// The configuration new connections get; replaced by CONFIG SET.
    server: RwLock<Option<Arc<ServerConfig>>>,
    /// Listeners at this index and above (in each shard's list) are `tls-port`'s.
    first_listener: AtomicUsize,
}

impl Tls {
    /// Installs a configuration built by [`build_server_config`].
    pub fn install(&self, built: ServerConfig) {
        *self.server.write().expect("tls lock") = Some(Arc::new(built));
    }

    /// Listeners from index `first` on are TLS listeners.
    pub fn set_first_listener(&self, first: usize) {
        self.first_listener.store(first, Ordering::Release);
    }

    /// The session of a connection accepted on `listener`, if that is a TLS listener.
    pub fn accept(&self, listener: usize) -> Option<Box<dyn Transport>> {
        if listener < self.first_listener.load(Ordering::Acquire) {
            return None;
        }
        let cfg = self.server.read().expect("tls lock").clone();
        let session: Box<dyn Transport> = match cfg.map(rustls::ServerConnection::new) {
            Some(Ok(conn)) => Box::new(Session::new(rustls::Connection::Server(conn))),
            // A TLS listener always has a configuration; should building a session fail,
            // the connection gets one that refuses everything (never plaintext).
            Some(Err(e)) => Box::new(Refused(e.to_string())),
            None => Box::new(Refused("TLS is not configured".into())),
        };
        Some(session)
    }
}

/// CONFIG SET: applies `pairs` to `cfg`, and when one is a `tls-*` option while TLS is in
/// use, rebuilds the TLS context for new connections (certificates reloaded from their
/// files, as Redis's `applyTlsCfg`). A context that cannot be built leaves `cfg` as it was.
pub fn config_set(
    shared: &crate::server::ServerShared,
    cfg: &mut crate::config::Config,
    pairs: &[(&[u8], &[u8])],
) -> Result<(), String> {
    let Some((name, _)) = pairs
        .iter()
        .find(|(k, _)| k.len() > 4 && k[..4].eq_ignore_ascii_case(b"tls-"))
    else {
        return cfg.set_many(pairs);
    };
    let before = cfg.clone();
    cfg.set_many(pairs)?;
    if !cfg.tls.active() {
        return Ok(());
    }
    match build_server_config(&cfg.tls) {
        Ok(built) => {
            shared.tls.install(built);
            Ok(())
        }
        Err(line) => {
            shared.warning(&line);
            *cfg = before;
            Err(format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - Unable to update TLS configuration. Check server logs.",
                String::from_utf8_lossy(name)
            ))
        }
    }
}

/// Whether client `fd` came through the `tls-port`: its PSYNC/SYNC makes a replica link
/// whose bytes go through its TLS session, handed over when the shard closed its side
/// (`replication::primary::tls_handover`).
#[must_use]
pub fn is_tls_link(shared: &crate::server::ServerShared, fd: std::os::fd::RawFd) -> bool {
    let tls_port = shared.config().tls.port;
    tls_port != 0 && percore_net::sys::local_addr(fd).is_ok_and(|a| a.port() == tls_port)
}

/// One connection's rustls session (server side, or client side for a replication link).
pub struct Session {
    conn: rustls::Connection,
}

impl Session {
    #[must_use]
    pub fn new(mut conn: rustls::Connection) -> Self {
        conn.set_buffer_limit(Some(TLS_SEND_BUFFER_BYTES));
        Self { conn }
    }
}

impl Transport for Session {
    fn receive(&mut self, mut wire: &[u8], plain: &mut InBuf) -> Result<(), TransportError> {
        while !wire.is_empty() {
            match self.conn.read_tls(&mut wire) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(TransportError(e.to_string())),
            }
            if let Err(e) = self.conn.process_new_packets() {
                return Err(TransportError(e.to_string()));
            }
            // Take every plaintext byte now: rustls bounds what it holds decrypted.
            let mut reader = self.conn.reader();
            loop {
                match reader.fill_buf() {
                    Ok([]) => break,
                    Ok(chunk) => {
                        let n = chunk.len();
                        plain.append(chunk);
                        reader.consume(n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(TransportError(e.to_string())),
                }
            }
        }
        Ok(())
    }

    fn seal(&mut self, plain: &mut Vec<u8>, wire: &mut Vec<u8>) {
        let mut taken = 0;
        loop {
            let mut moved = 0;
            if taken < plain.len() {
                moved = self.conn.writer().write(&plain[taken..]).unwrap_or(0);
                taken += moved;
            }
            let mut wrote = false;
            while self.conn.wants_write() {
                match self.conn.write_tls(wire) {
                    Ok(n) if n > 0 => wrote = true,
                    _ => break,
                }
            }
            if taken >= plain.len() || (moved == 0 && !wrote) {
                break;
            }
        }
        if taken >= plain.len() {
            plain.clear();
        } else {
            plain.drain(..taken);
        }
    }

    fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// A session that could not be created: every byte received is refused.
struct Refused(String);

impl Transport for Refused {
    fn receive(&mut self, _wire: &[u8], _plain: &mut InBuf) -> Result<(), TransportError> {
        Err(TransportError(self.0.clone()))
    }
    fn seal(&mut self, plain: &mut Vec<u8>, _wire: &mut Vec<u8>) {
        plain.clear();
    }
    fn wants_write(&self) -> bool {
        false
    }
    fn handshaking(&self) -> bool {
        true
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// The rustls server configuration for `cfg`, checked in Redis's order
/// (`tlsConfigure`/`createSSLContext`); the error is the line Redis logs.
pub fn build_server_config(cfg: &TlsConfig) -> Result<ServerConfig, String> {
    if cfg.cert_file.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    if cfg.key_file.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    if (cfg.auth_clients != AuthClients::No || cfg.cluster || cfg.replication)
        && cfg.ca_cert_file.is_empty()
        && cfg.ca_cert_dir.is_empty()
    {
        return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!".into());
    }
    let versions = parse_protocols(&cfg.protocols)?;
    let certs = load_certs(&cfg.cert_file)
        .map_err(|e| format!("Failed to load certificate: {}: {e}", cfg.cert_file))?;
    let key = load_key(&cfg.key_file, &cfg.key_file_pass)
        .map_err(|e| format!("Failed to load private key: {}: {e}", cfg.key_file))?;
    let roots = if cfg.ca_cert_file.is_empty() && cfg.ca_cert_dir.is_empty() {
        None
    } else {
        Some(
            load_roots(&cfg.ca_cert_file, &cfg.ca_cert_dir).map_err(|e| {
                format!("Failed to configure CA certificate(s) file/directory: {e}")
            })?,
        )
    };
    let provider = Arc::new(provider_for(cfg)?);

    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Failed to configure protocols: {e}"))?;
    let builder = match (cfg.auth_clients, roots) {
        (AuthClients::No, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(roots)) => {
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            if auth == AuthClients::Optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| {
                format!("Failed to configure CA certificate(s) file/directory: {e}")
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("Failed to load private key: {}: {e}", cfg.key_file))?;
    config.ignore_client_order = cfg.prefer_server_ciphers;
    if cfg.session_caching {
        config.session_storage = Arc::new(SessionCache::new(
            cfg.session_cache_size as usize,
            Duration::from_secs(u64::from(cfg.session_cache_timeout_s)),
        ));
    } else {
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(config)
}

/// The rustls client configuration of a replica's link to its primary (`tls-replication
/// yes`), as Redis's client context: the primary's certificate must chain to
/// `tls-ca-cert-file`/`-dir`, its name is not checked (Redis sets no host name to verify);
/// the replica presents `tls-client-cert-file`/`-key-file`, else `tls-cert-file`/`-key-file`.
pub fn build_client_config(cfg: &TlsConfig) -> Result<rustls::ClientConfig, String> {
    let versions = parse_protocols(&cfg.protocols)?;
    let roots = load_roots(&cfg.ca_cert_file, &cfg.ca_cert_dir)
        .map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?;
    let provider = Arc::new(provider_for(cfg)?);
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Failed to configure protocols: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)));
    let (cert, key, pass) = if cfg.client_cert_file.is_empty() {
        (&cfg.cert_file, &cfg.key_file, &cfg.key_file_pass)
    } else {
        (
            &cfg.client_cert_file,
            &cfg.client_key_file,
            &cfg.client_key_file_pass,
        )
    };
    if cert.is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let certs = load_certs(cert).map_err(|e| format!("Failed to load certificate: {cert}: {e}"))?;
    let key = load_key(key, pass).map_err(|e| format!("Failed to load private key: {key}: {e}"))?;
    builder
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("Failed to load private key: {e}"))
}

/// A primary's certificate checked as Redis's replica checks it: the chain to the CA, not
/// the name (`SSL_VERIFY_PEER` without a host name).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A replica's link to its primary over TLS: the client session for `host` (the name is
/// sent as SNI when it is one; an IP address sends none) on the connected `sock`.
pub fn client_link(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    sock: std::net::TcpStream,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>, String> {
    let name = rustls_pki_types::ServerName::try_from(host.to_owned())
        .or_else(|_| rustls_pki_types::ServerName::try_from("percore-primary"))
        .map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| format!("Error condition on socket for SYNC: {e}"))?;
    Ok(rustls::StreamOwned::new(conn, sock))
}

/// Hands a replica's TLS link over to the reactor: the socket, its session as the
/// connection's transport, and the plaintext the session decrypted that nobody read yet
/// (records it holds are processed first, so none waits for the primary's next bytes).
pub fn into_reactor(
    link: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
) -> (std::net::TcpStream, Box<dyn Transport>, Vec<u8>) {
    let rustls::StreamOwned { mut conn, sock } = link;
    let mut plain = Vec::new();
    if conn.process_new_packets().is_ok() {
        let mut reader = conn.reader();
        while let Ok(chunk) = reader.fill_buf() {
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            plain.extend_from_slice(chunk);
            reader.consume(n);
        }
    }
    let session: Box<dyn Transport> = Box::new(Session::new(rustls::Connection::Client(conn)));
    (sock, session, plain)
}

/// `tls-protocols`: Redis's words, case-insensitive, space-separated; empty means
/// TLSv1.2 and TLSv1.3. rustls has no TLSv1 or TLSv1.1: they are refused when alone and
/// left out when named with a newer one.
fn parse_protocols(text: &str) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    const INVALID: &str = "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.";
    if text.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut versions = Vec::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1" | "tlsv1.1" => {}
            "tlsv1.2" => versions.push(&rustls::version::TLS12),
            "tlsv1.3" => versions.insert(0, &rustls::version::TLS13),
            _ => return Err(INVALID.into()),
        }
    }
    if versions.is_empty() {
        return Err("Failed to configure protocols: TLSv1 and TLSv1.1 are not supported (rustls offers TLSv1.2 and TLSv1.3)".into());
    }
    versions.dedup_by_key(|v| v.version);
    Ok(versions)
}

/// The ring provider with the suites `tls-ciphers` (TLSv1.2, OpenSSL's names and a few of
/// its keywords) and `tls-ciphersuites` (TLSv1.3) select.
fn provider_for(cfg: &TlsConfig) -> Result<CryptoProvider, String> {
    let mut provider = ring_provider();
    let all = provider.cipher_suites.clone();
    let tls13 = |s: &SupportedCipherSuite| matches!(s, SupportedCipherSuite::Tls13(_));
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    if cfg.ciphersuites.is_empty() {
        chosen.extend(all.iter().copied().filter(tls13));
    } else {
        let picked = select_suites(&cfg.ciphersuites, &all, true);
        if picked.is_empty() {
            return Err(format!(
                "Failed to configure ciphersuites: {}",
                cfg.ciphersuites
            ));
        }
        chosen.extend(picked);
    }
    if cfg.ciphers.is_empty() {
        chosen.extend(all.iter().copied().filter(|s| !tls13(s)));
    } else {
        let picked = select_suites(&cfg.ciphers, &all, false);
        if picked.is_empty() {
            return Err(format!("Failed to configure ciphers: {}", cfg.ciphers));
        }
        chosen.extend(picked);
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

/// rustls's ring provider: every suite and key exchange it has. (rustls marks it
/// deprecated for want of post-quantum key exchange, which only aws-lc-rs offers; that
/// one needs cmake to build, which CI does not have.)
#[expect(deprecated, reason = "ring lacks post-quantum key exchange; see above")]
#[must_use]
pub fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// OpenSSL's name of a rustls suite: TLSv1.3 suites by their IANA names
/// (`TLS_AES_128_GCM_SHA256`), TLSv1.2 ones as `ECDHE-RSA-AES128-GCM-SHA256`.
#[must_use]
pub fn openssl_name(suite: SupportedCipherSuite) -> String {
    let iana = format!("{:?}", suite.suite());
    if let Some(rest) = iana.strip_prefix("TLS13_") {
        return format!("TLS_{rest}");
    }
    // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 -> ECDHE-RSA-AES128-GCM-SHA256
    let rest = iana.trim_start_matches("TLS_").replace("_WITH", "");
    rest.replace("AES_128", "AES128")
        .replace("AES_256", "AES256")
        .replace("CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305")
        .replace('_', "-")
}

/// The suites of one version named in an OpenSSL-style list (`:`, `,` or space
/// separated): exact names; for TLSv1.2 also `DEFAULT`, `ALL`, `HIGH`, `ECDHE`/`EECDH`,
/// `AESGCM`, `CHACHA20`, `aRSA`, `aECDSA`, and `!`/`-` to remove. Unknown names are
/// skipped, as OpenSSL does; an empty result is the caller's error.
fn select_suites(
    list: &str,
    all: &[SupportedCipherSuite],
    tls13: bool,
) -> Vec<SupportedCipherSuite> {
    let of_version: Vec<SupportedCipherSuite> = all
        .iter()
        .copied()
        .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)) == tls13)
        .collect();
    let mut picked: Vec<SupportedCipherSuite> = Vec::new();
    for item in list.split([':', ',', ' ']).filter(|w| !w.is_empty()) {
        let (remove, word) = match item.as_bytes()[0] {
            b'!' | b'-' => (true, &item[1..]),
            b'+' => (false, &item[1..]),
            _ => (false, item),
        };
        let matching: Vec<SupportedCipherSuite> = of_version
            .iter()
            .copied()
            .filter(|s| suite_matches(*s, word, tls13))
            .collect();
        if remove {
            picked.retain(|s| !matching.iter().any(|m| m.suite() == s.suite()));
        } else {
            for s in matching {
                if !picked.iter().any(|p| p.suite() == s.suite()) {
                    picked.push(s);
                }
            }
        }
    }
    picked
}

fn suite_matches(suite: SupportedCipherSuite, word: &str, tls13: bool) -> bool {
    let name = openssl_name(suite);
    if name.eq_ignore_ascii_case(word) {
        return true;
    }
    if tls13 {
        return false;
    }
    match word.to_ascii_uppercase().as_str() {
        "DEFAULT" | "ALL" | "HIGH" | "ECDHE" | "EECDH" | "KECDHE" | "TLSV1.2" => true,
        "AESGCM" => name.contains("GCM"),
        "AES" => name.contains("AES"),
        "CHACHA20" => name.contains("CHACHA20"),
        "ARSA" => name.contains("-RSA-"),
        "AECDSA" | "ECDSA" => name.contains("ECDSA"),
        _ => false,
    }
}

/// The text of an OS error alone ("No such file or directory").
fn io_text(e: &std::io::Error) -> String {
    percore_net::sys::strerror(e)
}

fn read_pem(path: &str) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| io_text(&e))?;
    let len = file.metadata().map_err(|e| io_text(&e))?.len();
    if len > TLS_PEM_FILE_MAX_BYTES {
        return Err(format!("file larger than {TLS_PEM_FILE_MAX_BYTES} bytes"));
    }
    std::fs::read(path).map_err(|e| io_text(&e))
}

/// The certificates of a PEM file, in order (the leaf first).
fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_pem(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn load_key(path: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_pem(path)?;
    if memchr_str(&pem, b"ENCRYPTED PRIVATE KEY") || memchr_str(&pem, b"Proc-Type: 4,ENCRYPTED") {
        return decrypt_key(&pem, pass);
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("bad private key: {e}"))
}

fn memchr_str(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// An encrypted PKCS#8 key (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, what `openssl genpkey
/// -aes256` and `openssl pkcs8 -topk8` write: PBES2 with PBKDF2 or scrypt, AES-CBC),
/// decrypted with `tls-key-file-pass`. The legacy PEM encryption of PKCS#1 keys
/// (`Proc-Type: 4,ENCRYPTED`) is refused with a hint.
fn decrypt_key(pem: &[u8], pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    if memchr_str(pem, b"Proc-Type: 4,ENCRYPTED") {
        return Err(
            "legacy PEM-encrypted keys are not supported; convert with openssl pkcs8 -topk8".into(),
        );
    }
    let (label, der) =
        pkcs8::der::pem::decode_vec(pem).map_err(|e| format!("bad encrypted key: {e}"))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(format!("unexpected PEM section {label}"));
    }
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
        .map_err(|e| format!("bad encrypted key: {e}"))?;
    let plain = info
        .decrypt(pass.as_bytes())
        .map_err(|_| "bad decrypt (wrong tls-key-file-pass?)".to_owned())?;
    Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
}

/// The trust anchors of `tls-ca-cert-file` and every certificate file in `tls-ca-cert-dir`.
fn load_roots(file: &str, dir: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let mut add = |path: &str, strict: bool| -> Result<(), String> {
        let certs = match load_certs(path) {
            Ok(c) => c,
            Err(e) if strict => return Err(e),
            Err(_) => return Ok(()),
        };
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("{path}: bad CA certificate: {e}"))?;
        }
        Ok(())
    };
    if !file.is_empty() {
        add(file, true)?;
    }
    if !dir.is_empty() {
        let entries = std::fs::read_dir(Path::new(dir)).map_err(|e| io_text(&e))?;
        for entry in entries.flatten() {
            if entry
                .file_type()
                .is_ok_and(|t| t.is_file() || t.is_symlink())
            {
                add(&entry.path().to_string_lossy(), false)?;
            }
        }
    }
    if roots.is_empty() {
        return Err("no CA certificate found".into());
    }
    Ok(roots)
}

/// The server's session cache: `tls-session-cache-size` entries (oldest dropped first),
/// each valid for `tls-session-cache-timeout` seconds, shared by every shard.
#[derive(Debug)]
struct SessionCache {
    max_entries: usize,
    timeout: Duration,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    map: HashMap<Vec<u8>, (Vec<u8>, Instant)>,
    order: VecDeque<Vec<u8>>,
}

impl SessionCache {
    fn new(size: usize, timeout: Duration) -> Self {
        let max_entries = if size == 0 {
            TLS_SESSION_CACHE_MAX_ENTRIES
        } else {
            size.min(TLS_SESSION_CACHE_MAX_ENTRIES)
        };
        Self {
            max_entries,
            timeout,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.timeout
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut inner = self.inner.lock().expect("session cache lock");
        while inner.map.len() >= self.max_entries {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            inner.map.remove(&old);
        }
        if inner
            .map
            .insert(key.clone(), (value, Instant::now()))
            .is_none()
        {
            inner.order.push_back(key);
        }
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let inner = self.inner.lock().expect("session cache lock");
        inner
            .map
            .get(key)
            .filter(|(_, at)| self.fresh(*at))
            .map(|(v, _)| v.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut inner = self.inner.lock().expect("session cache lock");
        let (v, at) = inner.map.remove(key)?;
        inner.order.retain(|k| k != key);
        self.fresh(at).then_some(v)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_names_of_the_ring_suites() {
        let names: Vec<String> = ring_provider()
            .cipher_suites
            .iter()
            .map(|s| openssl_name(*s))
            .collect();
        for n in [
            "TLS_AES_256_GCM_SHA384",
            "TLS_AES_128_GCM_SHA256",
            "TLS_CHACHA20_POLY1305_SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-RSA-CHACHA20-POLY1305",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
    }

    #[test]
    fn cipher_lists_select_like_openssl() {
        let all = ring_provider().cipher_suites;
        let names = |list: &str, tls13: bool| -> Vec<String> {
            select_suites(list, &all, tls13)
                .into_iter()
                .map(openssl_name)
                .collect()
        };
        assert_eq!(
            names("ECDHE-RSA-AES128-GCM-SHA256:BOGUS", false),
            ["ECDHE-RSA-AES128-GCM-SHA256"]
        );
        assert_eq!(names("HIGH:!aECDSA:!CHACHA20", false).len(), 2);
        assert!(names("FOO", false).is_empty());
        assert_eq!(
            names("TLS_CHACHA20_POLY1305_SHA256", true),
            ["TLS_CHACHA20_POLY1305_SHA256"]
        );
        assert!(names("ECDHE-RSA-AES128-GCM-SHA256", true).is_empty());
    }

    #[test]
    fn protocols_parse_as_redis() {
        assert_eq!(parse_protocols("").unwrap().len(), 2);
        assert_eq!(parse_protocols("TLSv1.2").unwrap().len(), 1);
        assert_eq!(parse_protocols("tlsv1.2 TLSv1.3").unwrap().len(), 2);
        assert_eq!(parse_protocols("TLSv1 TLSv1.3").unwrap().len(), 1);
        assert!(
            parse_protocols("TLSv1.1")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(
            parse_protocols("TLSv9")
                .unwrap_err()
                .starts_with("Invalid tls-protocols specified.")
        );
    }

    #[test]
    fn session_cache_bounds_and_expires() {
        let c = SessionCache::new(2, Duration::from_mins(1));
        assert!(c.put(b"a".to_vec(), b"1".to_vec()));
        assert!(c.put(b"b".to_vec(), b"2".to_vec()));
        assert!(c.put(b"c".to_vec(), b"3".to_vec()));
        assert_eq!(c.get(b"a"), None);
        assert_eq!(c.get(b"c").as_deref(), Some(&b"3"[..]));
        assert_eq!(c.take(b"b").as_deref(), Some(&b"2"[..]));
        assert_eq!(c.get(b"b"), None);
        let expired = SessionCache::new(2, Duration::ZERO);
        expired.put(b"a".to_vec(), b"1".to_vec());
        assert_eq!(expired.get(b"a"), None);
    }
}
