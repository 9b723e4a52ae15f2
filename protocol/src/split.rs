//! Shard scalars in the object store [`SPLIT_BUCKET`], content-addressed: each object is
//! named by the SHA-256 of its bytes, and a reader refuses bytes that do not hash to the
//! name it asked for (so a worker that may write the store can deny service, never swap
//! one shard's scalars for another's).

use async_nats::jetstream::{self, object_store::ObjectStore};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::keys::STALL_TIMEOUT;
use crate::{MAX_SCALARS_BYTES, SPLIT_BUCKET, ScalarsRef};

/// Why shard scalars could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum ScalarsError {
    /// The store or the object is not there.
    #[error(
        "shard scalars {sha256} are not in the NATS object store {SPLIT_BUCKET}: they were deleted (the split proof was abandoned or its batch is final) or never stored"
    )]
    Missing {
        /// The object's name.
        sha256: String,
    },
    /// The object is larger than announced or than the limit.
    #[error(
        "shard scalars {sha256} are {found} bytes; the job says {announced} (at most {MAX_SCALARS_BYTES})"
    )]
    Size {
        /// The object's name.
        sha256: String,
        /// What the job announced.
        announced: u64,
        /// What the store holds (or announces).
        found: u64,
    },
    /// The bytes do not hash to their name.
    #[error("shard scalars {sha256} hash to {found}: the object was replaced or corrupted")]
    Hash {
        /// The object's name.
        sha256: String,
        /// Their hash.
        found: String,
    },
    /// NATS failed.
    #[error("NATS object store {SPLIT_BUCKET}: {action}: {reason}; is the NATS server reachable?")]
    Nats {
        /// What was being done.
        action: String,
        /// The server's answer.
        reason: String,
    },
}

fn nats(action: impl Into<String>, e: impl std::fmt::Display) -> ScalarsError {
    ScalarsError::Nats {
        action: action.into(),
        reason: e.to_string(),
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// The bytes of hex text (either case), or `None` for anything else.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16);
    text.as_bytes()
        .chunks_exact(2)
        .map(|p| Some((digit(p[0])? << 4 | digit(p[1])?) as u8))
        .collect()
}

async fn open(js: &jetstream::Context) -> Result<ObjectStore, ScalarsError> {
    js.get_object_store(SPLIT_BUCKET)
        .await
        .map_err(|e| nats("opening the store", e))
}

/// Stores `bytes` under their SHA-256, unless an object of that name (so of those bytes)
/// is there already: a repeated witness writes nothing, and no writer needs the right to
/// purge.
///
/// # Errors
/// [`ScalarsError::Nats`]; [`ScalarsError::Size`] above [`MAX_SCALARS_BYTES`].
pub async fn put_scalars(
    js: &jetstream::Context,
    bytes: Vec<u8>,
) -> Result<ScalarsRef, ScalarsError> {
    let sha256 = sha256_hex(&bytes);
    let len = bytes.len() as u64;
    if len > MAX_SCALARS_BYTES {
        return Err(ScalarsError::Size {
            sha256,
            announced: len,
            found: len,
        });
    }
    let store = open(js).await?;
    if let Ok(info) = store.info(&sha256).await
        && !info.deleted
        && info.size as u64 == len
    {
        return Ok(ScalarsRef { sha256, bytes: len });
    }
    let mut reader: &[u8] = &bytes;
    store
        .put(sha256.as_str(), &mut reader)
        .await
        .map_err(|e| nats(format!("storing {sha256}"), e))?;
    Ok(ScalarsRef { sha256, bytes: len })
}

/// Reads the object `scalars` names, checking its size against the announcement and its
/// bytes against its name.
///
/// # Errors
/// [`ScalarsError`].
pub async fn fetch_scalars(
    js: &jetstream::Context,
    scalars: &ScalarsRef,
) -> Result<Vec<u8>, ScalarsError> {
    use async_nats::jetstream::object_store::GetErrorKind;
    let sha256 = scalars.sha256.clone();
    let size = |found: u64| ScalarsError::Size {
        sha256: sha256.clone(),
        announced: scalars.bytes,
        found,
    };
    if scalars.bytes > MAX_SCALARS_BYTES {
        return Err(size(scalars.bytes));
    }
    let store = open(js).await?;
    let object = match store.get(&sha256).await {
        Ok(o) => o,
        Err(e) if e.kind() == GetErrorKind::NotFound => {
            return Err(ScalarsError::Missing { sha256 });
        }
        Err(e) => return Err(nats(format!("getting {sha256}"), e)),
    };
    let announced = object.info().size as u64;
    if announced != scalars.bytes {
        return Err(size(announced));
    }
    let mut bytes = Vec::with_capacity(scalars.bytes as usize);
    // One byte more than announced shows an object that is longer than it says.
    let mut limited = object.take(scalars.bytes + 1);
    tokio::time::timeout(
        STALL_TIMEOUT.max(std::time::Duration::from_secs(scalars.bytes >> 20)),
        limited.read_to_end(&mut bytes),
    )
    .await
    .map_err(|_| nats(format!("reading {sha256}"), "timed out"))?
    .map_err(|e| nats(format!("reading {sha256}"), e))?;
    if bytes.len() as u64 != scalars.bytes {
        return Err(size(bytes.len() as u64));
    }
    let found = sha256_hex(&bytes);
    if found != sha256 {
        return Err(ScalarsError::Hash { sha256, found });
    }
    Ok(bytes)
}

/// Deletes the object `sha256` (nothing when it is gone already).
///
/// # Errors
/// [`ScalarsError::Nats`].
pub async fn delete_scalars(js: &jetstream::Context, sha256: &str) -> Result<(), ScalarsError> {
    let store = open(js).await?;
    match store.info(sha256).await {
        Ok(info) if !info.deleted => store
            .delete(sha256)
            .await
            .map_err(|e| nats(format!("deleting {sha256}"), e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_other_text() {
        let bytes = [0u8, 1, 0xab, 0xff, 0x10];
        assert_eq!(to_hex(&bytes), "0001abff10");
        assert_eq!(from_hex("0001ABff10"), Some(bytes.to_vec()));
        for bad in ["0", "0g", "+1", "é0"] {
            assert_eq!(from_hex(bad), None, "{bad}");
        }
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
