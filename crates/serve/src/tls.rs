//! TLS for jackstop's servers: rustls with the ring provider (the one kube-rs uses, so one
//! crypto library in the binary), a certificate chain and key from PEM files, and optionally
//! client certificates required and checked against a CA bundle.
//!
//! Certificates in Kubernetes are rotated by rewriting the mounted Secret (cert-manager does it
//! before expiry), so [`reload_on_change`] polls the files and swaps the configuration in
//! place: connections already open keep theirs, new ones get the new certificate, and a broken
//! new file keeps the old configuration serving.

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
pub use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where the server's TLS material is.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA bundle: when set, every connection must present a client certificate it signed.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Pem { path: String, what: String },
    #[error("{path}: the certificate and key do not make a TLS configuration: {source}")]
    Config { path: String, source: rustls::Error },
    #[error("{path}: not a usable client CA bundle: {message}")]
    ClientCa { path: String, message: String },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.display().to_string(),
            what: format!("not a PEM certificate: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.display().to_string(),
            what: "no CERTIFICATE block in it".into(),
        });
    }
    Ok(certs)
}

/// The provider every jackstop server uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server configuration from the files; HTTP/2 and HTTP/1.1 offered by ALPN.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certs(&files.cert)?;
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        path: files.key.display().to_string(),
        what: format!("no usable private key: {e}"),
    })?;
    let config_error = |path: &Path, source| TlsError::Config {
        path: path.display().to_string(),
        source,
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(&files.cert, e))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c).map_err(|e| TlsError::ClientCa {
                    path: ca.display().to_string(),
                    message: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::ClientCa {
                    path: ca.display().to_string(),
                    message: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| config_error(&files.key, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Polls the files every `every` and reloads the configuration when one changed; `report` is
/// told each reload's outcome (a failed one keeps the previous configuration).
pub async fn reload_on_change(
    config: RustlsConfig,
    files: TlsFiles,
    every: Duration,
    report: impl Fn(Result<(), TlsError>) + Send + 'static,
) {
    let paths: Vec<PathBuf> = [Some(files.cert.clone()), Some(files.key.clone())]
        .into_iter()
        .chain(std::iter::once(files.client_ca.clone()))
        .flatten()
        .collect();
    crate::on_change(paths, every, || match server_config(&files) {
        Ok(c) => {
            config.reload_from_config(c);
            report(Ok(()));
        }
        Err(e) => report(Err(e)),
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_self_signed_pair_makes_a_configuration_and_bad_files_say_which() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let files = TlsFiles {
            cert: write(dir.path(), "tls.crt", &cert.cert.pem()),
            key: write(dir.path(), "tls.key", &cert.signing_key.serialize_pem()),
            client_ca: None,
        };
        let c = server_config(&files).unwrap();
        assert_eq!(c.alpn_protocols[0], b"h2");

        let empty = write(dir.path(), "empty.crt", "");
        let e = server_config(&TlsFiles {
            cert: empty,
            ..files.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("empty.crt: no CERTIFICATE"), "{e}");

        let garbage = write(
            dir.path(),
            "garbage.key",
            "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
        );
        let e = server_config(&TlsFiles {
            key: garbage,
            ..files.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("garbage.key"), "{e}");

        let other = rcgen::generate_simple_self_signed(vec!["other".into()]).unwrap();
        let mismatched = write(dir.path(), "other.key", &other.signing_key.serialize_pem());
        let e = server_config(&TlsFiles {
            key: mismatched,
            ..files.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("other.key"), "{e}");

        let e = server_config(&TlsFiles {
            client_ca: Some(dir.path().join("missing-ca.crt")),
            ..files
        })
        .unwrap_err();
        assert!(e.to_string().contains("missing-ca.crt: cannot read"), "{e}");
    }
}
