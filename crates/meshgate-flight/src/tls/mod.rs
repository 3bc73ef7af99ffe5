//! TLS and mutual TLS on the Flight SQL port.
//!
//! meshgate terminates TLS itself with tokio-rustls over its own listener rather than
//! with tonic's `ServerTlsConfig`: tonic builds its TLS acceptor once, so new
//! certificates would need a new server and every connection dropped. Here each
//! accepted connection takes the [`TlsHandle`]'s current `ServerConfig`, and
//! [`TlsHandle::reload`] swaps in a config built from the files as they are now:
//! connections already open keep the session they negotiated, new ones get the new
//! certificates (and client CA). One crypto provider, aws-lc-rs, is used explicitly.
//!
//! The client certificate a connection presented reaches every request on it as a
//! [`TlsConnectInfo`] extension (tonic's `Connected`), where the authenticator reads it.

mod files;
mod incoming;
mod peer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;

pub(crate) use incoming::incoming;
pub use peer::{PeerCertificate, TlsConnectInfo};

/// Why certificates could not be loaded. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} holds no {what} in PEM form", path.display())]
    Empty { path: PathBuf, what: &'static str },
    #[error("the CA certificates in {} cannot be used: {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },
    #[error("the key in {} does not fit the certificate in {} ({reason})", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf, reason: String },
    /// The crypto provider offers no protocol version rustls accepts (not expected
    /// with aws-lc-rs).
    #[error("the TLS crypto provider cannot be used: {0}")]
    Provider(String),
}

/// Where the server's certificate chain, its key and (for mutual TLS) the CA that
/// signs client certificates are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, every client must present a certificate they sign.
    pub client_ca: Option<PathBuf>,
}

/// The TLS settings connections are accepted with; cloned handles share them.
#[derive(Debug, Clone)]
pub struct TlsHandle {
    files: Arc<TlsFiles>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl TlsHandle {
    /// Loads the files; any problem is an error naming the file.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let config = server_config(&files)?;
        Ok(Self { files: Arc::new(files), current: Arc::new(RwLock::new(Arc::new(config))) })
    }

    /// Re-reads the files and uses them for connections accepted from now on;
    /// connections already open are untouched. On an error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(server_config(&self.files)?);
        match self.current.write() {
            Ok(mut guard) => *guard = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }

    /// Whether clients must present a certificate (`--tls-client-ca`).
    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// The certificate file, for messages.
    pub fn cert_path(&self) -> &Path {
        &self.files.cert
    }

    pub(crate) fn config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// The one crypto provider meshgate uses. Installed as the process default too
/// ([`install_crypto_provider`]), so no rustls user has to pick between the two the
/// dependency graph compiles in.
pub fn crypto_provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// Makes aws-lc-rs the process-wide default rustls provider (once; later calls and a
/// provider installed before are left alone).
pub fn install_crypto_provider() {
    let _ = crypto_provider().install_default();
}

fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(crypto_provider());
    let chain = files::certificates(&files.cert)?;
    let key = files::private_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Provider(error.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let roots = files::roots(path)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| TlsError::ClientCa { path: path.clone(), reason: error.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|error| TlsError::KeyMismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: error.to_string(),
    })?;
    // gRPC is HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
