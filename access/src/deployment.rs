//! A deployment's NATS access, kept in one directory:
//!
//! ```text
//! DIR/access.json              the users (role, name, public NKey) and the TLS files
//! DIR/nats-server.conf         generated from access.json: accounts, users, permissions, TLS
//! DIR/credentials/ROLE-NAME.json  each user's credentials (mode 0600), to hand out
//! DIR/tls/                     the development CA and server certificate, when made here
//! ```
//!
//! `access.json` holds no secret. Revoking a user removes it from `access.json`, deletes its
//! credentials file and rewrites `nats-server.conf`; after nats-server reloads its
//! configuration (`nats-server --signal reload`, or SIGHUP) that user's connections are
//! closed and the others stay.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::credentials::Credentials;
use crate::permissions::{Role, permissions, validate_user_name};
use crate::tls::{TlsFiles, make_dev_tls, write_file};
use crate::{AccessError, io_error};

const ACCESS_FILE: &str = "access.json";
const CONFIG_FILE: &str = "nats-server.conf";
const ACCESS_VERSION: u32 = 1;
/// The account holding every Pulse user but the operators.
pub const PULSE_ACCOUNT: &str = "PULSE";
/// The system account, where operators monitor the server.
pub const SYSTEM_ACCOUNT: &str = "SYS";

/// One user of the deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Its role.
    pub role: Role,
    /// Its name (a worker's id for workers).
    pub name: String,
    /// Its public NKey.
    pub public_key: String,
}

/// Where the server's TLS material comes from.
#[derive(Clone, Debug)]
pub enum ServerTls {
    /// Make a private CA and a server certificate for these hosts (IPs or DNS names).
    Dev {
        /// The names the server is reached by.
        hosts: Vec<String>,
    },
    /// The operator's own CA and server certificate.
    Files(TlsFiles),
    /// No TLS: only to measure what TLS costs, on loopback.
    Off,
}

/// How [`Deployment::init`] sets a deployment up.
#[derive(Clone, Debug)]
pub struct DeploymentOptions {
    /// TLS for the client port.
    pub tls: ServerTls,
    /// Worker users to create (one per hospital machine; their worker ids).
    pub workers: Vec<String>,
    /// Client users to create beside `client`.
    pub clients: Vec<String>,
    /// `host:port` for the configuration's `listen`, if the configuration should carry it.
    pub listen: Option<String>,
    /// The JetStream store directory, if the configuration should carry it.
    pub store_dir: Option<PathBuf>,
}

impl Default for DeploymentOptions {
    fn default() -> Self {
        Self {
            tls: ServerTls::Dev {
                hosts: vec!["127.0.0.1".into(), "localhost".into()],
            },
            workers: Vec::new(),
            clients: Vec::new(),
            listen: None,
            store_dir: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    version: u32,
    tls: Option<TlsPaths>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store_dir: Option<PathBuf>,
    users: Vec<User>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsPaths {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A deployment's NATS access directory.
#[derive(Clone, Debug)]
pub struct Deployment {
    dir: PathBuf,
    file: AccessFile,
}

impl Deployment {
    /// Sets up a deployment in `dir`: TLS, the `coordinator`, `operator` and `client` users,
    /// the workers and clients named in `options`, their credentials files and the server
    /// configuration.
    ///
    /// # Errors
    /// [`AccessError`]: a directory that already holds a deployment, a bad name, I/O.
    pub fn init(dir: &Path, options: &DeploymentOptions) -> Result<Self, AccessError> {
        let access = dir.join(ACCESS_FILE);
        if access.exists() {
            return Err(AccessError::BadDeployment {
                path: access.display().to_string(),
                reason: "a deployment is already set up here; add or revoke users with `pulse nats worker add|revoke`, or choose another directory".into(),
            });
        }
        for name in options.workers.iter().chain(&options.clients) {
            validate_user_name(name)?;
        }
        std::fs::create_dir_all(dir.join("credentials"))
            .map_err(io_error("creating", &dir.join("credentials")))?;
        let dir = std::fs::canonicalize(dir).map_err(io_error("resolving", dir))?;
        let tls = match &options.tls {
            ServerTls::Dev { hosts } => Some(make_dev_tls(&dir.join("tls"), hosts)?),
            ServerTls::Files(files) => Some(files.clone()),
            ServerTls::Off => None,
        };
        let mut deployment = Self {
            dir,
            file: AccessFile {
                version: ACCESS_VERSION,
                tls: tls.map(|t| TlsPaths {
                    ca: t.ca,
                    cert: t.cert,
                    key: t.key,
                }),
                listen: options.listen.clone(),
                store_dir: options.store_dir.clone(),
                users: Vec::new(),
            },
        };
        let mut wanted = vec![
            (Role::Coordinator, "coordinator".to_owned()),
            (Role::Operator, "operator".to_owned()),
            (Role::Client, "client".to_owned()),
        ];
        wanted.extend(options.clients.iter().map(|n| (Role::Client, n.clone())));
        wanted.extend(options.workers.iter().map(|n| (Role::Worker, n.clone())));
        for (role, name) in wanted {
            deployment.insert(role, &name)?;
        }
        deployment.save()?;
        Ok(deployment)
    }

    /// Opens the deployment in `dir`.
    ///
    /// # Errors
    /// [`AccessError::Io`], [`AccessError::BadDeployment`].
    pub fn open(dir: &Path) -> Result<Self, AccessError> {
        let path = dir.join(ACCESS_FILE);
        let text = std::fs::read_to_string(&path).map_err(io_error("reading", &path))?;
        let bad = |reason: String| AccessError::BadDeployment {
            path: path.display().to_string(),
            reason,
        };
        let file: AccessFile = serde_json::from_str(&text)
            .map_err(|e| bad(format!("{e}; it is written by `pulse nats init`")))?;
        if file.version != ACCESS_VERSION {
            return Err(bad(format!(
                "version {} (this Pulse reads version {ACCESS_VERSION})",
                file.version
            )));
        }
        let dir = std::fs::canonicalize(dir).map_err(io_error("resolving", dir))?;
        Ok(Self { dir, file })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The generated nats-server configuration.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// The CA certificate clients verify the server with (`None` when TLS is off).
    pub fn ca_path(&self) -> Option<&Path> {
        self.file.tls.as_ref().map(|t| t.ca.as_path())
    }

    /// Where a user's credentials file is (or was) written.
    pub fn credentials_path(&self, role: Role, name: &str) -> PathBuf {
        self.dir
            .join("credentials")
            .join(format!("{}-{name}.json", role.name()))
    }

    /// The users.
    pub fn users(&self) -> &[User] {
        &self.file.users
    }

    /// Adds a user, writes its credentials file (mode 0600) and the server configuration;
    /// returns the credentials file. The server takes the user at its next reload.
    ///
    /// # Errors
    /// [`AccessError::UserExists`], [`AccessError::BadUserName`], I/O.
    pub fn add_user(&mut self, role: Role, name: &str) -> Result<PathBuf, AccessError> {
        let path = self.insert(role, name)?;
        self.save()?;
        Ok(path)
    }

    /// Revokes a user: removes it, deletes its credentials file here, and rewrites the
    /// server configuration. Its connections are closed at the server's next reload.
    ///
    /// # Errors
    /// [`AccessError::NoSuchUser`], I/O.
    pub fn revoke(&mut self, role: Role, name: &str) -> Result<(), AccessError> {
        let before = self.file.users.len();
        self.file
            .users
            .retain(|u| !(u.role == role && u.name == name));
        if self.file.users.len() == before {
            let known: Vec<&str> = self
                .file
                .users
                .iter()
                .filter(|u| u.role == role)
                .map(|u| u.name.as_str())
                .collect();
            return Err(AccessError::NoSuchUser {
                role,
                name: name.to_owned(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
        let creds = self.credentials_path(role, name);
        if creds.exists() {
            std::fs::remove_file(&creds).map_err(io_error("removing", &creds))?;
        }
        self.save()
    }

    fn insert(&mut self, role: Role, name: &str) -> Result<PathBuf, AccessError> {
        validate_user_name(name)?;
        if self
            .file
            .users
            .iter()
            .any(|u| u.role == role && u.name == name)
        {
            return Err(AccessError::UserExists {
                role,
                name: name.to_owned(),
            });
        }
        let creds = Credentials::generate(role, name)?;
        let path = self.credentials_path(role, name);
        creds.save(&path)?;
        self.file.users.push(User {
            role,
            name: name.to_owned(),
            public_key: creds.public_key().to_owned(),
        });
        Ok(path)
    }

    fn save(&self) -> Result<(), AccessError> {
        let access = self.dir.join(ACCESS_FILE);
        let text =
            serde_json::to_vec_pretty(&self.file).map_err(|e| AccessError::BadDeployment {
                path: access.display().to_string(),
                reason: e.to_string(),
            })?;
        write_file(&access, &text, 0o644)?;
        write_file(&self.config_path(), self.server_config().as_bytes(), 0o644)
    }

    /// The nats-server configuration (JSON, which nats-server's configuration format
    /// accepts): TLS on the client port, the Pulse account with JetStream and every user
    /// but the operators with their permissions, and the system account with the
    /// operators. There is no anonymous user.
    pub fn server_config(&self) -> String {
        let user = |u: &User| {
            let p = permissions(u.role, &u.name);
            json!({
                "nkey": u.public_key,
                "permissions": {
                    "publish": { "allow": p.publish },
                    "subscribe": { "allow": p.subscribe },
                },
            })
        };
        let (operators, pulse): (Vec<&User>, Vec<&User>) = self
            .file
            .users
            .iter()
            .partition(|u| u.role == Role::Operator);
        let mut config = json!({
            "system_account": SYSTEM_ACCOUNT,
            "accounts": {
                PULSE_ACCOUNT: {
                    "jetstream": "enabled",
                    "users": pulse.into_iter().map(user).collect::<Vec<_>>(),
                },
                SYSTEM_ACCOUNT: {
                    "users": operators.into_iter().map(user).collect::<Vec<_>>(),
                },
            },
        });
        if let Some(tls) = &self.file.tls {
            config["tls"] = json!({
                "cert_file": tls.cert,
                "key_file": tls.key,
                "ca_file": tls.ca,
                "timeout": 5,
            });
        }
        if let Some(listen) = &self.file.listen {
            config["listen"] = json!(listen);
        }
        if let Some(store) = &self.file.store_dir {
            config["jetstream"] = json!({ "store_dir": store });
        }
        let mut text = String::from(
            "# Generated by Pulse (pulse nats …) from access.json; edits here are overwritten.\n",
        );
        text.push_str(&serde_json::to_string_pretty(&config).unwrap_or_default());
        text.push('\n');
        text
    }
}
