//! Reading and writing the PEM files of a certificate folder.

use std::fs;
use std::io::{self, Write as _};
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ParsedCertificate;

use super::{CertError, crypto_provider};

/// The error for a file that does not hold what it should.
pub(super) fn invalid(path: &Path, expected: &'static str, reason: impl ToString) -> CertError {
    CertError::Invalid {
        path: path.to_path_buf(),
        expected,
        reason: reason.to_string(),
    }
}

/// Reads a whole file; a missing file is [`CertError::Missing`].
pub(super) fn read_file(path: &Path) -> Result<Vec<u8>, CertError> {
    fs::read(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            CertError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            CertError::Unreadable {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Reads a PEM certificate and checks that it parses.
pub(super) fn read_certificate(path: &Path) -> Result<CertificateDer<'static>, CertError> {
    const EXPECTED: &str = "PEM certificate";
    let bytes = read_file(path)?;
    let cert = CertificateDer::from_pem_slice(&bytes).map_err(|e| invalid(path, EXPECTED, e))?;
    ParsedCertificate::try_from(&cert).map_err(|e| invalid(path, EXPECTED, e))?;
    Ok(cert)
}

/// Reads a PEM private key and checks that the crypto provider can use it.
pub(super) fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    const EXPECTED: &str = "PEM private key";
    let bytes = read_file(path)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| invalid(path, EXPECTED, e))?;
    crypto_provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| invalid(path, EXPECTED, e))?;
    Ok(key)
}

/// Writes a new file (never overwriting); `secret` files get mode 0600 from
/// the moment they are created.
pub(super) fn write_new_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), CertError> {
    let unwritable = |source| CertError::Unwritable {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            CertError::AlreadyExists {
                path: path.to_path_buf(),
            }
        } else {
            unwritable(source)
        }
    })?;
    file.write_all(contents).map_err(unwritable)?;
    file.sync_all().map_err(unwritable)
}
