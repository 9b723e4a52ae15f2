//! The RPC client.

use std::time::Duration;

use cid::Cid;
use reqwest::multipart::{Form, Part};
use reqwest::{Response, Url};

use crate::IpfsError;
use crate::answers::{self, NodeVersion};
use crate::verify;

/// The most `cat` reads unless [`IpfsClient::with_max_cat_bytes`] says otherwise: 64 MiB.
pub const DEFAULT_MAX_CAT_BYTES: usize = 64 << 20;
/// How long `add`, `pin_add` and `version` may take unless
/// [`IpfsClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the client waits beyond the `timeout=` it gives the node, so the node's own
/// answer ("context deadline exceeded") arrives before the client gives up.
pub const DEFAULT_TIMEOUT_GRACE: Duration = Duration::from_secs(2);
/// The most any answer other than `cat`'s may hold (and any error answer).
const MAX_ANSWER_BYTES: usize = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client for one node's Kubo RPC API (Kubo's `/api/v0/…`, also served by js-ipfs).
///
/// Every call is a `POST` (Kubo refuses `GET` on the RPC API) and carries a `timeout=` for
/// the node as well as a deadline of its own, because a node asked for content that no
/// peer has waits forever otherwise. Answers are read up to a bound so that a hostile or
/// broken node cannot exhaust memory. Cloning is cheap and shares the connection pool.
#[derive(Clone, Debug)]
pub struct IpfsClient {
    api_url: String,
    http: reqwest::Client,
    timeout: Duration,
    grace: Duration,
    max_cat_bytes: usize,
}

impl IpfsClient {
    /// A client for the node whose RPC API is at `api_url`, such as
    /// `http://127.0.0.1:5001` (Kubo's default port) or js-ipfs's `http://127.0.0.1:5002`.
    /// A trailing `/` or `/api/v0` is accepted. Nothing is sent until the first call.
    ///
    /// # Errors
    /// [`IpfsError::Config`] if the address is not an `http://` URL without query or
    /// fragment (the RPC API is an admin interface served over plain HTTP; this build has
    /// no TLS).
    pub fn new(api_url: &str) -> Result<Self, IpfsError> {
        let config = |reason: &str| IpfsError::Config {
            url: api_url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed =
            Url::parse(api_url).map_err(|e| config(&format!("{e}; expected http://HOST:PORT")))?;
        if parsed.scheme() != "http" {
            return Err(config(
                "only http:// is supported (the RPC API is plain HTTP)",
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(config("no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(config(
                "a query or fragment makes no sense in an API address",
            ));
        }
        let path = parsed.path().trim_end_matches('/');
        let path = path.strip_suffix("/api/v0").unwrap_or(path);
        let base = format!("{}{}", parsed.origin().ascii_serialization(), path);

        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // The node is addressed directly; its answers never legitimately redirect.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // js-ipfs closes idle connections after 5 s; reusing one it is closing would
            // fail a request for nothing.
            .pool_idle_timeout(Duration::from_secs(4))
            .build()
            .map_err(|e| config(&format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            api_url: base,
            http,
            timeout: DEFAULT_TIMEOUT,
            grace: DEFAULT_TIMEOUT_GRACE,
            max_cat_bytes: DEFAULT_MAX_CAT_BYTES,
        })
    }

    /// Sets how long `add`, `pin_add` and `version` may take (default [`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long the client waits past the node's `timeout=` (default
    /// [`DEFAULT_TIMEOUT_GRACE`]).
    #[must_use]
    pub fn with_timeout_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets the most bytes `cat` accepts (default [`DEFAULT_MAX_CAT_BYTES`]).
    #[must_use]
    pub fn with_max_cat_bytes(mut self, max: usize) -> Self {
        self.max_cat_bytes = max;
        self
    }

    /// The API base URL, without the `/api/v0` part.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Asks the node for its version; a cheap way to check that it is up.
    ///
    /// # Errors
    /// [`IpfsError::Unreachable`], [`IpfsError::Timeout`], [`IpfsError::Api`],
    /// [`IpfsError::BadAnswer`].
    pub async fn version(&self) -> Result<NodeVersion, IpfsError> {
        const ENDPOINT: &str = "/api/v0/version";
        let body = self
            .call(ENDPOINT, &[], None, self.timeout, None, MAX_ANSWER_BYTES)
            .await?;
        answers::parse_version(&body)
    }

    /// Adds `data` as one file, pinned, and returns its CID: CIDv1 in base32 with raw
    /// leaves, so content of up to one chunk (256 KiB) gets a `bafk…` CID of codec `raw`
    /// that is the SHA-256 of the data itself, and larger content a `bafy…` UnixFS root.
    ///
    /// For a single-block answer the client checks that the CID is the data's hash, so a
    /// node cannot make it record a CID for other content.
    ///
    /// # Errors
    /// [`IpfsError::Unreachable`], [`IpfsError::Timeout`], [`IpfsError::Api`],
    /// [`IpfsError::BadAnswer`] (the answer lacks a CID or a sane size),
    /// [`IpfsError::ContentMismatch`] (the CID is not the data's).
    pub async fn add(&self, data: impl Into<Vec<u8>>) -> Result<Cid, IpfsError> {
        const ENDPOINT: &str = "/api/v0/add";
        let data = data.into();
        let len = data.len() as u64;
        let digest = verify::sha256(&data);
        let part = Part::bytes(data)
            .file_name("data")
            .mime_str("application/octet-stream")
            .map_err(|e| IpfsError::Config {
                url: self.api_url.clone(),
                reason: e.to_string(),
            })?;
        let form = Form::new().part("file", part);
        let query = [
            ("cid-version", "1"),
            ("cid-base", "base32"),
            ("raw-leaves", "true"),
            ("pin", "true"),
            ("progress", "false"),
        ];
        let body = self
            .call(
                ENDPOINT,
                &query,
                Some(form),
                self.timeout,
                None,
                MAX_ANSWER_BYTES,
            )
            .await?;
        let added = answers::parse_add(&body)?;
        let bad = |detail: String| IpfsError::BadAnswer {
            endpoint: ENDPOINT,
            detail,
        };
        let cid = Cid::try_from(added.hash.as_str())
            .map_err(|e| bad(format!("Hash {:?} is not a CID: {e}", added.hash)))?;
        if let Some(size) = added.size
            && size < len
        {
            return Err(bad(format!(
                "Size {size} is less than the {len} bytes sent"
            )));
        }
        verify::added_cid(&cid, &digest)?;
        Ok(cid)
    }

    /// Reads the file at `cid`. The node gets `timeout` to find it (`timeout=` in the
    /// request) and the client waits that long plus the grace
    /// ([`IpfsClient::with_timeout_grace`]). At most the configured maximum
    /// ([`IpfsClient::with_max_cat_bytes`]) is read.
    ///
    /// When `cid` is a single raw block hashed with SHA-256 (or the identity hash), which is
    /// what [`IpfsClient::add`] gives content up to 256 KiB, the content is checked against
    /// the CID. A UnixFS (`dag-pb`) CID cannot be checked without fetching and walking its
    /// blocks; for those the content is only checked against the length the node announces
    /// (`X-Content-Length`), which catches an answer cut short.
    ///
    /// # Errors
    /// [`IpfsError::NotFound`] or [`IpfsError::Timeout`] when the content cannot be had
    /// (which one depends on the node: an offline node says "not found", an online one
    /// searches until the timeout), [`IpfsError::TooLarge`],
    /// [`IpfsError::ContentMismatch`], [`IpfsError::Unreachable`], [`IpfsError::Api`],
    /// [`IpfsError::BadAnswer`].
    pub async fn cat(&self, cid: &Cid, timeout: Duration) -> Result<Vec<u8>, IpfsError> {
        const ENDPOINT: &str = "/api/v0/cat";
        let arg = cid.to_string();
        let query = [("arg", arg.as_str())];
        let (content, announced) = self
            .call_announced(
                ENDPOINT,
                &query,
                None,
                timeout,
                Some(cid),
                self.max_cat_bytes,
            )
            .await?;
        if let Some(announced) = announced
            && announced != content.len() as u64
        {
            return Err(IpfsError::BadAnswer {
                endpoint: ENDPOINT,
                detail: format!(
                    "the node announced {announced} bytes and sent {} (a stream error?)",
                    content.len()
                ),
            });
        }
        verify::content(cid, &content)?;
        Ok(content)
    }

    /// Pins `cid` (recursively) so the node's garbage collection keeps it. The node fetches
    /// it first if it lacks it, within the client's timeout ([`IpfsClient::with_timeout`]).
    ///
    /// # Errors
    /// [`IpfsError::NotFound`], [`IpfsError::Timeout`], [`IpfsError::Unreachable`],
    /// [`IpfsError::Api`], [`IpfsError::BadAnswer`] (the node did not list `cid` as pinned).
    pub async fn pin_add(&self, cid: &Cid) -> Result<(), IpfsError> {
        const ENDPOINT: &str = "/api/v0/pin/add";
        let arg = cid.to_string();
        let query = [("arg", arg.as_str()), ("recursive", "true")];
        let body = self
            .call(
                ENDPOINT,
                &query,
                None,
                self.timeout,
                Some(cid),
                MAX_ANSWER_BYTES,
            )
            .await?;
        let pins = answers::parse_pins(&body)?;
        // The node may spell the CID in another base (or as CIDv0); compare the CIDs.
        if pins
            .iter()
            .any(|p| Cid::try_from(p.as_str()).is_ok_and(|p| p == *cid))
        {
            Ok(())
        } else {
            Err(IpfsError::BadAnswer {
                endpoint: ENDPOINT,
                detail: format!("{cid} is not among the pins the node reported: {pins:?}"),
            })
        }
    }

    /// Sends one RPC call and reads its answer, at most `limit` bytes.
    ///
    /// The node gets `timeout` (as `timeout=`, which Kubo accepts on every command and
    /// js-ipfs on the ones used here); the client waits that long plus the grace.
    async fn call(
        &self,
        endpoint: &'static str,
        query: &[(&str, &str)],
        form: Option<Form>,
        timeout: Duration,
        cid: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<u8>, IpfsError> {
        let (body, _) = self
            .call_announced(endpoint, query, form, timeout, cid, limit)
            .await?;
        Ok(body)
    }

    /// [`IpfsClient::call`], also returning the length the node announced in
    /// `X-Content-Length` (Kubo's `cat` does).
    async fn call_announced(
        &self,
        endpoint: &'static str,
        query: &[(&str, &str)],
        form: Option<Form>,
        timeout: Duration,
        cid: Option<&Cid>,
        limit: usize,
    ) -> Result<(Vec<u8>, Option<u64>), IpfsError> {
        let mut url =
            Url::parse(&format!("{}{endpoint}", self.api_url)).map_err(|e| IpfsError::Config {
                url: self.api_url.clone(),
                reason: e.to_string(),
            })?;
        url.query_pairs_mut()
            .extend_pairs(query)
            .append_pair("timeout", &go_duration(timeout));
        let deadline = timeout + self.grace;
        let mut request = self.http.post(url).timeout(deadline);
        if let Some(form) = form {
            request = request.multipart(form);
        }
        let mut answer = request
            .send()
            .await
            .map_err(|e| self.transport_error(endpoint, deadline, &e))?;
        let status = answer.status();
        if !status.is_success() {
            let body = self
                .read_body(endpoint, &mut answer, MAX_ANSWER_BYTES, deadline)
                .await?;
            let message = answers::error_message(&body);
            return Err(self.refusal(endpoint, status.as_u16(), message, cid, timeout));
        }
        let announced = answer
            .headers()
            .get("x-content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(IpfsError::TooLarge { endpoint, limit });
        }
        let body = self
            .read_body(endpoint, &mut answer, limit, deadline)
            .await?;
        Ok((body, announced))
    }

    /// Reads a whole answer body, refusing more than `limit` bytes.
    async fn read_body(
        &self,
        endpoint: &'static str,
        answer: &mut Response,
        limit: usize,
        deadline: Duration,
    ) -> Result<Vec<u8>, IpfsError> {
        if answer.content_length().is_some_and(|n| n > limit as u64) {
            return Err(IpfsError::TooLarge { endpoint, limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer
            .chunk()
            .await
            .map_err(|e| self.transport_error(endpoint, deadline, &e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(IpfsError::TooLarge { endpoint, limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Sorts an error answer: Kubo and js-ipfs report missing content and their own
    /// timeouts as HTTP 500 with a message, so the message decides.
    fn refusal(
        &self,
        endpoint: &'static str,
        status: u16,
        message: String,
        cid: Option<&Cid>,
        timeout: Duration,
    ) -> IpfsError {
        let lower = message.to_ascii_lowercase();
        let says = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        if status == 500 {
            if let Some(cid) = cid
                && says(&[
                    "not found",
                    "could not find",
                    "no link named",
                    "err_not_found",
                ])
            {
                return IpfsError::NotFound {
                    cid: cid.to_string(),
                    message,
                };
            }
            if says(&["context deadline exceeded", "timed out", "timeout"]) {
                return IpfsError::Timeout {
                    url: self.api_url.clone(),
                    endpoint,
                    after: timeout,
                };
            }
        }
        IpfsError::Api {
            endpoint,
            status,
            message,
        }
    }

    fn transport_error(
        &self,
        endpoint: &'static str,
        deadline: Duration,
        error: &reqwest::Error,
    ) -> IpfsError {
        if error.is_timeout() {
            IpfsError::Timeout {
                url: self.api_url.clone(),
                endpoint,
                after: deadline,
            }
        } else {
            // Refused, reset, or closed mid-answer: in each case no working node is there.
            IpfsError::Unreachable {
                url: self.api_url.clone(),
                detail: error_chain(error),
            }
        }
    }
}

/// A duration as both Go's `time.ParseDuration` (Kubo) and `parse-duration` (js-ipfs)
/// read it: whole milliseconds, at least one.
fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// The error and all its sources, for a message that says why (reqwest's own text names
/// only the URL; "Connection refused" is three sources down).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_for_the_node() {
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(go_duration(Duration::from_secs(60)), "60000ms");
        assert_eq!(go_duration(Duration::ZERO), "1ms");
    }

    #[test]
    fn urls_are_normalised_and_checked() {
        for (given, base) in [
            ("http://127.0.0.1:5001", "http://127.0.0.1:5001"),
            ("http://127.0.0.1:5001/", "http://127.0.0.1:5001"),
            ("http://localhost:5001/api/v0/", "http://localhost:5001"),
            ("http://node:80/ipfs-proxy/", "http://node/ipfs-proxy"),
        ] {
            assert_eq!(IpfsClient::new(given).expect(given).api_url(), base);
        }
        for bad in [
            "127.0.0.1:5001",
            "https://node:5001",
            "ftp://node",
            "http://n:1/?x=1",
            "",
        ] {
            let err = IpfsClient::new(bad).expect_err(bad);
            assert!(matches!(err, IpfsError::Config { .. }), "{bad}: {err:?}");
        }
    }
}
