//! What can go wrong talking to an IPFS node, sorted by what the caller can do about it.

use std::time::Duration;

/// An error from [`crate::IpfsClient`].
///
/// `Unreachable` and `Timeout` are worth retrying later (or on another node); `NotFound`
/// means no node that this one can reach has the content; `BadAnswer`, `TooLarge` and
/// `ContentMismatch` mean the node (or something in front of it) misbehaves; `Api` is a
/// refusal the node explained; `Config` is a mistake in how the client was set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpfsError {
    /// The client cannot be built for this API address.
    #[error("cannot use {url:?} as an IPFS RPC API address: {reason}")]
    Config {
        /// The address given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Nothing answered at the API address: the node is down, not listening there, or the
    /// connection broke before the answer was complete.
    #[error(
        "no IPFS node answers at {url} ({detail}); an IPFS node (Kubo or js-ipfs) must be \
         running with its RPC API there"
    )]
    Unreachable {
        /// The API base URL.
        url: String,
        /// The underlying error chain.
        detail: String,
    },

    /// The node did not finish in time: the client's deadline passed, or the node gave up
    /// at the `timeout=` the request carried (typical for content no peer has).
    #[error("the IPFS node at {url} did not finish {endpoint} within {after:?}")]
    Timeout {
        /// The API base URL.
        url: String,
        /// The RPC endpoint, such as `/api/v0/cat`.
        endpoint: &'static str,
        /// The time allowed.
        after: Duration,
    },

    /// The node says it does not have the content and cannot find it.
    #[error("{cid} is not available from the IPFS node: {message}")]
    NotFound {
        /// The CID asked for.
        cid: String,
        /// The node's words.
        message: String,
    },

    /// The node's answer did not have the expected shape.
    #[error("the IPFS node's answer to {endpoint} could not be read: {detail}")]
    BadAnswer {
        /// The RPC endpoint.
        endpoint: &'static str,
        /// What was wrong with it.
        detail: String,
    },

    /// The answer is larger than the client accepts.
    #[error("the IPFS node's answer to {endpoint} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The RPC endpoint.
        endpoint: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },

    /// The content the node returned (or the CID it assigned) does not match its hash.
    #[error("the IPFS node returned content for {cid} whose hash is {actual}")]
    ContentMismatch {
        /// The CID asked for (or the one the node assigned).
        cid: String,
        /// The CID the content actually has.
        actual: String,
    },

    /// The node refused the request with an error status and a message.
    #[error("the IPFS node refused {endpoint} with HTTP {status}: {message}")]
    Api {
        /// The RPC endpoint.
        endpoint: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The node's message (Kubo's `Message` field, or the body's text).
        message: String,
    },
}

impl IpfsError {
    /// Whether the same request may succeed later: the node was unreachable or slow.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IpfsError::Unreachable { .. } | IpfsError::Timeout { .. }
        )
    }
}
