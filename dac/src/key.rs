//! A member's X25519 key: made by `MemberKey::generate`, kept in a file only its owner
//! may read, never printed (its `Debug` shows the public key only).

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::DacError;

/// The key file's format version.
pub const KEY_VERSION: u32 = 1;
const KIND: &str = "pulse-committee-key";

/// A committee member's secret key, with its name.
pub struct MemberKey {
    name: String,
    secret: StaticSecret,
}

impl fmt::Debug for MemberKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberKey")
            .field("name", &self.name)
            .field("public", &self.public_hex())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    kind: String,
    name: String,
    secret: String,
}

impl MemberKey {
    /// A fresh key for member `name`.
    pub fn generate(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            secret: StaticSecret::random_from_rng(rand::rngs::OsRng),
        }
    }

    /// The key of member `name` with secret `bytes` (fixtures and tests; deployments use
    /// [`MemberKey::generate`]).
    pub fn from_bytes(name: &str, bytes: [u8; 32]) -> Self {
        Self {
            name: name.to_owned(),
            secret: StaticSecret::from(bytes),
        }
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey::from(&self.secret)
    }

    /// The public key, hex, as `committee.json` lists it.
    pub fn public_hex(&self) -> String {
        hex::encode(self.public().as_bytes())
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }

    /// Writes the key to a new file only its owner may read (mode 0600).
    ///
    /// # Errors
    /// [`DacError::Key`]: the file exists, or cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), DacError> {
        let err = |reason: String| DacError::Key {
            path: path.display().to_string(),
            reason,
        };
        let file = KeyFile {
            version: KEY_VERSION,
            kind: KIND.to_owned(),
            name: self.name.clone(),
            secret: hex::encode(self.secret.as_bytes()),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&file).unwrap_or_default());
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                err(format!(
                    "creating it: {e} (a key file is never overwritten)"
                ))
            })?;
        out.write_all(text.as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(|e| err(format!("writing it: {e}")))
    }

    /// Reads a key file, refusing one that others may read.
    ///
    /// # Errors
    /// [`DacError::Key`] naming what is wrong; the message never quotes the key.
    pub fn load(path: &Path) -> Result<Self, DacError> {
        let err = |reason: String| DacError::Key {
            path: path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(err(format!(
                "others may read it (mode {:o}): chmod 600 it",
                meta.permissions().mode() & 0o777
            )));
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        let file: KeyFile = serde_json::from_str(&text).map_err(|_| {
            err("not a committee key file (JSON with version, kind, name, secret)".into())
        })?;
        let secret = Zeroizing::new(file.secret);
        if file.version != KEY_VERSION || file.kind != KIND {
            return Err(err(format!(
                "a {:?} file of version {}, not a {KIND} of version {KEY_VERSION}",
                file.kind, file.version
            )));
        }
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
            hex::decode(secret.as_str())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| err("its secret is not 64 hex digits".into()))?,
        );
        Ok(Self {
            name: file.name,
            secret: StaticSecret::from(*bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_private_and_never_quoted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("st-mary.key");
        let k = MemberKey::generate("st-mary");
        k.save(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read");
        let secret = serde_json::from_str::<serde_json::Value>(&text).expect("json")["secret"]
            .as_str()
            .expect("secret")
            .to_owned();
        assert!(
            !format!("{k:?}").contains(&secret),
            "Debug shows the secret"
        );
        let back = MemberKey::load(&path).expect("load");
        assert_eq!(back.public_hex(), k.public_hex());
        assert_eq!(back.name(), "st-mary");
        assert!(k.save(&path).is_err(), "a key file is never overwritten");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = MemberKey::load(&path)
            .expect_err("readable by others")
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, text.replace(&secret, &"g".repeat(64))).expect("write");
        let e = MemberKey::load(&path).expect_err("bad secret").to_string();
        assert!(
            e.contains("not 64 hex digits") && !e.contains(&secret),
            "{e}"
        );
    }
}
