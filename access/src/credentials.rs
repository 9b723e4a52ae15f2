//! A user's NATS credentials: its role, its name and its NKey seed, in a file only its
//! owner may read.
//!
//! ```json
//! { "version": 1, "role": "worker", "user": "hospital-a-gpu1", "nkey_seed": "SU…" }
//! ```
//! The seed is a standard NKey user seed: `jq -r .nkey_seed FILE > FILE.nk` gives a file
//! the `nats` command line takes with `--nkey`.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::permissions::{Role, inbox_prefix, validate_user_name};
use crate::{AccessError, io_error};

/// The version of the credentials file.
pub const CREDENTIALS_VERSION: u32 = 1;

/// The largest credentials file read.
const MAX_FILE_BYTES: u64 = 4096;

/// One user's credentials. `Debug` and `Display` never show the seed.
#[derive(Clone)]
pub struct Credentials {
    role: Role,
    user: String,
    seed: Zeroizing<String>,
    public_key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    version: u32,
    role: Role,
    user: String,
    nkey_seed: String,
}

impl Credentials {
    /// New credentials with a fresh NKey from the operating system's randomness.
    ///
    /// # Errors
    /// [`AccessError::BadUserName`].
    pub fn generate(role: Role, user: &str) -> Result<Self, AccessError> {
        validate_user_name(user)?;
        let pair = nkeys::KeyPair::new_user();
        let seed = pair.seed().map_err(|e| AccessError::Crypto {
            what: "an NKey",
            reason: e.to_string(),
        })?;
        Ok(Self {
            role,
            user: user.to_owned(),
            public_key: pair.public_key(),
            seed: Zeroizing::new(seed),
        })
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The user's name (a worker's id for workers).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The public NKey (`U…`), as the server configuration names the user.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The user's inbox prefix.
    pub fn inbox_prefix(&self) -> String {
        inbox_prefix(self.role, &self.user)
    }

    /// The seed, for the NATS client only.
    pub(crate) fn seed(&self) -> &str {
        &self.seed
    }

    /// Writes the file with mode 0600, replacing one that exists.
    ///
    /// # Errors
    /// [`AccessError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), AccessError> {
        let file = CredentialsFile {
            version: CREDENTIALS_VERSION,
            role: self.role,
            user: self.user.clone(),
            nkey_seed: self.seed.to_string(),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&file).map_err(|e| {
            AccessError::Crypto {
                what: "the credentials file",
                reason: e.to_string(),
            }
        })?);
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_error("creating", &tmp))?;
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.sync_all())
            .map_err(io_error("writing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io_error("moving into place", path))
    }

    /// Reads a credentials file, refusing one that others may read.
    ///
    /// # Errors
    /// [`AccessError::Io`], [`AccessError::OpenPermissions`],
    /// [`AccessError::BadCredentials`] (which never quotes the file's contents).
    pub fn load(path: &Path) -> Result<Self, AccessError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(io_error("reading", path))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AccessError::OpenPermissions { path: shown, mode });
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(AccessError::BadCredentials {
                path: shown,
                reason: format!("it is {} bytes long", meta.len()),
            });
        }
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(io_error("reading", path))?);
        Self::from_json(&text, &shown)
    }

    /// Reads the text of a credentials file; `source` names the file in errors.
    ///
    /// # Errors
    /// [`AccessError::BadCredentials`] (which never quotes the text).
    pub fn from_json(text: &str, source: &str) -> Result<Self, AccessError> {
        let bad = |reason: String| AccessError::BadCredentials {
            path: source.to_owned(),
            reason,
        };
        // serde_json's messages quote offending values: keep only the position.
        let file: CredentialsFile = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let file = Zeroizing::new(file);
        if file.version != CREDENTIALS_VERSION {
            return Err(bad(format!(
                "version {} (this Pulse reads version {CREDENTIALS_VERSION})",
                file.version
            )));
        }
        // Not `validate_user_name`'s error, which quotes the name: a file with its fields
        // mixed up would have its seed printed.
        validate_user_name(&file.user).map_err(|_| {
            bad("its user is not a user name (1 to 64 letters, digits, '-' or '_')".into())
        })?;
        let pair = nkeys::KeyPair::from_seed(&file.nkey_seed)
            .map_err(|_| bad("its nkey_seed is not an NKey seed".into()))?;
        if !file.nkey_seed.starts_with("SU") {
            return Err(bad("its nkey_seed is not a user seed (SU…)".into()));
        }
        Ok(Self {
            role: file.role,
            user: file.user.clone(),
            public_key: pair.public_key(),
            seed: Zeroizing::new(file.nkey_seed.clone()),
        })
    }
}

impl zeroize::Zeroize for CredentialsFile {
    fn zeroize(&mut self) {
        self.nkey_seed.zeroize();
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("role", &self.role)
            .field("user", &self.user)
            .field("public_key", &self.public_key)
            .field("seed", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}` ({})", self.role, self.user, self.public_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_mode_0600_and_no_seed_in_debug() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.json");
        let c = Credentials::generate(Role::Worker, "h1").expect("generate");
        c.save(&path).expect("save");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = Credentials::load(&path).expect("load");
        assert_eq!(back.public_key(), c.public_key());
        assert_eq!(back.role(), Role::Worker);
        assert_eq!(back.user(), "h1");
        let shown = format!("{back:?} {back}");
        assert!(!shown.contains(c.seed()), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn refuses_open_files_and_garbage_without_quoting_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.json");
        let c = Credentials::generate(Role::Client, "clinic").expect("generate");
        c.save(&path).expect("save");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = Credentials::load(&path).expect_err("open file");
        assert!(e.to_string().contains("chmod 600"), "{e}");

        let secret = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU";
        std::fs::write(
            &path,
            format!(
                "{{\"version\":1,\"role\":\"client\",\"user\":\"a\",\"nkey_seed\":\"{secret}x\"}}"
            ),
        )
        .expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = Credentials::load(&path).expect_err("bad seed").to_string();
        assert!(!e.contains(secret), "{e}");
        std::fs::write(&path, format!("{{\"nkey_seed\": {secret}}}")).expect("write");
        let e = Credentials::load(&path).expect_err("bad json").to_string();
        assert!(!e.contains(secret), "{e}");
    }

    /// A file whose `user` field holds its seed (fields mixed up by hand) must not have the
    /// seed quoted by the user-name error.
    #[test]
    fn a_seed_in_the_user_field_is_not_quoted() {
        let secret = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQX.ZIORRBU";
        let text = format!(
            "{{\"version\":1,\"role\":\"client\",\"user\":\"{secret}\",\"nkey_seed\":\"{secret}\"}}"
        );
        let e = Credentials::from_json(&text, "c.json")
            .expect_err("not a user name")
            .to_string();
        assert!(!e.contains(secret), "{e}");
        assert!(e.contains("user name"), "{e}");
    }
}
