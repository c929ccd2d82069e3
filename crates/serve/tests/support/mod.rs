//! Test support for jackstop's servers: a throw-away PKI (CA, server, clients) written as PEM
//! files, and a raw HTTP/1.1 client over rustls that can misbehave on purpose (no token, a
//! body cut short, a body sent slowly, no SNI).

#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// PEM files in a temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate from a CA the server does not trust.
    pub rogue_cert: PathBuf,
    pub rogue_key: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let ca = new_ca("jackstop test CA");
        let (sc, sk) = leaf(
            &ca,
            "jackstop",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (cc, ck) = leaf(
            &ca,
            "kube-apiserver",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let rogue = new_ca("someone else's CA");
        let (rc, rk) = leaf(
            &rogue,
            "kube-apiserver",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Pki {
            ca: write("ca.crt", &ca.pem()),
            server_cert: write("tls.crt", &sc),
            server_key: write("tls.key", &sk),
            client_cert: write("client.crt", &cc),
            client_key: write("client.key", &ck),
            rogue_cert: write("rogue.crt", &rc),
            rogue_key: write("rogue.key", &rk),
            issuer: ca,
            dir,
        }
    }

    /// The server's files; with `client_ca`, client certificates from the CA are required.
    pub fn tls_files(&self, client_ca: bool) -> jackstop_serve::tls::TlsFiles {
        jackstop_serve::tls::TlsFiles {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: client_ca.then(|| self.ca.clone()),
        }
    }

    /// A new server certificate from the same CA, written over the served one; its DER.
    pub fn rotate_server_cert(&self) -> Vec<u8> {
        let (cert, key) = leaf(
            &self.issuer,
            "jackstop-rotated",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        // Key first: until the certificate matches it, a reload fails and the old pair stays.
        std::fs::write(&self.server_key, key).unwrap();
        std::fs::write(&self.server_cert, &cert).unwrap();
        certs(&self.server_cert)[0].to_vec()
    }
}

/// How the client behaves.
#[derive(Clone, Default)]
pub struct Client {
    /// PEM files of a client certificate and key.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// CA (PEM) the client trusts; the server's own certificate when it is self-signed.
    pub trust: Option<PathBuf>,
    /// Send SNI (`localhost`); without it the client connects by IP, and rustls sends none.
    pub sni: bool,
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
    /// The server's certificate (leaf, DER).
    pub server_cert: Vec<u8>,
}

fn certs(p: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(p)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

impl Client {
    fn config(&self) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(self.trust.as_deref().expect("a CA to trust")) {
            roots.add(c).unwrap();
        }
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        match &self.identity {
            Some((c, k)) => b
                .with_client_auth_cert(certs(c), PrivateKeyDer::from_pem_file(k).unwrap())
                .unwrap(),
            None => b.with_no_client_auth(),
        }
    }

    /// Opens a TLS connection.
    pub async fn connect(
        &self,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.config()));
        let tcp = TcpStream::connect(addr).await?;
        // As the API server's client does: a request's head and body, written apart, would
        // otherwise wait out Nagle's algorithm and the server's delayed ACK (40 ms each).
        tcp.set_nodelay(true)?;
        let name = if self.sni {
            ServerName::try_from("localhost").unwrap()
        } else {
            ServerName::IpAddress(addr.ip().into())
        };
        connector.connect(name, tcp).await
    }

    /// One request on a new connection (`Connection: close`): method, path, extra header
    /// lines, body (sent with its Content-Length unless a header says otherwise).
    pub async fn request(
        &self,
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
        headers: &[&str],
        body: &[u8],
    ) -> std::io::Result<Reply> {
        let mut s = self.connect(addr).await?;
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        let chunked = headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("transfer-encoding"));
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        if !chunked
            && !headers
                .iter()
                .any(|h| h.to_ascii_lowercase().starts_with("content-length"))
        {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await?;
        // The server may answer (413) and close before the body is all sent: what it said
        // is read all the same.
        if chunked {
            let mut wire = Vec::new();
            for part in body.chunks(64 << 10) {
                wire.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                wire.extend_from_slice(part);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let _ = s.write_all(&wire).await;
        } else {
            let _ = s.write_all(body).await;
        }
        let _ = s.flush().await;
        read_reply(s).await
    }
}

/// Reads a whole `Connection: close` reply.
pub async fn read_reply(
    mut s: tokio_rustls::client::TlsStream<TcpStream>,
) -> std::io::Result<Reply> {
    let server_cert = s
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let mut raw = Vec::new();
    match tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw)).await {
        Ok(Ok(_)) => {}
        // A server that closes without close_notify: what was read counts.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(std::io::Error::other("no reply in 20 s")),
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP reply: {text:?}")))?;
    Ok(Reply {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
        server_cert,
    })
}

/// Serves `router` over TLS on a free loopback port, with connection limits short enough for
/// tests: its address, its handle (to stop it) and its task.
pub fn serve(
    router: axum::Router,
    rustls: axum_server::tls_rustls::RustlsConfig,
) -> (
    std::net::SocketAddr,
    axum_server::Handle<std::net::SocketAddr>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = axum_server::Handle::new();
    let limits = jackstop_serve::ConnectionLimits {
        handshake: Duration::from_secs(2),
        first_request: Duration::from_secs(2),
        headers: Duration::from_secs(2),
    };
    let task = {
        let handle = handle.clone();
        tokio::spawn(async move {
            jackstop_serve::serve_tls(listener, rustls, router, handle, &limits).await
        })
    };
    (addr, handle, task)
}
