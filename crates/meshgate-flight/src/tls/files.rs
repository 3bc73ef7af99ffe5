//! Reading PEM certificates and keys, every error naming its file.

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// Every certificate in the file, in order.
pub(super) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| read_error(path, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| read_error(path, error))?;
    if certificates.is_empty() {
        return Err(TlsError::Empty { path: path.to_owned(), what: "certificate" });
    }
    Ok(certificates)
}

/// The first private key in the file.
pub(super) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::Empty { path: path.to_owned(), what: "private key" },
        error => read_error(path, error),
    })
}

/// The CA certificates client certificates must chain to.
pub(super) fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(path)? {
        roots
            .add(certificate)
            .map_err(|error| TlsError::ClientCa { path: path.to_owned(), reason: error.to_string() })?;
    }
    Ok(roots)
}

fn read_error(path: &Path, error: pem::Error) -> TlsError {
    let reason = match error {
        pem::Error::Io(error) => error.to_string(),
        other => format!("not valid PEM ({other})"),
    };
    TlsError::Read { path: path.to_owned(), reason }
}
