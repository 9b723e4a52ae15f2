//! Checking content against its CID where the CID alone allows it.
//!
//! A CID (<https://github.com/multiformats/cid>) names a codec and a multihash. When the
//! codec is `raw` (0x55) the block *is* the content, so the multihash of the content must
//! equal the CID's: SHA-256 (0x12) and the identity "hash" (0x00) are checked here. A
//! `dag-pb` (UnixFS) CID hashes a tree of blocks whose shape depends on the chunker, so it
//! cannot be checked from the file's bytes alone.

use cid::Cid;
use cid::multihash::Multihash;
use sha2::{Digest, Sha256};

use crate::IpfsError;

/// Multicodec `raw`.
pub(crate) const RAW: u64 = 0x55;
/// Multihash `sha2-256`.
pub(crate) const SHA2_256: u64 = 0x12;
/// Multihash `identity`.
const IDENTITY: u64 = 0x00;

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The raw-codec CIDv1 of `data`, hashed with SHA-256.
pub(crate) fn raw_cid(digest: &[u8; 32]) -> Cid {
    let hash = Multihash::<64>::wrap(SHA2_256, digest)
        .unwrap_or_else(|_| unreachable!("32 bytes fit a 64-byte multihash"));
    Cid::new_v1(RAW, hash)
}

/// Checks content that `cat` returned for `cid`, where the CID allows it.
pub(crate) fn content(cid: &Cid, content: &[u8]) -> Result<(), IpfsError> {
    if cid.codec() != RAW {
        return Ok(());
    }
    let hash = cid.hash();
    let matches = match hash.code() {
        SHA2_256 => hash.digest() == sha256(content),
        IDENTITY => hash.digest() == content,
        _ => return Ok(()),
    };
    if matches {
        Ok(())
    } else {
        Err(IpfsError::ContentMismatch {
            cid: cid.to_string(),
            actual: raw_cid(&sha256(content)).to_string(),
        })
    }
}

/// Checks the CID `add` assigned to data whose SHA-256 is `digest`: a raw SHA-256 CID must
/// be the data's own hash (a UnixFS root cannot be checked).
pub(crate) fn added_cid(cid: &Cid, digest: &[u8; 32]) -> Result<(), IpfsError> {
    if cid.codec() == RAW && cid.hash().code() == SHA2_256 && cid.hash().digest() != digest {
        return Err(IpfsError::ContentMismatch {
            cid: cid.to_string(),
            actual: raw_cid(digest).to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_cid_matches_the_known_cid_of_hello_world() {
        // The CID js-ipfs 0.66 gives "hello world\n" with cid-version=1 and raw leaves.
        let cid = raw_cid(&sha256(b"hello world\n"));
        assert_eq!(
            cid.to_string(),
            "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
        );
        assert!(content(&cid, b"hello world\n").is_ok());
        let err = content(&cid, b"hello world!").expect_err("tampered");
        assert!(matches!(err, IpfsError::ContentMismatch { .. }), "{err:?}");
    }

    #[test]
    fn identity_cids_are_checked_and_dag_pb_passes() {
        let identity = Cid::new_v1(RAW, Multihash::<64>::wrap(IDENTITY, b"tiny").expect("fits"));
        assert!(content(&identity, b"tiny").is_ok());
        assert!(content(&identity, b"tinY").is_err());
        let dag_pb = Cid::new_v1(
            0x70,
            Multihash::<64>::wrap(SHA2_256, &[7; 32]).expect("fits"),
        );
        assert!(content(&dag_pb, b"anything").is_ok());
    }

    #[test]
    fn an_added_cid_must_be_the_datas() {
        let digest = sha256(b"data");
        assert!(added_cid(&raw_cid(&digest), &digest).is_ok());
        let other = raw_cid(&sha256(b"other"));
        assert!(added_cid(&other, &digest).is_err());
    }
}
