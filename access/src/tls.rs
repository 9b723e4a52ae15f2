//! TLS material for a development or test cluster: a private CA and a server certificate
//! signed by it, made with `rcgen` (ECDSA P-256).
//!
//! The CA's private key is never written: once the server certificate is signed it is
//! dropped, so nobody can mint another certificate this CA vouches for. Production
//! deployments pass the operator's own CA and server certificate instead
//! ([`crate::ServerTls`]).

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::{AccessError, io_error};

/// The files a server needs for TLS, and the CA its clients check it against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate (PEM) clients verify the server with.
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM, mode 0600).
    pub key: PathBuf,
}

fn crypto(what: &'static str) -> impl FnOnce(rcgen::Error) -> AccessError {
    move |e| AccessError::Crypto {
        what,
        reason: e.to_string(),
    }
}

/// Makes a CA and a server certificate for `hosts` (IP addresses or DNS names) in `dir`:
/// `ca.pem`, `server.pem`, `server-key.pem`.
///
/// # Errors
/// [`AccessError::Crypto`], [`AccessError::Io`].
pub fn make_dev_tls(dir: &Path, hosts: &[String]) -> Result<TlsFiles, AccessError> {
    std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(crypto("the CA"))?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Pulse cluster CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(crypto("the CA key"))?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(crypto("the CA certificate"))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(crypto("the server certificate"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Pulse NATS server");
    for host in hosts {
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.clone()
                    .try_into()
                    .map_err(crypto("the server certificate's host name"))?,
            ),
        };
        params.subject_alt_names.push(san);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(crypto("the server key"))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(crypto("the server certificate"))?;

    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    };
    write_file(&files.ca, ca_cert.pem().as_bytes(), 0o644)?;
    write_file(&files.cert, cert.pem().as_bytes(), 0o644)?;
    write_file(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(files)
}

/// Writes `bytes` to `path` with `mode`, replacing what was there.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AccessError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_error("creating", &tmp))?;
    out.write_all(bytes)
        .and_then(|()| out.sync_all())
        .map_err(io_error("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error("moving into place", path))
}
