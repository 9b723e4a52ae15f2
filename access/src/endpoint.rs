//! Connecting to the cluster's NATS with a role's credentials over verified TLS.

use std::path::PathBuf;

use async_nats::{ConnectErrorKind, ConnectOptions};
use serde::{Deserialize, Serialize};

use crate::AccessError;
use crate::credentials::Credentials;

/// Where a component's NATS is and how it proves who it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatsEndpoint {
    /// The server URLs, separated by commas (`tls://host:4222` or `nats://host:4222`).
    pub url: String,
    /// The CA certificate the server's certificate must chain to. With it the connection
    /// requires TLS and verifies the server; without it the client trusts only the
    /// system's roots (and a plain server is accepted: development only).
    pub ca: Option<PathBuf>,
    /// The credentials file (`pulse nats …` writes them).
    pub credentials: Option<PathBuf>,
}

impl NatsEndpoint {
    /// An endpoint with no TLS CA and no credentials.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca: None,
            credentials: None,
        }
    }

    /// With the CA certificate.
    #[must_use]
    pub fn with_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.ca = Some(ca.into());
        self
    }

    /// With a credentials file.
    #[must_use]
    pub fn with_credentials(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials = Some(path.into());
        self
    }

    /// The server URLs.
    pub fn servers(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Loads the credentials file, if one is named.
    ///
    /// # Errors
    /// As [`Credentials::load`].
    pub fn load_credentials(&self) -> Result<Option<Credentials>, AccessError> {
        self.credentials
            .as_deref()
            .map(Credentials::load)
            .transpose()
    }

    /// Connect options with TLS (when a CA is named), the NKey and the user's own inbox
    /// prefix, on top of `options`.
    ///
    /// # Errors
    /// As [`Credentials::load`]; a CA file that does not exist.
    pub fn apply(&self, mut options: ConnectOptions) -> Result<ConnectOptions, AccessError> {
        if let Some(ca) = &self.ca {
            if !ca.is_file() {
                return Err(AccessError::Io {
                    action: "reading the NATS CA certificate",
                    path: ca.display().to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such file; pass the CA the cluster's operator gave you (--nats-ca)",
                    ),
                });
            }
            options = options.require_tls(true).add_root_certificates(ca.clone());
        }
        if let Some(creds) = self.load_credentials()? {
            options = options
                .nkey(creds.seed().to_owned())
                .custom_inbox_prefix(creds.inbox_prefix());
        }
        Ok(options)
    }

    /// Connects once.
    ///
    /// # Errors
    /// [`AccessError::Connect`] with a hint ([`connect_error_hint`]), or as
    /// [`NatsEndpoint::apply`].
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, AccessError> {
        self.connect_with(ConnectOptions::new().name(name)).await
    }

    /// Connects once with `options` as the base.
    ///
    /// # Errors
    /// As [`NatsEndpoint::connect`].
    pub async fn connect_with(
        &self,
        options: ConnectOptions,
    ) -> Result<async_nats::Client, AccessError> {
        let options = self.apply(options)?;
        options
            .connect(self.servers().as_slice())
            .await
            .map_err(|e| {
                let text = e.to_string();
                // rustls's verdicts come back as I/O errors.
                let hint = if text.contains("certificate") || text.contains("UnknownIssuer") {
                    connect_error_hint(ConnectErrorKind::Tls)
                } else {
                    connect_error_hint(e.kind())
                };
                AccessError::Connect {
                    url: self.url.clone(),
                    reason: format!("{text}{hint}"),
                }
            })
    }
}

/// What to do about a connection error, as a clause to append to its message.
pub fn connect_error_hint(kind: ConnectErrorKind) -> &'static str {
    match kind {
        ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
            "; the server refused these credentials: check --nats-credentials (a file from `pulse nats worker add` / `pulse nats init`), or ask the operator whether they were revoked"
        }
        ConnectErrorKind::Tls => {
            "; TLS failed: pass the cluster's CA certificate with --nats-ca, and check the server's certificate names the host you connect to"
        }
        ConnectErrorKind::ServerParse => "; use a URL such as tls://host:4222",
        _ => "; check the URL, the network, and that nats-server runs",
    }
}
