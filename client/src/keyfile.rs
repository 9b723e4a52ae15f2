//! Key files: a user's BabyJubJub EdDSA private key, and its account id once registered.
//!
//! ```json
//! {
//!   "version": 1,
//!   "kind": "pulse-key",
//!   "private_key": "<64 hex digits>",
//!   "account": null
//! }
//! ```
//!
//! The key signs the user's transactions and unwraps the records shared with the user, so
//! the file is private: it is written with mode `0600` (on Unix), atomically (a temporary
//! file in the same directory, synced, then renamed into place, so a crash leaves the old
//! file or the new one, never half of one), and [`KeyFile::load`] refuses a file that other
//! users may read or write. Nothing here prints the key: `Debug` redacts it and no error
//! message quotes the file's content.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use pulse_circuits::eddsa::{PrivateKey, PublicKey};
use rand::{CryptoRng, RngCore};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// The key-file format version.
pub const KEY_FILE_VERSION: u64 = 1;
/// The key file's `kind`.
pub const KEY_FILE_KIND: &str = "pulse-key";
/// The largest key file read (a real one is under 200 bytes).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Whether [`KeyFile::save`] may replace an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse when the path exists (the default for a new key: never destroy one).
    Refuse,
    /// Replace the file (to record the account id after registration, say).
    Replace,
}

/// A user's private key and account. `Debug` shows the account, never the key.
#[derive(Clone)]
pub struct KeyFile {
    key: PrivateKey,
    account: Option<u64>,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("private_key", &"<redacted>")
            .field("account", &self.account)
            .finish()
    }
}

impl KeyFile {
    /// A fresh key, not yet registered.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self {
            key: PrivateKey::random(rng),
            account: None,
        }
    }

    /// A key file for an existing key.
    pub fn new(key: PrivateKey, account: Option<u64>) -> Self {
        Self { key, account }
    }

    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// The public key (what `Register` publishes and records are wrapped for).
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The account id, once registered.
    pub fn account(&self) -> Option<u64> {
        self.account
    }

    /// Records the account id the registration receipt gave; save the file afterwards
    /// with [`Overwrite::Replace`].
    pub fn set_account(&mut self, account: u64) {
        self.account = Some(account);
    }

    /// The JSON form. It holds the private key: write it only where [`KeyFile::save`]
    /// would.
    pub fn to_json(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.key.to_bytes());
        let hex = Zeroizing::new(hex::encode(bytes.as_slice()));
        let account = self
            .account
            .map_or_else(|| "null".to_owned(), |a| a.to_string());
        // Built by hand into one allocation, so no resized copy of the key is left behind.
        let mut out = Zeroizing::new(String::with_capacity(160));
        for part in [
            "{\n  \"version\": ",
            &KEY_FILE_VERSION.to_string(),
            ",\n  \"kind\": \"",
            KEY_FILE_KIND,
            "\",\n  \"private_key\": \"",
            hex.as_str(),
            "\",\n  \"account\": ",
            &account,
            "\n}\n",
        ] {
            out.push_str(part);
        }
        out
    }

    /// Reads the JSON form.
    ///
    /// # Errors
    /// [`KeyFileError::Malformed`] or [`KeyFileError::UnsupportedVersion`] (with `path`
    /// empty; [`KeyFile::load`] fills it in). No message quotes the input.
    pub fn from_json(text: &str) -> Result<Self, KeyFileError> {
        parse(text).map_err(|reason| reason.at(Path::new("")))
    }

    /// Reads a key file, refusing one that other users may read or write.
    ///
    /// # Errors
    /// [`KeyFileError::Io`], [`KeyFileError::InsecurePermissions`] (with the `chmod` that
    /// fixes it), [`KeyFileError::TooLarge`], [`KeyFileError::Malformed`],
    /// [`KeyFileError::UnsupportedVersion`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyFileError> {
        let path = path.as_ref();
        let io = |action: &'static str| {
            move |source| KeyFileError::Io {
                action,
                path: path.to_owned(),
                source,
            }
        };
        let file = File::open(path).map_err(io("open"))?;
        let meta = file.metadata().map_err(io("inspect"))?;
        if !meta.is_file() {
            return Err(KeyFileError::Malformed {
                path: path.to_owned(),
                reason: "not a regular file".to_owned(),
            });
        }
        check_private(path, &meta)?;
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(KeyFileError::TooLarge {
                path: path.to_owned(),
                limit: MAX_KEY_FILE_BYTES,
            });
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io("read"))?;
        if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(KeyFileError::TooLarge {
                path: path.to_owned(),
                limit: MAX_KEY_FILE_BYTES,
            });
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| KeyFileError::Malformed {
            path: path.to_owned(),
            reason: "not UTF-8 text".to_owned(),
        })?;
        parse(text).map_err(|reason| reason.at(path))
    }

    /// Writes the key file with mode `0600`, atomically.
    ///
    /// # Errors
    /// [`KeyFileError::Exists`] when `path` exists and `overwrite` is
    /// [`Overwrite::Refuse`]; [`KeyFileError::Io`] when the directory is missing or not
    /// writable, or the disk fails.
    pub fn save(&self, path: impl AsRef<Path>, overwrite: Overwrite) -> Result<(), KeyFileError> {
        let path = path.as_ref();
        let io = |action: &'static str| {
            move |source| KeyFileError::Io {
                action,
                path: path.to_owned(),
                source,
            }
        };
        if overwrite == Overwrite::Refuse && path.symlink_metadata().is_ok() {
            return Err(KeyFileError::Exists {
                path: path.to_owned(),
            });
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // tempfile creates the file with mode 0600 on Unix, before anything is written.
        let mut tmp = tempfile::Builder::new()
            .prefix(".pulse-key-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io("create a temporary file next to"))?;
        restrict(tmp.as_file()).map_err(io("set permissions for"))?;
        tmp.write_all(self.to_json().as_bytes())
            .map_err(io("write"))?;
        tmp.as_file().sync_all().map_err(io("sync"))?;
        match overwrite {
            Overwrite::Refuse => tmp.persist_noclobber(path).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyFileError::Exists {
                        path: path.to_owned(),
                    }
                } else {
                    io("rename into")(e.error)
                }
            })?,
            Overwrite::Replace => tmp.persist(path).map_err(|e| io("rename into")(e.error))?,
        };
        // Make the rename itself durable (best effort where directories cannot be synced).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path, _: &std::fs::Metadata) -> Result<(), KeyFileError> {
    Ok(())
}

#[cfg(unix)]
fn restrict(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_: &File) -> std::io::Result<()> {
    Ok(())
}

/// A parse failure before the path is known.
enum ParseFailure {
    Malformed(String),
    Version(u64),
}

impl ParseFailure {
    fn at(self, path: &Path) -> KeyFileError {
        match self {
            Self::Malformed(reason) => KeyFileError::Malformed {
                path: path.to_owned(),
                reason,
            },
            Self::Version(found) => KeyFileError::UnsupportedVersion {
                path: path.to_owned(),
                found,
            },
        }
    }
}

/// Reads the fields by hand: serde's messages can quote the input, which here is a key.
fn parse(text: &str) -> Result<KeyFile, ParseFailure> {
    let bad = |s: &str| ParseFailure::Malformed(s.to_owned());
    // The error names the key (a field name), never a value.
    pulse_circuits::json::check_unique_keys_str(text)
        .map_err(|e| ParseFailure::Malformed(e.to_string()))?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ParseFailure::Malformed(format!(
            "not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(mut obj) = value else {
        return Err(bad("not a JSON object"));
    };
    match obj.get("version").map(Value::as_u64) {
        Some(Some(KEY_FILE_VERSION)) => {}
        Some(Some(found)) => return Err(ParseFailure::Version(found)),
        Some(None) => return Err(bad("`version` is not a number")),
        None => return Err(bad("missing field `version`")),
    }
    if obj.get("kind").and_then(Value::as_str) != Some(KEY_FILE_KIND) {
        return Err(bad(
            "`kind` is not \"pulse-key\": this is not a Pulse key file",
        ));
    }
    let key = take_key(&mut obj)?;
    let account = match obj.get("account") {
        None => return Err(bad("missing field `account` (null before registration)")),
        Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(0) => return Err(bad("`account` is 0; account ids start at 1")),
            Some(a) => Some(a),
            None => return Err(bad("`account` is neither null nor an account id")),
        },
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "version" | "kind" | "account"))
    {
        let name: String = unknown.chars().take(40).collect();
        return Err(ParseFailure::Malformed(format!("unknown field `{name}`")));
    }
    Ok(KeyFile { key, account })
}

fn take_key(obj: &mut Map<String, Value>) -> Result<PrivateKey, ParseFailure> {
    let bad = |s: &str| ParseFailure::Malformed(s.to_owned());
    match obj.remove("private_key") {
        Some(Value::String(s)) => {
            let s = Zeroizing::new(s);
            PrivateKey::from_hex(&s)
                .map_err(|_| bad("`private_key` is not 32 bytes written as 64 hexadecimal digits"))
        }
        Some(_) => Err(bad("`private_key` is not a string")),
        None => Err(bad("missing field `private_key`")),
    }
}

/// Why a key file could not be read or written. No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file system refused.
    #[error("cannot {action} the key file {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The key file.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// Other users may read or write the file.
    #[error(
        "the key file {} has mode {mode:03o}, so other users may read or change it; \
         run `chmod 600 {}` (and consider the key exposed if others could read it)",
        path.display(),
        path.display()
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Saving would replace an existing file.
    #[error(
        "{} already exists; refusing to overwrite a key file (move it away first, or \
         replace it explicitly)",
        path.display()
    )]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// Far larger than a key file.
    #[error("{} is over {limit} bytes: not a Pulse key file", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Another format version.
    #[error(
        "the key file {} is version {found}; this client reads version {KEY_FILE_VERSION}: \
         upgrade the client",
        path.display()
    )]
    UnsupportedVersion {
        /// The path.
        path: PathBuf,
        /// The version found.
        found: u64,
    },
    /// Not the documented shape.
    #[error("the key file {} is malformed: {reason}", path.display())]
    Malformed {
        /// The path.
        path: PathBuf,
        /// What is wrong (never the content).
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(0x4E7F)
    }

    fn same(a: &KeyFile, b: &KeyFile) -> bool {
        a.key.to_bytes() == b.key.to_bytes() && a.account == b.account
    }

    #[test]
    fn json_round_trip_and_redaction() {
        let mut kf = KeyFile::generate(&mut rng());
        let hex = hex::encode(kf.key.to_bytes());
        let json = kf.to_json();
        assert_eq!(
            json.as_str(),
            format!(
                "{{\n  \"version\": 1,\n  \"kind\": \"pulse-key\",\n  \"private_key\": \
                 \"{hex}\",\n  \"account\": null\n}}\n"
            )
        );
        assert!(same(&KeyFile::from_json(&json).unwrap(), &kf));
        kf.set_account(42);
        let back = KeyFile::from_json(&kf.to_json()).unwrap();
        assert!(same(&back, &kf));
        assert_eq!(back.account(), Some(42));
        assert_eq!(back.public_key(), kf.private_key().public_key());

        let debug = format!("{kf:?}");
        assert!(
            !debug.contains(&hex) && !debug.contains(&hex[..8]),
            "{debug}"
        );
        assert!(
            debug.contains("redacted") && debug.contains("42"),
            "{debug}"
        );
    }

    #[test]
    fn malformed_files_are_refused_without_quoting_them() {
        let kf = KeyFile::generate(&mut rng());
        let hex = hex::encode(kf.key.to_bytes());
        let good: Value = serde_json::from_str(&kf.to_json()).unwrap();
        let parse = |f: &dyn Fn(&mut Map<String, Value>)| {
            let mut v = good.clone();
            f(v.as_object_mut().unwrap());
            KeyFile::from_json(&v.to_string())
                .map_err(|e| e.to_string())
                .map(|_| ())
        };
        assert!(parse(&|_| {}).is_ok());
        type Edit = Box<dyn Fn(&mut Map<String, Value>)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "version 2",
                Box::new(|o| drop(o.insert("version".into(), 2.into()))),
            ),
            (
                "`kind`",
                Box::new(|o| drop(o.insert("kind".into(), "pulse-record".into()))),
            ),
            (
                "unknown field `extra`",
                Box::new(|o| drop(o.insert("extra".into(), 1.into()))),
            ),
            (
                "missing field `account`",
                Box::new(|o| drop(o.remove("account"))),
            ),
            (
                "account ids start at 1",
                Box::new(|o| drop(o.insert("account".into(), 0.into()))),
            ),
            (
                "neither null",
                Box::new(|o| drop(o.insert("account".into(), "7".into()))),
            ),
            ("64 hexadecimal", {
                let short = hex[..62].to_owned();
                Box::new(move |o| drop(o.insert("private_key".into(), short.clone().into())))
            }),
            (
                "not a string",
                Box::new(|o| drop(o.insert("private_key".into(), 12345.into()))),
            ),
            (
                "missing field `private_key`",
                Box::new(|o| drop(o.remove("private_key"))),
            ),
        ];
        for (expected, f) in cases {
            let err = parse(&*f).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
            assert!(!err.contains(&hex[..16]), "{err}");
        }
        let err = KeyFile::from_json(&format!("{{\"private_key\": \"{hex}\"")).unwrap_err();
        assert!(!err.to_string().contains(&hex[..16]), "{err}");
        // Two keys in one file: which one would be used is not for a parser to decide.
        let two = kf.to_json().replacen(
            "\"private_key\":",
            &format!("\"private_key\":\"{hex}\",\"private_key\":"),
            1,
        );
        let err = KeyFile::from_json(&two).unwrap_err().to_string();
        assert!(err.contains("has the key \"private_key\" twice"), "{err}");
        assert!(!err.contains(&hex[..16]), "{err}");
        assert!(KeyFile::from_json("[]").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn saved_private_refused_when_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("me.key");
        let mut kf = KeyFile::generate(&mut rng());
        kf.save(&path, Overwrite::Refuse).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(same(&KeyFile::load(&path).unwrap(), &kf));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // Never overwritten by accident.
        let other = KeyFile::generate(&mut rng());
        let err = other.save(&path, Overwrite::Refuse).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err}");
        assert!(same(&KeyFile::load(&path).unwrap(), &kf));
        kf.set_account(9);
        kf.save(&path, Overwrite::Replace).unwrap();
        assert_eq!(KeyFile::load(&path).unwrap().account(), Some(9));

        for loose in [0o644, 0o640, 0o604, 0o660, 0o700 | 0o002] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
            let err = KeyFile::load(&path).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, KeyFileError::InsecurePermissions { mode, .. } if mode == loose),
                "{text}"
            );
            assert!(
                text.contains(&format!("chmod 600 {}", path.display())),
                "{text}"
            );
        }
        // Replacing a loose file leaves a private one.
        kf.save(&path, Overwrite::Replace).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(KeyFile::load(&path).is_ok());

        let missing = KeyFile::load(dir.path().join("nope.key")).unwrap_err();
        assert!(matches!(missing, KeyFileError::Io { .. }), "{missing}");
        let nodir = kf
            .save(dir.path().join("no/such/dir.key"), Overwrite::Refuse)
            .unwrap_err();
        assert!(matches!(nodir, KeyFileError::Io { .. }), "{nodir}");

        let big = dir.path().join("big.key");
        std::fs::write(&big, vec![b' '; MAX_KEY_FILE_BYTES as usize + 1]).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            KeyFile::load(&big),
            Err(KeyFileError::TooLarge { .. })
        ));
    }
}
