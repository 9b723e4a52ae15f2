//! Who may do what on Pulse's NATS.
//!
//! Pulse's NATS server carries messages between parties that do not trust each other: the
//! operator's coordinator, hospitals' proving workers, clinics' client software, and the
//! people who watch the cluster. This crate makes each of them able to do exactly its job:
//!
//! - [`Role`] and [`permissions`]: the subject and JetStream-API permissions of each role,
//!   as nats-server enforces them (an allow list per user; everything else is refused by
//!   the server, not merely avoided by Pulse's code).
//! - [`Credentials`]: one NKey per user (Ed25519, the `nkeys` crate), kept in a file of mode
//!   0600 that names the role and user beside the seed. The seed never appears in argv,
//!   logs or errors: `Debug` and `Display` redact it.
//! - [`Deployment`]: a directory holding the list of users (public keys only), the TLS
//!   material and the generated `nats-server.conf`. Adding or revoking a worker is one call
//!   (`pulse nats worker add|revoke`) plus a configuration reload of nats-server.
//! - [`tls`]: a private CA and a server certificate for loopback or a named host, made with
//!   `rcgen`, for development clusters; production passes the operator's own files.
//! - [`NatsEndpoint`]: the URL, CA and credentials a component connects with.
//!
//! Each user's replies arrive on an inbox prefix of its own (`_INBOX_<user>`), and may only
//! be read by that user: with the shared `_INBOX.>` a client could read the proving jobs
//! delivered to the workers.

#![forbid(unsafe_code)]

mod credentials;
mod deployment;
mod endpoint;
mod permissions;
pub mod tls;

pub use credentials::{CREDENTIALS_VERSION, Credentials};
pub use deployment::{Deployment, DeploymentOptions, ServerTls, User};
pub use endpoint::{NatsEndpoint, connect_error_hint};
pub use permissions::{Permissions, Role, inbox_prefix, permissions, validate_user_name};

/// What went wrong with credentials, a deployment directory or a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A credentials file is malformed.
    #[error(
        "{path} is not a Pulse NATS credentials file ({reason}); ask the cluster's operator for a new one (`pulse nats worker add NAME`)"
    )]
    BadCredentials {
        /// The file.
        path: String,
        /// What is wrong, without the secret.
        reason: String,
    },
    /// A credentials file others may read.
    #[error(
        "{path} can be read by other users (mode {mode:o}); it holds a secret key: run `chmod 600 {path}`"
    )]
    OpenPermissions {
        /// The file.
        path: String,
        /// Its mode bits.
        mode: u32,
    },
    /// A user name that cannot be used.
    #[error(
        "`{name}` cannot name a NATS user: use 1 to 64 letters, digits, '-' or '_' (it becomes part of NATS subjects)"
    )]
    BadUserName {
        /// The name, cut short.
        name: String,
    },
    /// A user that exists already.
    #[error(
        "the deployment already has a {role} user `{name}`; revoke it first or pick another name"
    )]
    UserExists {
        /// Its role.
        role: Role,
        /// Its name.
        name: String,
    },
    /// A user that does not exist.
    #[error("the deployment has no {role} user `{name}` (users: {known})")]
    NoSuchUser {
        /// Its role.
        role: Role,
        /// Its name.
        name: String,
        /// The names it has.
        known: String,
    },
    /// The deployment directory is malformed or of another version.
    #[error("{path}: {reason}")]
    BadDeployment {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Making a key or certificate failed.
    #[error("making {what}: {reason}")]
    Crypto {
        /// What was being made.
        what: &'static str,
        /// The cause.
        reason: String,
    },
    /// Connecting to NATS failed.
    #[error("connecting to NATS at {url}: {reason}")]
    Connect {
        /// The servers.
        url: String,
        /// The cause, with what to do.
        reason: String,
    },
}

pub(crate) fn io_error(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> AccessError {
    let path = path.display().to_string();
    move |source| AccessError::Io {
        action,
        path,
        source,
    }
}
