//! TLS (`tls-port` and the other `tls-*` options): handshakes, commands and pipelines over
//! TLS, client certificates required/optional/refused, start-up errors for bad
//! certificate paths with Redis's log lines, CONFIG SET reloading the certificate, CONFIG
//! GET read-back as redis-server 7.0, clients that send garbage or drop mid-handshake,
//! redis-cli/redis-benchmark `--tls`. Certificates are made at test time (rcgen).

mod common;

use common::pki::{Pki, make_pki};
use common::{Conn, Server, free_port, scratch_dir};
use percore_net::resp::Frame;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS client of `port` trusting the test CA, presenting `client` (a name in the PKI).
fn connect(pki: &Pki, port: u16, client: Option<&str>) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.path("ca.crt")).expect("ca") {
        roots.add(c.expect("ca cert")).expect("add ca");
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match client {
        Some(name) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(pki.path(&format!("{name}.crt")))
                    .expect("client cert")
                    .map(|c| c.expect("cert"))
                    .collect();
            let key =
                PrivateKeyDer::from_pem_file(pki.path(&format!("{name}.key"))).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from("localhost").expect("name"),
    )
    .expect("client connection");
    let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect tls port");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    rustls::StreamOwned::new(conn, sock)
}

/// Reads until `expected.len()` bytes arrived (or the stream ends/fails) and compares.
fn expect_reply(s: &mut impl Read, expected: &[u8]) {
    let got = read_n(s, expected.len()).expect("reply");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

fn read_n(s: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut got = vec![0u8; n];
    let mut have = 0;
    while have < n {
        match s.read(&mut got[have..])? {
            0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed",
                ));
            }
            k => have += k,
        }
    }
    Ok(got)
}

/// PING over a fresh TLS connection: Ok(()) on +PONG, Err with what happened otherwise.
fn ping(pki: &Pki, port: u16, client: Option<&str>) -> Result<(), String> {
    let mut s = connect(pki, port, client);
    s.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    match read_n(&mut s, 7) {
        Ok(r) if r == b"+PONG\r\n" => Ok(()),
        Ok(r) => Err(format!("unexpected {:?}", String::from_utf8_lossy(&r))),
        Err(e) => Err(e.to_string()),
    }
}

fn tls_args<'a>(pki: &'a Pki, tls_port: &'a str, paths: &'a mut Vec<String>) -> Vec<&'a str> {
    *paths = vec![
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("ca.crt"),
    ];
    vec![
        "--tls-port",
        tls_port,
        "--tls-cert-file",
        &paths[0],
        "--tls-key-file",
        &paths[1],
        "--tls-ca-cert-file",
        &paths[2],
    ]
}

fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

/// Commands, a deep pipeline and a 2 MB value over TLS; what TLS clients write is what
/// plain clients read. Both with multishot receives into provided buffers and with the
/// one-receive-per-completion fallback.
#[test]
fn commands_and_pipelines_over_tls() {
    let pki = make_pki("tls-cmds");
    for env in [&[][..], &[("PERCORE_NO_MULTISHOT_RECV", "1")][..]] {
        let tls_port = free_port().to_string();
        let mut paths = Vec::new();
        let mut args = tls_args(&pki, &tls_port, &mut paths);
        args.extend(["--tls-auth-clients", "no", "--threads", "2"]);
        let server = Server::percore_env(&args, env);
        let port: u16 = tls_port.parse().unwrap();

        let mut s = connect(&pki, port, None);
        s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        expect_reply(&mut s, b"+PONG\r\n");
        // A pipeline of 2000 commands in one write, keys on both shards.
        let mut req = Vec::new();
        let mut want = Vec::new();
        for i in 0..1000 {
            let (k, v) = (format!("k{i}"), format!("v{i}"));
            req.extend(common::encode_cmd(&["SET", &k, &v]));
            req.extend(common::encode_cmd(&["GET", &k]));
            want.extend_from_slice(b"+OK\r\n");
            want.extend(bulk(v.as_bytes()));
        }
        s.write_all(&req).unwrap();
        expect_reply(&mut s, &want);
        // A value spanning many records both ways.
        let big: Vec<u8> = (0..2_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        s.write_all(&common::encode_cmd(&[&b"SET"[..], b"big", &big]))
            .unwrap();
        expect_reply(&mut s, b"+OK\r\n");
        s.write_all(&common::encode_cmd(&["GET", "big"])).unwrap();
        expect_reply(&mut s, &bulk(&big));
        // RESP3 over TLS.
        s.write_all(&common::encode_cmd(&["HELLO", "3"])).unwrap();
        let mut head = [0u8; 1];
        s.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"%");
        drop(s);

        // The plain port sees the same data.
        let mut plain = server.conn();
        assert_eq!(plain.cmd(&["GET", "k999"]), common::bulk("v999"));
        assert_eq!(plain.cmd(&["STRLEN", "big"]), Frame::Int(2_000_000));
    }
}

/// `tls-auth-clients yes` requires a certificate of the CA, `optional` takes clients
/// without one but still refuses a bad one, `no` asks for none.
#[test]
fn client_certificates_required_optional_refused() {
    let pki = make_pki("tls-auth");
    let tls_port = free_port().to_string();
    let mut paths = Vec::new();
    let args = tls_args(&pki, &tls_port, &mut paths);
    let server = Server::percore(&args);
    let port: u16 = tls_port.parse().unwrap();
    let mut plain = server.conn();
    assert_eq!(
        plain.cmd(&["CONFIG", "GET", "tls-auth-clients"]),
        Frame::Array(vec![common::bulk("tls-auth-clients"), common::bulk("yes")])
    );
    assert_eq!(ping(&pki, port, Some("client")), Ok(()));
    assert!(ping(&pki, port, None).is_err(), "no certificate accepted");
    assert!(
        ping(&pki, port, Some("rogue")).is_err(),
        "another CA's certificate accepted"
    );

    assert_eq!(
        plain.cmd(&["CONFIG", "SET", "tls-auth-clients", "optional"]),
        common::ok()
    );
    assert_eq!(ping(&pki, port, None), Ok(()));
    assert_eq!(ping(&pki, port, Some("client")), Ok(()));
    assert!(
        ping(&pki, port, Some("rogue")).is_err(),
        "optional still refuses a bad certificate"
    );

    assert_eq!(
        plain.cmd(&["CONFIG", "SET", "tls-auth-clients", "no"]),
        common::ok()
    );
    assert_eq!(ping(&pki, port, None), Ok(()));
    assert_eq!(
        plain.cmd(&["CONFIG", "SET", "tls-auth-clients", "maybe"]),
        common::err(
            "ERR CONFIG SET failed (possibly related to argument 'tls-auth-clients') - argument(s) must be one of the following: no, yes, optional"
        )
    );
    // Refused handshakes cost the server nothing.
    assert_eq!(plain.cmd(&["PING"]), common::simple("PONG"));
}

/// Start-up with a bad TLS configuration stops with Redis's log lines and exit status 1.
#[test]
fn bad_certificate_paths_stop_startup() {
    let pki = make_pki("tls-bad");
    let (crt, key, ca) = (
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("ca.crt"),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--tls-cert-file",
                "/nonexistent/c.pem",
                "--tls-key-file",
                &key,
                "--tls-auth-clients",
                "no",
            ],
            "Failed to load certificate: /nonexistent/c.pem: No such file or directory",
        ),
        (
            vec![
                "--tls-cert-file",
                &crt,
                "--tls-key-file",
                "/nonexistent/k.pem",
                "--tls-auth-clients",
                "no",
            ],
            "Failed to load private key: /nonexistent/k.pem: No such file or directory",
        ),
        (
            vec!["--tls-cert-file", &crt, "--tls-key-file", &key],
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!",
        ),
        (
            vec![
                "--tls-cert-file",
                &crt,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                "/nonexistent/ca.pem",
            ],
            "Failed to configure CA certificate(s) file/directory: No such file or directory",
        ),
        (
            vec!["--tls-key-file", &key, "--tls-auth-clients", "no"],
            "No tls-cert-file configured!",
        ),
        (
            vec![
                "--tls-cert-file",
                &crt,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &ca,
                "--tls-protocols",
                "TLSv9",
            ],
            "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.",
        ),
        (
            vec![
                "--tls-cert-file",
                &crt,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &ca,
                "--tls-ciphers",
                "FOO",
            ],
            "Failed to configure ciphers: FOO",
        ),
        (
            vec![
                "--tls-cert-file",
                &crt,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &ca,
                "--tls-ciphersuites",
                "FOO",
            ],
            "Failed to configure ciphersuites: FOO",
        ),
        (
            // The key of another certificate.
            vec![
                "--tls-cert-file",
                &crt,
                "--tls-key-file",
                &ca,
                "--tls-auth-clients",
                "no",
            ],
            "Failed to load private key: ",
        ),
    ];
    for (extra, line) in cases {
        let port = free_port().to_string();
        let tls_port = free_port().to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_percore-server"));
        cmd.args(["--port", &port, "--tls-port", &tls_port, "--save", ""])
            .args(&extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn");
        let out = wait_output(child, Duration::from_secs(20));
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {text}");
        assert!(text.contains(line), "{extra:?}: wanted {line:?} in {text}");
        assert!(
            text.contains("Failed to configure TLS. Check logs for more info."),
            "{text}"
        );
    }
}

fn wait_output(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// The certificate a fresh TLS connection is served.
fn served_cert(pki: &Pki, port: u16) -> Vec<u8> {
    let mut s = connect(pki, port, Some("client"));
    s.write_all(b"PING\r\n").unwrap();
    expect_reply(&mut s, b"+PONG\r\n");
    s.conn.peer_certificates().expect("peer certs")[0].to_vec()
}

/// CONFIG SET of the certificate and key reloads them for new connections; existing ones
/// keep their session. A file that cannot be loaded fails the CONFIG SET with Redis's
/// error and leaves everything as it was.
#[test]
fn config_set_reloads_certificates() {
    let pki = make_pki("tls-reload");
    let tls_port = free_port().to_string();
    let mut paths = Vec::new();
    let args = tls_args(&pki, &tls_port, &mut paths);
    let server = Server::percore(&args);
    let port: u16 = tls_port.parse().unwrap();
    let first = served_cert(&pki, port);
    let mut old = connect(&pki, port, Some("client"));
    old.write_all(b"SET a 1\r\n").unwrap();
    expect_reply(&mut old, b"+OK\r\n");

    let mut plain = server.conn();
    let (crt2, key2) = (pki.path("server2.crt"), pki.path("server2.key"));
    assert_eq!(
        plain.cmd(&[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &crt2,
            "tls-key-file",
            &key2
        ]),
        common::ok()
    );
    let second = served_cert(&pki, port);
    assert_ne!(first, second, "the new certificate is served");
    let want = std::fs::read(&crt2).unwrap();
    let want = CertificateDer::from_pem_slice(&want).unwrap();
    assert_eq!(second, want.to_vec());
    // The connection made before the reload still works.
    old.write_all(b"GET a\r\n").unwrap();
    expect_reply(&mut old, b"$1\r\n1\r\n");

    assert_eq!(
        plain.cmd(&["CONFIG", "SET", "tls-cert-file", "/nonexistent.pem"]),
        common::err(
            "ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs."
        )
    );
    assert_eq!(
        plain.cmd(&["CONFIG", "GET", "tls-cert-file"]),
        Frame::Array(vec![common::bulk("tls-cert-file"), common::bulk(&crt2)])
    );
    assert_eq!(served_cert(&pki, port), second);
    assert!(
        server
            .output()
            .contains("Failed to load certificate: /nonexistent.pem: No such file or directory")
    );
    // tls-port moves as port does (tests/listen.rs): a port in use is refused and the
    // TLS listeners stay where they were.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().port().to_string();
    assert_eq!(
        plain.cmd(&["CONFIG", "SET", "tls-port", &busy]),
        common::err(
            "ERR CONFIG SET failed (possibly related to argument 'tls-port') - Unable to listen on this port. Check server logs."
        )
    );
    assert_eq!(served_cert(&pki, port), second);
}

/// CONFIG GET tls-* reads back as redis-server 7.0's, defaults and set values alike.
#[test]
fn config_get_matches_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&[]);
    let sets: &[(&str, &str)] = &[
        ("tls-protocols", "TLSv1.2 TLSv1.3"),
        ("tls-ciphers", "ECDHE-RSA-AES128-GCM-SHA256"),
        ("tls-ciphersuites", "TLS_AES_128_GCM_SHA256"),
        ("tls-prefer-server-ciphers", "yes"),
        ("tls-session-caching", "no"),
        ("tls-session-cache-size", "100"),
        ("tls-session-cache-timeout", "60"),
        ("tls-replication", "no"),
        ("tls-auth-clients", "optional"),
        ("tls-session-cache-size", "-1"),
        ("tls-prefer-server-ciphers", "maybe"),
    ];
    let sorted = |c: &mut Conn| {
        let Frame::Array(items) = c.cmd(&["CONFIG", "GET", "tls-*"]) else {
            panic!("CONFIG GET reply");
        };
        let mut pairs: Vec<String> = items
            .chunks(2)
            .map(|p| format!("{:?}={:?}", p[0], p[1]))
            .collect();
        pairs.sort();
        pairs
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    assert_eq!(sorted(&mut p), sorted(&mut r));
    for (k, v) in sets {
        assert_eq!(
            p.cmd(&["CONFIG", "SET", k, v]),
            r.cmd(&["CONFIG", "SET", k, v]),
            "CONFIG SET {k} {v}"
        );
    }
    assert_eq!(sorted(&mut p), sorted(&mut r));
}

/// Garbage on the TLS port, connections dropped in the middle of a handshake, a valid
/// session that then sends a corrupt record: each such client is closed, and neither the
/// data nor the other clients notice.
#[test]
fn garbage_and_dropped_handshakes_lose_nothing() {
    let pki = make_pki("tls-garbage");
    let tls_port = free_port().to_string();
    let mut paths = Vec::new();
    let mut args = tls_args(&pki, &tls_port, &mut paths);
    args.extend(["--tls-auth-clients", "no", "--threads", "2"]);
    let server = Server::percore(&args);
    let port: u16 = tls_port.parse().unwrap();
    let mut plain = server.conn();
    for i in 0..100 {
        plain.cmd(&["SET", &format!("key{i}"), &format!("{i}")]);
    }
    let mut held = connect(&pki, port, None);
    held.write_all(b"PING\r\n").unwrap();
    expect_reply(&mut held, b"+PONG\r\n");

    // Plaintext RESP and random bytes where a ClientHello belongs.
    for junk in [
        &b"*1\r\n$4\r\nPING\r\n"[..],
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0][..],
        &[0u8; 4096][..],
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(junk);
        let mut buf = [0u8; 64];
        // The server answers with an alert at most, then closes; never a RESP reply.
        let mut seen = Vec::new();
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(
            !seen.starts_with(b"+") && !seen.starts_with(b"-"),
            "{seen:?}"
        );
    }
    // Half a ClientHello, then gone; and a handshake cut after the first flight.
    for cut in [10usize, 100] {
        let mut c = rustls::ClientConnection::new(
            Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            ),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut hello = Vec::new();
        c.write_tls(&mut hello).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(&hello[..cut.min(hello.len())]).unwrap();
        drop(s);
    }
    // A good session that then sends a corrupt record.
    {
        let mut s = connect(&pki, port, None);
        s.write_all(b"PING\r\n").unwrap();
        expect_reply(&mut s, b"+PONG\r\n");
        let sock = s.get_mut();
        sock.write_all(&[0x17, 0x03, 0x03, 0x00, 0x20]).unwrap();
        sock.write_all(&[0xAB; 0x20]).unwrap();
        let mut buf = [0u8; 256];
        let mut total = 0;
        while let Ok(n) = sock.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
            assert!(total < 4096, "the server kept talking after a bad record");
        }
    }
    // Everything still there, both ports serve, the held session too.
    for i in 0..100 {
        assert_eq!(
            plain.cmd(&["GET", &format!("key{i}")]),
            common::bulk(i.to_string())
        );
    }
    held.write_all(b"DBSIZE\r\n").unwrap();
    expect_reply(&mut held, b":100\r\n");
    assert_eq!(ping(&pki, port, None), Ok(()));
}

/// `port 0` with a `tls-port` serves TLS only, as Redis.
#[test]
fn tls_only_with_port_zero() {
    let pki = make_pki("tls-only");
    let tls_port = free_port();
    let dir = scratch_dir("tls-only-dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_percore-server"))
        .args([
            "--port",
            "0",
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &pki.path("server.crt"),
            "--tls-key-file",
            &pki.path("server.key"),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--dir",
            &dir.to_string_lossy(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let mut up = Err(String::new());
    while start.elapsed() < Duration::from_secs(20) {
        if TcpStream::connect(("127.0.0.1", tls_port)).is_ok() {
            up = ping(&pki, tls_port, None);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s = connect(&pki, tls_port, None);
    s.write_all(b"CONFIG GET port\r\n").unwrap();
    expect_reply(&mut s, b"*2\r\n$4\r\nport\r\n$1\r\n0\r\n");
    s.write_all(b"SHUTDOWN NOSAVE\r\n").unwrap();
    let out = wait_output(child_take(&mut child), Duration::from_secs(20));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(up, Ok(()));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains(&format!("Ready to accept connections tls port={tls_port}")),
        "{log}"
    );
    assert!(!log.contains("connections tcp"), "{log}");
}

fn child_take(child: &mut std::process::Child) -> std::process::Child {
    std::mem::replace(
        child,
        Command::new("true").spawn().expect("spawn placeholder"),
    )
}

/// redis-cli and redis-benchmark `--tls` (Debian's are built with TLS), with a client
/// certificate.
#[test]
fn redis_cli_and_benchmark_over_tls() {
    if Command::new("redis-benchmark")
        .arg("--help")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("PERCORE_REQUIRE_REDIS").as_deref() != Ok("1"),
            "redis-benchmark not found"
        );
        return;
    }
    let pki = make_pki("tls-cli");
    let tls_port = free_port().to_string();
    let mut paths = Vec::new();
    let args = tls_args(&pki, &tls_port, &mut paths);
    let server = Server::percore(&args);
    let (ca, crt, key) = (
        pki.path("ca.crt"),
        pki.path("client.crt"),
        pki.path("client.key"),
    );
    let tls = [
        "--tls", "--cacert", &ca, "--cert", &crt, "--key", &key, "-p", &tls_port,
    ];
    let out = Command::new("redis-cli")
        .args(tls)
        .args(["SET", "cli", "over-tls"])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    let out = Command::new("redis-benchmark")
        .args(tls)
        .args(["-n", "2000", "-c", "4", "-P", "8", "-t", "set,get", "-q"])
        .output()
        .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SET:") && text.contains("GET:"), "{text}");
    assert_eq!(server.conn().cmd(&["GET", "cli"]), common::bulk("over-tls"));
}

/// `tls-key-file-pass`: an encrypted PKCS#8 key (PBES2: PBKDF2-SHA256, AES-256-CBC, as
/// `openssl genpkey -aes256` writes) is decrypted at start-up; a wrong password stops it.
#[test]
fn encrypted_key_with_tls_key_file_pass() {
    use pkcs8::der::pem::LineEnding;
    let pki = make_pki("tls-keypass");
    let der = PrivateKeyDer::from_pem_file(pki.path("server.key")).expect("key");
    let info = pkcs8::PrivateKeyInfo::try_from(der.secret_der()).expect("pkcs8");
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7u8; 16])
            .expect("params");
    let encrypted = info
        .encrypt_with_params(params, "s3cret")
        .expect("encrypt")
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .expect("pem");
    let enc_path = pki.path("server-enc.key");
    std::fs::write(&enc_path, encrypted.as_bytes()).expect("write");

    let tls_port = free_port().to_string();
    let crt = pki.path("server.crt");
    let base = [
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &crt,
        "--tls-key-file",
        &enc_path,
        "--tls-auth-clients",
        "no",
    ];
    let mut args = base.to_vec();
    args.extend(["--tls-key-file-pass", "s3cret"]);
    let server = Server::percore(&args);
    assert_eq!(ping(&pki, tls_port.parse().unwrap(), None), Ok(()));
    drop(server);

    let port = free_port().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_percore-server"))
        .args(["--port", &port, "--save", ""])
        .args(base)
        .args(["--tls-key-file-pass", "wrong"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_output(child, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("Failed to load private key: {enc_path}: ")),
        "{text}"
    );
}
