//! Proving keys in the NATS object store [`KEY_BUCKET`], content-addressed by the SHA-256 of
//! the key file, so that a worker can fetch a key by the `pk_hash` a job names and check
//! that it got exactly that key.
//!
//! A key directory written by `pulse setup` (`pulse_circuits::artifacts::KeyArtifacts::write`)
//! is published as two or three objects:
//!
//! | object name | content |
//! |---|---|
//! | `<pk_hash>` | `proving.key`, byte for byte |
//! | `<pk_hash>.r1cs` | `constraints.r1cs`, byte for byte, when the manifest names its hash |
//! | `<pk_hash>.manifest` | `manifest.json`, byte for byte |
//!
//! [`publish_proving_key`] (the coordinator) puts them there, once; [`fetch_proving_key`]
//! (a worker) downloads them into a local cache directory, hashing while it streams, and
//! refuses anything that does not hash to the name it asked for. The object store's own
//! digest protects the transfer; the SHA-256 check here protects against the wrong content
//! having been published under a name.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::object_store::{ObjectInfo, ObjectMetadata, ObjectStore};
use async_nats::jetstream::{self, context::GetStreamErrorKind, stream::Stream};
use pulse_circuits::artifacts::{
    CONSTRAINTS_FILE, Hash32, MANIFEST_FILE, Manifest, PROVING_KEY_FILE, hash32_from_hex,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::KEY_BUCKET;

/// Suffix of the manifest object's name: `<pk_hash>.manifest`.
pub const MANIFEST_SUFFIX: &str = ".manifest";

/// Suffix of the constraint matrices' object name: `<pk_hash>.r1cs`.
pub const CONSTRAINTS_SUFFIX: &str = ".r1cs";

/// The file in a cached key directory that records that its `proving.key` was hashed and
/// matched the directory's name, so that later runs trust it without hashing it again.
pub const VERIFIED_MARKER: &str = ".verified";

/// How long a download may go without receiving a byte before it is abandoned.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What to tell an operator whose coordinator has not published a key.
const PUBLISH_HINT: &str = "the coordinator has not published this key; is it running with --keys?";

/// Why a proving key could not be published or fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A `pk_hash` that is not 64 hex digits (it names a file, so nothing else is accepted).
    #[error("`{pk_hash}` is not a proving-key hash: {reason}")]
    BadHash {
        /// What was given.
        pk_hash: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is not in the object store.
    #[error("proving key {pk_hash} is not in the NATS object store {KEY_BUCKET}: {PUBLISH_HINT}")]
    NotPublished {
        /// The key's hash.
        pk_hash: String,
    },
    /// The object store itself does not exist.
    #[error(
        "the NATS object store {KEY_BUCKET} does not exist: the coordinator has not set up NATS yet (it creates the streams and buckets when it starts)"
    )]
    NoKeyStore,
    /// The object named by a hash has other content.
    #[error(
        "the object {pk_hash} in {KEY_BUCKET} has SHA-256 {found}, not {expected}: it is corrupt or was replaced; the download was deleted; re-publish the key from the coordinator's key directory"
    )]
    HashMismatch {
        /// The object's name.
        pk_hash: String,
        /// The hash it should have (its name).
        expected: Hash32,
        /// The hash of what was downloaded.
        found: Hash32,
    },
    /// A key directory being published does not agree with its manifest.
    #[error(
        "{}: SHA-256 {found}, but {MANIFEST_FILE} says {expected}; the key directory is corrupt: re-run `pulse setup`",
        path.display()
    )]
    KeyDirMismatch {
        /// The file.
        path: PathBuf,
        /// What the manifest says.
        expected: Hash32,
        /// What the file hashes to.
        found: Hash32,
    },
    /// A manifest that cannot be used.
    #[error("{what}: not a usable key manifest: {reason}")]
    BadManifest {
        /// The file or object.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{}: {source} ({hint})", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// NATS failed or timed out.
    #[error("NATS object store {KEY_BUCKET}: {action}: {reason}; is the NATS server reachable?")]
    Nats {
        /// What was being done.
        action: String,
        /// What the client said.
        reason: String,
    },
}

fn nats(action: impl Into<String>, e: impl std::fmt::Display) -> KeyError {
    KeyError::Nats {
        action: action.into(),
        reason: e.to_string(),
    }
}

fn io_err(path: &Path, hint: &'static str) -> impl FnOnce(io::Error) -> KeyError + use<> {
    let path = path.to_path_buf();
    move |source| KeyError::Io { path, source, hint }
}

/// The object names of a key: `(<pk_hash>, <pk_hash>.manifest)`.
pub fn object_names(pk_hash: &Hash32) -> (String, String) {
    let name = pk_hash.to_hex();
    let manifest = format!("{name}{MANIFEST_SUFFIX}");
    (name, manifest)
}

/// Parses a `pk_hash` as a job names it (64 hex digits, either case).
///
/// # Errors
/// [`KeyError::BadHash`].
pub fn parse_pk_hash(pk_hash: &str) -> Result<Hash32, KeyError> {
    hash32_from_hex(pk_hash)
        .map(Hash32)
        .map_err(|e| KeyError::BadHash {
            pk_hash: pk_hash.chars().take(80).collect(),
            reason: e.to_string(),
        })
}

/// The digest the NATS object store records for content with SHA-256 `hash`:
/// `SHA-256=` and the URL-safe, padded base64 of the digest.
pub fn nats_digest(hash: &Hash32) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::from("SHA-256=");
    for group in hash.0.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Opens the key store, telling a store that does not exist from NATS trouble.
async fn open_store(js: &jetstream::Context) -> Result<ObjectStore, KeyError> {
    let stream: Result<Stream, _> = js.get_stream(format!("OBJ_{KEY_BUCKET}")).await;
    if let Err(e) = stream {
        return Err(match e.kind() {
            GetStreamErrorKind::JetStream(inner)
                if inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                KeyError::NoKeyStore
            }
            _ => nats("opening the store", e),
        });
    }
    js.get_object_store(KEY_BUCKET)
        .await
        .map_err(|e| nats("opening the store", e))
}

/// The object's info, or `None` when there is no such (undeleted) object.
async fn object_info(store: &ObjectStore, name: &str) -> Result<Option<ObjectInfo>, KeyError> {
    use async_nats::jetstream::object_store::InfoErrorKind;
    match store.info(name).await {
        Ok(info) if !info.deleted => Ok(Some(info)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(None),
        Err(e) => Err(nats(format!("reading the info of {name}"), e)),
    }
}

/// SHA-256 and length of a file, read on a blocking thread.
async fn hash_file(path: &Path) -> Result<(Hash32, u64), KeyError> {
    let owned = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || -> io::Result<(Hash32, u64)> {
        let mut file = std::fs::File::open(&owned)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        Ok((Hash32(hasher.finalize().into()), len))
    })
    .await
    .map_err(|e| io::Error::other(e.to_string()));
    result
        .and_then(|r| r)
        .map_err(io_err(path, "cannot read the proving key"))
}

fn parse_manifest(what: &str, bytes: &[u8]) -> Result<Manifest, KeyError> {
    let bad = |reason: String| KeyError::BadManifest {
        what: what.to_owned(),
        reason,
    };
    pulse_circuits::json::check_unique_keys(bytes).map_err(|e| bad(e.to_string()))?;
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let id = manifest.params.id();
    if id != manifest.circuit_id {
        return Err(bad(format!(
            "circuit_id {} is not the id of its params ({id})",
            manifest.circuit_id
        )));
    }
    Ok(manifest)
}

/// Puts `bytes`-worth of `data` under `name` unless an object of that name, size and digest
/// is already there. Returns whether it was put.
async fn put_once(
    store: &ObjectStore,
    name: &str,
    description: String,
    size: u64,
    hash: &Hash32,
    data: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<bool, KeyError> {
    if let Some(info) = object_info(store, name).await? {
        let same_digest = info
            .digest
            .as_deref()
            .is_none_or(|d| d == nats_digest(hash));
        if info.size as u64 == size && same_digest {
            return Ok(false);
        }
    }
    let meta = ObjectMetadata {
        name: name.to_owned(),
        description: Some(description),
        ..Default::default()
    };
    store
        .put(meta, data)
        .await
        .map_err(|e| nats(format!("putting {name}"), e))?;
    Ok(true)
}

/// Publishes the proving key of a `pulse setup` key directory (its `manifest.json` and
/// `proving.key`) to the object store [`KEY_BUCKET`], under the name of its SHA-256, and
/// returns that hash in hex. Publishing a key that is already there (same name and size)
/// does nothing, so a coordinator can publish its key at every start.
///
/// The key file is hashed first and must match the manifest's `pk_hash`, so a corrupt key
/// directory is never published.
///
/// # Errors
/// [`KeyError::BadManifest`], [`KeyError::KeyDirMismatch`], [`KeyError::Io`] for the key
/// directory; [`KeyError::NoKeyStore`] when the coordinator has not created the layout;
/// [`KeyError::Nats`].
#[tracing::instrument(skip_all, fields(key_dir = %key_dir.display()))]
pub async fn publish_proving_key(
    js: &jetstream::Context,
    key_dir: &Path,
) -> Result<String, KeyError> {
    let manifest_path = key_dir.join(MANIFEST_FILE);
    let manifest_bytes = tokio::fs::read(&manifest_path).await.map_err(io_err(
        &manifest_path,
        "not a key directory: run `pulse setup` to make one",
    ))?;
    let manifest = parse_manifest(&manifest_path.display().to_string(), &manifest_bytes)?;
    let pk_path = key_dir.join(PROVING_KEY_FILE);
    let (found, size) = hash_file(&pk_path).await?;
    if found != manifest.pk_hash {
        return Err(KeyError::KeyDirMismatch {
            path: pk_path,
            expected: manifest.pk_hash,
            found,
        });
    }

    let store = open_store(js).await?;
    let (name, manifest_name) = object_names(&manifest.pk_hash);
    let params = manifest.params;
    let mut file = tokio::fs::File::open(&pk_path)
        .await
        .map_err(io_err(&pk_path, "cannot read the proving key"))?;
    let mut put = put_once(
        &store,
        &name,
        format!(
            "Pulse proving key, circuit {} ({} slots, depth {})",
            manifest.circuit_id, params.slots, params.depth
        ),
        size,
        &found,
        &mut file,
    )
    .await?;
    if let Some(expected) = manifest.constraints_hash {
        let path = key_dir.join(CONSTRAINTS_FILE);
        let (found, size) = hash_file(&path).await?;
        if found != expected {
            return Err(KeyError::KeyDirMismatch {
                path,
                expected,
                found,
            });
        }
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(io_err(&path, "cannot read the constraint matrices"))?;
        put |= put_once(
            &store,
            &format!("{name}{CONSTRAINTS_SUFFIX}"),
            format!("constraint matrices of Pulse proving key {name}"),
            size,
            &found,
            &mut file,
        )
        .await?;
    }
    // The manifest goes last: a reader that finds it finds the key (and matrices) too.
    let put_manifest = put_once(
        &store,
        &manifest_name,
        format!("manifest of Pulse proving key {name}"),
        manifest_bytes.len() as u64,
        &Hash32::digest(&manifest_bytes),
        &mut manifest_bytes.as_slice(),
    )
    .await?;
    if put || put_manifest {
        tracing::info!(pk_hash = %name, bytes = size, "published the proving key");
    } else {
        tracing::info!(pk_hash = %name, "the proving key was already published");
    }
    Ok(name)
}

/// Whether `dir` is a usable cached copy of key `pk_hash`: its manifest names the key, and
/// its `proving.key` hashes to `pk_hash` (hashed once; afterwards [`VERIFIED_MARKER`],
/// which records the hash and the size, is trusted as long as the size still matches).
async fn cached(dir: &Path, pk_hash: &Hash32) -> Result<bool, KeyError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let Ok(bytes) = tokio::fs::read(&manifest_path).await else {
        return Ok(false);
    };
    let Ok(manifest) = parse_manifest("cached manifest", &bytes) else {
        return Ok(false);
    };
    if manifest.pk_hash != *pk_hash {
        return Ok(false);
    }
    if manifest.constraints_hash.is_some()
        && tokio::fs::metadata(dir.join(CONSTRAINTS_FILE))
            .await
            .is_err()
    {
        // An entry from before the key came with its matrices (its loader checks the hash).
        return Ok(false);
    }
    let pk_path = dir.join(PROVING_KEY_FILE);
    let Ok(meta) = tokio::fs::metadata(&pk_path).await else {
        return Ok(false);
    };
    let marker_path = dir.join(VERIFIED_MARKER);
    let expected_marker = marker_text(pk_hash, meta.len());
    if let Ok(marker) = tokio::fs::read_to_string(&marker_path).await
        && marker == expected_marker
    {
        return Ok(true);
    }
    let (found, _) = hash_file(&pk_path).await?;
    if found != *pk_hash {
        tracing::warn!(
            dir = %dir.display(),
            expected = %pk_hash,
            %found,
            "the cached proving key is corrupt; downloading it again"
        );
        return Ok(false);
    }
    tokio::fs::write(&marker_path, expected_marker)
        .await
        .map_err(io_err(&marker_path, "cannot write to the key cache"))?;
    Ok(true)
}

fn marker_text(pk_hash: &Hash32, size: u64) -> String {
    format!("sha256 {pk_hash}\nsize {size}\n")
}

/// A fresh temporary directory name next to the cache entries.
fn temp_dir_name(cache_dir: &Path, pk_hash: &Hash32) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    cache_dir.join(format!(".{pk_hash}.partial-{}-{n}", std::process::id()))
}

/// Fetches proving key `pk_hash` from the object store [`KEY_BUCKET`] into
/// `cache_dir/<pk_hash>/` (holding `proving.key`, `manifest.json` and, when the manifest names
/// it, `constraints.r1cs`) and returns that
/// directory. A copy already in the cache is used when it checks out (see [`VERIFIED_MARKER`]);
/// otherwise the key is streamed into a temporary directory while being hashed,
/// `progress(done, total)` is called with the bytes received, and the directory is renamed
/// into place only when the key hashes to `pk_hash`.
///
/// # Errors
/// [`KeyError::BadHash`] for a `pk_hash` that is not 64 hex digits;
/// [`KeyError::NotPublished`] / [`KeyError::NoKeyStore`] when there is nothing to fetch;
/// [`KeyError::HashMismatch`] when the object is not the key it is named after (nothing is
/// left in the cache); [`KeyError::BadManifest`], [`KeyError::Io`], [`KeyError::Nats`].
#[tracing::instrument(skip_all, fields(pk_hash = %pk_hash))]
pub async fn fetch_proving_key(
    js: &jetstream::Context,
    pk_hash: &str,
    cache_dir: &Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<PathBuf, KeyError> {
    let hash = parse_pk_hash(pk_hash)?;
    let name = hash.to_hex();
    let dir = cache_dir.join(&name);
    if cached(&dir, &hash).await? {
        tracing::debug!(dir = %dir.display(), "proving key found in the cache");
        return Ok(dir);
    }

    let store = open_store(js).await?;
    let (_, manifest_name) = object_names(&hash);
    let manifest_bytes = read_small_object(&store, &manifest_name, &name).await?;
    let manifest = parse_manifest(&format!("object {manifest_name}"), &manifest_bytes)?;
    if manifest.pk_hash != hash {
        return Err(KeyError::BadManifest {
            what: format!("object {manifest_name}"),
            reason: format!("it describes proving key {}", manifest.pk_hash),
        });
    }

    tokio::fs::create_dir_all(cache_dir)
        .await
        .map_err(io_err(cache_dir, "cannot create the key cache directory"))?;
    let tmp = temp_dir_name(cache_dir, &hash);
    let result = download(&store, &hash, &manifest, &manifest_bytes, &tmp, progress).await;
    let result = match result {
        Ok(()) => install(&tmp, &dir, &hash).await,
        Err(e) => Err(e),
    };
    if tmp.exists() {
        let _ = tokio::fs::remove_dir_all(&tmp).await;
    }
    result?;
    tracing::info!(dir = %dir.display(), "proving key downloaded and verified");
    Ok(dir)
}

/// Reads a small object (a manifest) whole.
async fn read_small_object(
    store: &ObjectStore,
    name: &str,
    pk_hash: &str,
) -> Result<Vec<u8>, KeyError> {
    use async_nats::jetstream::object_store::GetErrorKind;
    let mut object = match store.get(name).await {
        Ok(o) => o,
        Err(e) if e.kind() == GetErrorKind::NotFound => {
            return Err(KeyError::NotPublished {
                pk_hash: pk_hash.to_owned(),
            });
        }
        Err(e) => return Err(nats(format!("getting {name}"), e)),
    };
    let mut bytes = Vec::new();
    tokio::time::timeout(STALL_TIMEOUT, object.read_to_end(&mut bytes))
        .await
        .map_err(|_| nats(format!("reading {name}"), "timed out"))?
        .map_err(|e| nats(format!("reading {name}"), e))?;
    Ok(bytes)
}

/// Streams the key into `tmp/proving.key` (and its matrices into `tmp/constraints.r1cs`
/// when the manifest names them) while hashing, writes the manifest and the marker; refuses
/// an object that does not hash to what names it.
async fn download(
    store: &ObjectStore,
    hash: &Hash32,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    tmp: &Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<(), KeyError> {
    let name = hash.to_hex();
    tokio::fs::create_dir_all(tmp)
        .await
        .map_err(io_err(tmp, "cannot write to the key cache"))?;
    let done = download_object(store, &name, hash, &tmp.join(PROVING_KEY_FILE), progress).await?;
    if let Some(expected) = manifest.constraints_hash {
        let object = format!("{name}{CONSTRAINTS_SUFFIX}");
        download_object(
            store,
            &object,
            &expected,
            &tmp.join(CONSTRAINTS_FILE),
            &|_, _| {},
        )
        .await?;
    }
    let manifest_path = tmp.join(MANIFEST_FILE);
    tokio::fs::write(&manifest_path, manifest_bytes)
        .await
        .map_err(io_err(&manifest_path, "cannot write to the key cache"))?;
    let marker_path = tmp.join(VERIFIED_MARKER);
    tokio::fs::write(&marker_path, marker_text(hash, done))
        .await
        .map_err(io_err(&marker_path, "cannot write to the key cache"))?;
    Ok(())
}

/// Streams object `name` into `path` while hashing it; refuses it unless it hashes to
/// `expected`. Returns its length.
async fn download_object(
    store: &ObjectStore,
    name: &str,
    expected: &Hash32,
    path: &Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<u64, KeyError> {
    use async_nats::jetstream::object_store::GetErrorKind;
    let mut object = match store.get(name).await {
        Ok(o) => o,
        Err(e) if e.kind() == GetErrorKind::NotFound => {
            return Err(KeyError::NotPublished {
                pk_hash: name.to_owned(),
            });
        }
        Err(e) => return Err(nats(format!("getting {name}"), e)),
    };
    let total = object.info().size as u64;
    let write_err = io_err(path, "cannot write to the key cache");
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(io_err(path, "cannot write to the key cache"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    progress(0, total);
    loop {
        let n = tokio::time::timeout(STALL_TIMEOUT, object.read(&mut buf))
            .await
            .map_err(|_| nats(format!("downloading {name}"), "no data for a minute"))?
            .map_err(|e| nats(format!("downloading {name}"), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).await.map_err(|e| KeyError::Io {
            path: path.to_path_buf(),
            source: e,
            hint: "cannot write to the key cache",
        })?;
        done += n as u64;
        progress(done, total);
    }
    let found = Hash32(hasher.finalize().into());
    if found != *expected {
        return Err(KeyError::HashMismatch {
            pk_hash: name.to_owned(),
            expected: *expected,
            found,
        });
    }
    file.sync_all().await.map_err(write_err)?;
    Ok(done)
}

/// Renames the downloaded directory into place. A stale or corrupt entry already there is
/// replaced; one that another process has just installed is kept.
async fn install(tmp: &Path, dir: &Path, hash: &Hash32) -> Result<(), KeyError> {
    if tokio::fs::metadata(dir).await.is_ok() {
        if cached(dir, hash).await? {
            return Ok(());
        }
        tokio::fs::remove_dir_all(dir)
            .await
            .map_err(io_err(dir, "cannot replace a corrupt cache entry"))?;
    }
    match tokio::fs::rename(tmp, dir).await {
        Ok(()) => Ok(()),
        // Someone else renamed theirs into place between the check and the rename.
        Err(_) if cached(dir, hash).await? => Ok(()),
        Err(e) => Err(io_err(dir, "cannot write to the key cache")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_digest_is_padded_url_safe_base64() {
        // SHA-256 of the empty string, as the object store records it.
        let empty = Hash32::digest(b"");
        assert_eq!(
            nats_digest(&empty),
            "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn pk_hashes_are_checked_before_naming_files() {
        assert!(matches!(
            parse_pk_hash("../../etc/passwd"),
            Err(KeyError::BadHash { .. })
        ));
        let h = Hash32::digest(b"x");
        assert_eq!(parse_pk_hash(&h.to_hex().to_uppercase()).ok(), Some(h));
    }
}
