//! A small async client for the Kubo RPC API (<https://docs.ipfs.tech/reference/kubo/rpc/>),
//! which Pulse uses to store encrypted health records off-chain.
//!
//! It speaks to real Kubo and to js-ipfs 0.66 (which serves the same API): where the two
//! disagree, as on `"Size":"12"` (Kubo) against `"Size":12` (js-ipfs), it accepts both.
//! Every request carries a timeout for the node and one of its own, every answer is read up
//! to a bound, and content is checked against its CID where the CID allows it (see
//! [`IpfsClient::cat`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), pulse_ipfs::IpfsError> {
//! use std::time::Duration;
//! let ipfs = pulse_ipfs::IpfsClient::new("http://127.0.0.1:5001")?;
//! let cid = ipfs.add(b"an encrypted record".to_vec()).await?;
//! let back = ipfs.cat(&cid, Duration::from_secs(10)).await?;
//! assert_eq!(back, b"an encrypted record");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod answers;
mod client;
mod error;
mod verify;

pub use answers::NodeVersion;
pub use cid::Cid;
pub use client::{DEFAULT_MAX_CAT_BYTES, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT_GRACE, IpfsClient};
pub use error::IpfsError;

/// The CIDv1 (`raw` codec, SHA-256) that [`IpfsClient::add`] gives `data` of up to one
/// chunk (256 KiB), computed locally: a record's CID can be known before it is stored.
pub fn raw_cid_of(data: &[u8]) -> Cid {
    verify::raw_cid(&verify::sha256(data))
}

/// The readers of the node's answers, applied to bytes as the client applies them to what
/// comes back: for the fuzz targets in `fuzz/`, which feed them bytes from outside.
#[doc(hidden)]
pub mod fuzzing {
    use cid::Cid;

    /// Reads `body` as the answer of one endpoint, chosen by `which`: `/api/v0/add`,
    /// `/api/v0/version`, `/api/v0/pin/add`, an error answer, or the content of a `cat` of
    /// `cid` (checked against it).
    pub fn read_answer(which: u8, cid: &Cid, body: &[u8]) {
        match which % 5 {
            0 => {
                if let Ok(added) = crate::answers::parse_add(body) {
                    // The client then checks the node's CID against the digest of the data
                    // it sent; here the answer's own bytes stand in for that data.
                    if let Ok(c) = Cid::try_from(added.hash.as_str()) {
                        let _ = crate::verify::added_cid(&c, &crate::verify::sha256(body));
                    }
                }
            }
            1 => {
                let _ = crate::answers::parse_version(body);
            }
            2 => {
                let _ = crate::answers::parse_pins(body);
            }
            3 => {
                let _ = crate::answers::error_message(body);
            }
            _ => {
                let _ = crate::verify::content(cid, body);
            }
        }
    }
}
