//! TLS to the fleet's Redis (`rediss://`): the CA, client certificate and key files are
//! read and checked when a limit is built, so a missing or malformed file is a
//! configuration error at load naming its key, never a surprise at the first connection.

use std::path::Path;

use redis::{ClientTlsConfig, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::FleetConfig;
use crate::ConfigError;

/// The certificates of `config`'s TLS files: `ca_file`, or else the system's trusted
/// CAs, and the client certificate with its key when given.
///
/// The trusted CAs are always given to the redis client: left to itself it reads the
/// system store again for every connection (hundreds of files), and that read counts
/// against the connect timeout; at the default 50 ms a loaded machine never connected.
/// Read once here, a connection only clones the parsed store.
pub(crate) fn certificates(config: &FleetConfig) -> Result<TlsCertificates, ConfigError> {
    install_provider();
    let root_cert = match &config.ca_file {
        Some(path) => certificate_pem("ca_file", path)?,
        None => system_roots_pem()?,
    };
    let client_tls = match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: certificate_pem("cert_file", cert)?,
            client_key: key_pem(key)?,
        }),
        // `FleetConfig::validate` refuses one without the other.
        _ => None,
    };
    Ok(TlsCertificates {
        client_tls,
        root_cert: Some(root_cert),
    })
}

/// The system's trusted CA certificates as one PEM text. A store that yields none is a
/// configuration error pointing at `ca_file`; one unreadable file among many is not.
fn system_roots_pem() -> Result<Vec<u8>, ConfigError> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(|| "it is empty".to_string(), |e| e.to_string());
        return Err(ConfigError::new(
            "ca_file",
            format!("no `ca_file`, and the system's trusted CA certificates cannot be read ({why}): give the CA file"),
        ));
    }
    let pems: Vec<pem::Pem> = found
        .certs
        .iter()
        .map(|der| pem::Pem::new("CERTIFICATE", der.as_ref()))
        .collect();
    Ok(pem::encode_many(&pems).into_bytes())
}

/// rustls's `ClientConfig::builder()`, which the redis client calls for every
/// connection, panics when the build enables two crypto providers (ours, `ring`, and an
/// application's `aws-lc-rs`) and none is the process default. With one provider it
/// installs that one itself, so installing `ring` when there is none changes nothing
/// else; an application's own choice, installed first, is kept.
fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a default exists either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::new(field, format!("cannot read `{}`: {e}", path.display())))
}

/// The file's bytes, once they are known to hold at least one PEM certificate and
/// nothing malformed.
fn certificate_pem(field: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let pem = read(field, path)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| {
            ConfigError::new(
                field,
                format!("`{}` is not a PEM certificate file: {e}", path.display()),
            )
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(ConfigError::new(
            field,
            format!("`{}` holds no PEM certificate", path.display()),
        ));
    }
    Ok(pem)
}

fn key_pem(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let pem = read("key_file", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        ConfigError::new(
            "key_file",
            format!("`{}` holds no PEM private key: {e}", path.display()),
        )
    })?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_and_malformed_files_name_their_key() {
        let dir = std::env::temp_dir().join(format!("bw-fleet-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let base = FleetConfig::new("rediss://127.0.0.1:6379");

        let e = certificates(&base.clone().with_ca_file(Some(dir.join("absent.pem")))).unwrap_err();
        assert_eq!(e.field, "ca_file");
        assert!(e.reason.contains("cannot read"), "{e}");
        let e = certificates(&base.clone().with_ca_file(Some(junk.clone()))).unwrap_err();
        assert_eq!(e.field, "ca_file");
        assert!(e.reason.contains("no PEM certificate"), "{e}");
        let e = certificates(
            &base
                .clone()
                .with_cert_file(Some(junk.clone()))
                .with_key_file(Some(junk.clone())),
        )
        .unwrap_err();
        assert_eq!(e.field, "cert_file");
        // Without files: the system's CAs, no client certificate; a machine without a
        // CA store is told to give `ca_file`.
        match certificates(&base) {
            Ok(none) => assert!(none.root_cert.is_some() && none.client_tls.is_none()),
            Err(e) => assert_eq!(e.field, "ca_file", "{e}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
