//! Checking a signed lookup ([`pulse_protocol::lookup_auth`]): the header parses, the time
//! is fresh, the nonce is new, and the signature verifies under the account's key.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pulse_circuits::deployment::DeploymentId;
use pulse_circuits::eddsa::PublicKey;
use pulse_circuits::state::State;
use pulse_protocol::lookup_auth::{LookupAuth, MAX_SKEW, SCHEME};
use serde_json::json;

/// Nonces remembered at most (beyond it the oldest half of the window is dropped first).
const MAX_NONCES: usize = 100_000;

/// Checks signed lookups for one deployment, remembering the nonces of the last
/// [`MAX_SKEW`] on either side.
pub struct Authenticator {
    deployment: DeploymentId,
    /// (account, nonce) → the request's timestamp (ms).
    seen: Mutex<HashMap<(u64, u64), u64>>,
}

/// A 401 that says how to sign.
fn unauthorized(reason: &str) -> Box<Response> {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({
            "error": format!(
                "{reason}; lookups answer only requests signed with the key of an account that \
                 may read the answer: send `Authorization: {SCHEME} account=ID, ts=UNIX_MS, \
                 nonce=16HEX, r8x=…, r8y=…, s=…` (the pulse commands sign with --key FILE; the \
                 message is in docs/privacy.md)"
            )
        })),
    )
        .into_response();
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(SCHEME));
    Box::new(r)
}

impl Authenticator {
    /// For the deployment requests must be signed for.
    pub fn new(deployment: DeploymentId) -> Self {
        Self {
            deployment,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The account that signed this request, or the 401 to answer.
    ///
    /// The key is read from the latest state (a key never changes once registered, and a
    /// newly registered account may sign before its batch is on L1).
    ///
    /// # Errors
    /// The response to send: no or malformed authorization, a stale time, a replayed nonce,
    /// or a signature that does not verify (also for an account that does not exist: the
    /// answer does not say which).
    pub fn check(
        &self,
        state: &State,
        headers: &HeaderMap,
        method: &str,
        path_and_query: &str,
    ) -> Result<u64, Box<Response>> {
        let header = headers
            .get(AUTHORIZATION)
            .ok_or_else(|| unauthorized("this request is not signed"))?
            .to_str()
            .map_err(|_| unauthorized("the authorization is not text"))?;
        let a = LookupAuth::parse(header).map_err(|e| unauthorized(&e))?;
        let now = crate::sequencer::now_ms();
        let skew = u64::try_from(MAX_SKEW.as_millis()).unwrap_or(u64::MAX);
        if a.ts_ms.abs_diff(now) > skew {
            return Err(unauthorized(&format!(
                "the signature is stale: signed at {} ms, the server's clock says {now} ms (at \
                 most {} s apart); check your clock and sign each request afresh",
                a.ts_ms,
                MAX_SKEW.as_secs()
            )));
        }
        let key = state
            .account(a.account)
            .map_err(|e| {
                Box::new(super::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    e.to_string(),
                ))
            })?
            .map(|leaf| PublicKey(leaf.pk));
        let verified = key.is_some_and(|pk| {
            pk.verify(
                a.message(self.deployment, method, path_and_query),
                &a.signature,
            )
            .is_ok()
        });
        if !verified {
            return Err(unauthorized(&format!(
                "the signature does not verify for account {} over this request and this \
                 deployment",
                a.account
            )));
        }
        let mut seen = match self.seen.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if seen.contains_key(&(a.account, a.nonce)) {
            return Err(unauthorized(
                "this signature was used already (a replay): sign each request afresh, with a new nonce",
            ));
        }
        if seen.len() >= MAX_NONCES {
            // Anything older than the window is refused as stale anyway.
            seen.retain(|_, ts| ts.abs_diff(now) <= skew);
            if seen.len() >= MAX_NONCES {
                return Err(unauthorized(
                    "the server is answering too many lookups to remember their nonces; try again shortly",
                ));
            }
        }
        seen.insert((a.account, a.nonce), a.ts_ms);
        Ok(a.account)
    }
}
