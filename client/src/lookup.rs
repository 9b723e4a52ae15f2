//! Reading the rollup state as a light client: leaves with Merkle proofs from the
//! coordinator's HTTP API, checked here against a state root the caller trusts (the one the
//! L1 contract holds).
//!
//! The coordinator is not trusted: every answer is recomputed. The leaf preimage must hash
//! to the proven leaf, the path must lead from that leaf to the tree root (with the depth
//! the caller expects, so an inner node cannot pass for a leaf), the three tree roots must
//! hash to the state root, and that state root must be the trusted one. A record's CID must
//! be the one its leaf digests.
//!
//! Every lookup is signed with the reader's account key ([`CoordinatorApi::with_signer`];
//! the API answers only the parties themselves, see `pulse_protocol::lookup_auth`).
//!
//! [`check_read_access`] applies the rollup's read rule to a verified record and grant, so
//! that a client refuses a revoked, expired or foreign grant with a reason before it fetches
//! anything.

use std::time::Duration;

use cid::Cid;
use pulse_circuits::Fr;
use pulse_circuits::field::fr_from_decimal;
use pulse_circuits::leaf::{AccountLeaf, GrantLeaf, RecordLeaf, Roots};
use pulse_circuits::merkle::MerkleProof;
use pulse_circuits::tx::cid_digest;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The largest API answer read (a leaf with a depth-64 path is a few kilobytes; a list
/// page holds 50 of them).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Who signs the lookups: an account, its key, the deployment.
#[derive(Clone)]
struct LookupSigner {
    account: u64,
    key: pulse_circuits::eddsa::PrivateKey,
    deployment: pulse_circuits::deployment::DeploymentId,
}

impl std::fmt::Debug for LookupSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupSigner")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl LookupSigner {
    fn header(&self, method: &str, path_and_query: &str) -> String {
        let ts_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        pulse_protocol::lookup_auth::LookupAuth::sign(
            &self.key,
            self.account,
            self.deployment,
            ts_ms,
            rand::random(),
            method,
            path_and_query,
        )
        .header()
    }
}

/// A verified leaf of one of the state trees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified<T> {
    /// The leaf's index in its tree (the account, record or grant id).
    pub id: u64,
    /// The leaf preimage.
    pub leaf: T,
    /// The state root the proof leads to (equal to the trusted root).
    pub state_root: Fr,
}

/// A verified record: its leaf and the CID of its encrypted envelope on IPFS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRecord {
    /// The record leaf.
    pub record: Verified<RecordLeaf>,
    /// The CID, checked against the leaf's digest.
    pub cid: Cid,
}

/// The coordinator's HTTP API.
#[derive(Clone, Debug)]
pub struct CoordinatorApi {
    base: String,
    http: reqwest::Client,
    depth: Option<usize>,
    signer: Option<LookupSigner>,
}

#[derive(Deserialize)]
struct ProofAnswer<T> {
    id: u64,
    leaf_hash: String,
    proof: MerkleProof,
    roots: Roots,
    state_root: String,
    #[serde(flatten)]
    item: T,
}

#[derive(Deserialize)]
struct AccountItem {
    account: AccountLeaf,
}

#[derive(Deserialize)]
struct RecordItem {
    record: RecordLeaf,
    cid: String,
}

#[derive(Deserialize)]
struct GrantItem {
    grant: GrantLeaf,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
}

impl CoordinatorApi {
    /// A client for the API at `base` (`http://host:port`).
    ///
    /// # Errors
    /// [`LookupError::BadUrl`] when `base` is not an http(s) URL.
    pub fn new(base: &str) -> Result<Self, LookupError> {
        let base = base.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|e| LookupError::BadUrl {
            url: base.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(LookupError::BadUrl {
                url: base,
                reason: "the coordinator API is http:// or https://".to_owned(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| LookupError::Unreachable {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            base,
            http,
            depth: None,
            signer: None,
        })
    }

    /// Expects paths of exactly `depth` levels (the circuit's tree depth). Without it the
    /// depth is taken from the path itself, which lets an inner node pass for a leaf:
    /// always set it when the depth is known.
    #[must_use]
    pub fn with_depth(mut self, depth: usize) -> Self {
        self.depth = Some(depth);
        self
    }

    /// Signs every lookup as `account` with `key`, for `deployment` (the API answers only
    /// signed lookups, and only what that account may read).
    #[must_use]
    pub fn with_signer(
        mut self,
        account: u64,
        key: pulse_circuits::eddsa::PrivateKey,
        deployment: pulse_circuits::deployment::DeploymentId,
    ) -> Self {
        self.signer = Some(LookupSigner {
            account,
            key,
            deployment,
        });
        self
    }

    /// The API's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn get<T: DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
    ) -> Result<T, LookupError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |e: reqwest::Error| LookupError::Unreachable {
            url: self.base.clone(),
            reason: e.without_url().to_string(),
        };
        let mut request = self.http.get(&url);
        if let Some(signer) = &self.signer {
            request = request.header(reqwest::header::AUTHORIZATION, signer.header("GET", path));
        }
        let resp = request.send().await.map_err(unreachable)?;
        let status = resp.status();
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(LookupError::BadAnswer {
                what,
                reason: "the answer is larger than any proof".to_owned(),
            });
        }
        let body = resp.bytes().await.map_err(unreachable)?;
        if body.len() > MAX_ANSWER_BYTES {
            return Err(LookupError::BadAnswer {
                what,
                reason: "the answer is larger than any proof".to_owned(),
            });
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(LookupError::NotFound { what });
        }
        if !status.is_success() {
            let reason = serde_json::from_slice::<ErrorAnswer>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| format!("HTTP {status}"));
            if status == reqwest::StatusCode::UNAUTHORIZED {
                return Err(LookupError::Unauthorized { what, reason });
            }
            return Err(LookupError::Refused { what, reason });
        }
        serde_json::from_slice(&body).map_err(|e| LookupError::BadAnswer {
            what,
            reason: e.to_string(),
        })
    }

    fn check<T>(
        &self,
        what: &'static str,
        id: u64,
        answer: &ProofAnswer<T>,
        leaf_hash: Fr,
        tree_root: impl Fn(&Roots) -> Fr,
        trusted_root: Fr,
    ) -> Result<Fr, LookupError> {
        let bad = |reason: String| LookupError::Unproven { what, id, reason };
        if answer.id != id || answer.proof.index != id {
            return Err(bad(format!(
                "the answer is about index {} (path index {})",
                answer.id, answer.proof.index
            )));
        }
        let claimed =
            fr_from_decimal(&answer.leaf_hash).map_err(|e| bad(format!("leaf hash: {e}")))?;
        if claimed != leaf_hash {
            return Err(bad("the leaf does not hash to the proven leaf".to_owned()));
        }
        let depth = self.depth.unwrap_or(answer.proof.depth());
        if !answer
            .proof
            .verify(depth, tree_root(&answer.roots), leaf_hash)
        {
            return Err(bad(format!(
                "the Merkle path does not lead to the tree root (expected depth {depth}, got {})",
                answer.proof.depth()
            )));
        }
        let state_root = answer.roots.state_root();
        let claimed_root =
            fr_from_decimal(&answer.state_root).map_err(|e| bad(format!("state root: {e}")))?;
        if claimed_root != state_root {
            return Err(bad(
                "the tree roots do not hash to the claimed state root".to_owned()
            ));
        }
        if state_root != trusted_root {
            return Err(LookupError::RootMismatch {
                what,
                served: state_root,
                trusted: trusted_root,
            });
        }
        Ok(state_root)
    }

    /// Account `id`, proven against `trusted_root`.
    ///
    /// # Errors
    /// See [`LookupError`].
    pub async fn account(
        &self,
        id: u64,
        trusted_root: Fr,
    ) -> Result<Verified<AccountLeaf>, LookupError> {
        let a: ProofAnswer<AccountItem> = self.get("account", &format!("/accounts/{id}")).await?;
        let root = self.check(
            "account",
            id,
            &a,
            a.item.account.hash(),
            |r| r.accounts,
            trusted_root,
        )?;
        Ok(Verified {
            id,
            leaf: a.item.account,
            state_root: root,
        })
    }

    /// Record `id` and its CID, proven against `trusted_root`.
    ///
    /// # Errors
    /// See [`LookupError`].
    pub async fn record(&self, id: u64, trusted_root: Fr) -> Result<VerifiedRecord, LookupError> {
        self.record_under(id, None, trusted_root).await
    }

    /// Record `id`, read under grant `grant` (the grantee's lookup names the grant that
    /// lets it read), proven against `trusted_root`.
    ///
    /// # Errors
    /// See [`LookupError`].
    pub async fn record_under(
        &self,
        id: u64,
        grant: Option<u64>,
        trusted_root: Fr,
    ) -> Result<VerifiedRecord, LookupError> {
        let path = match grant {
            Some(g) => format!("/records/{id}?grant={g}"),
            None => format!("/records/{id}"),
        };
        let a: ProofAnswer<RecordItem> = self.get("record", &path).await?;
        self.check_record(id, a, trusted_root)
    }

    fn check_record(
        &self,
        id: u64,
        a: ProofAnswer<RecordItem>,
        trusted_root: Fr,
    ) -> Result<VerifiedRecord, LookupError> {
        let root = self.check(
            "record",
            id,
            &a,
            a.item.record.hash(),
            |r| r.records,
            trusted_root,
        )?;
        let unproven = |reason: String| LookupError::Unproven {
            what: "record",
            id,
            reason,
        };
        let cid: Cid = a
            .item
            .cid
            .parse()
            .map_err(|e| unproven(format!("its CID does not parse: {e}")))?;
        let digest = cid_digest(&cid).map_err(|e| unproven(format!("its CID: {e}")))?;
        if digest != a.item.record.cid_digest {
            return Err(unproven(
                "its CID is not the one the record leaf commits to".to_owned(),
            ));
        }
        Ok(VerifiedRecord {
            record: Verified {
                id,
                leaf: a.item.record,
                state_root: root,
            },
            cid,
        })
    }

    /// Grant `id`, proven against `trusted_root`.
    ///
    /// # Errors
    /// See [`LookupError`].
    pub async fn grant(
        &self,
        id: u64,
        trusted_root: Fr,
    ) -> Result<Verified<GrantLeaf>, LookupError> {
        let a: ProofAnswer<GrantItem> = self.get("grant", &format!("/grants/{id}")).await?;
        self.check_grant(id, a, trusted_root)
    }

    /// Any answer of the API, as JSON, signed like every lookup and not checked.
    ///
    /// # Errors
    /// See [`LookupError`].
    pub async fn json(
        &self,
        what: &'static str,
        path: &str,
    ) -> Result<serde_json::Value, LookupError> {
        self.get(what, path).await
    }

    /// Every record of `account` (owned or uploaded), each proven against `trusted_root`.
    ///
    /// # Errors
    /// See [`LookupError`].
    pub async fn records_of(
        &self,
        account: u64,
        trusted_root: Fr,
    ) -> Result<Vec<VerifiedRecord>, LookupError> {
        let answers: Vec<ProofAnswer<RecordItem>> =
            self.all_pages("records", account, "records").await?;
        answers
            .into_iter()
            .map(|a| self.check_record(a.id, a, trusted_root))
            .collect()
    }

    /// Every grant `account` made or holds, each proven against `trusted_root`.
    ///
    /// # Errors
    /// See [`LookupError`].
    pub async fn grants_of(
        &self,
        account: u64,
        trusted_root: Fr,
    ) -> Result<Vec<Verified<GrantLeaf>>, LookupError> {
        let answers: Vec<ProofAnswer<GrantItem>> =
            self.all_pages("grants", account, "grants").await?;
        answers
            .into_iter()
            .map(|a| self.check_grant(a.id, a, trusted_root))
            .collect()
    }

    /// The accesses logged of `account`'s records and by it, oldest first. Not proven
    /// against L1 (access logs are not state: they are bound by the chunk commitments, and
    /// checking them needs the batch data).
    ///
    /// # Errors
    /// See [`LookupError`].
    pub async fn access_of(
        &self,
        account: u64,
    ) -> Result<Vec<pulse_circuits::state::AccessEntry>, LookupError> {
        self.all_pages("access log", account, "access").await
    }

    /// Every item of the list `list` of `account`, page after page (`next_after`).
    async fn all_pages<T: DeserializeOwned>(
        &self,
        what: &'static str,
        account: u64,
        list: &str,
    ) -> Result<Vec<T>, LookupError> {
        let bad = |reason: String| LookupError::BadAnswer { what, reason };
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let path = match after {
                Some(a) => format!("/accounts/{account}/{list}?after={a}"),
                None => format!("/accounts/{account}/{list}"),
            };
            let mut page: serde_json::Value = self.get(what, &path).await?;
            let items: Vec<T> = serde_json::from_value(page[list].take())
                .map_err(|e| bad(format!("its {list}: {e}")))?;
            out.extend(items);
            let next = match &page["next_after"] {
                serde_json::Value::Null => None,
                n => Some(
                    n.as_u64()
                        .ok_or_else(|| bad("next_after is not a whole number".to_owned()))?,
                ),
            };
            match next {
                Some(n) if Some(n) != after => after = Some(n),
                _ => return Ok(out),
            }
        }
    }

    fn check_grant(
        &self,
        id: u64,
        a: ProofAnswer<GrantItem>,
        trusted_root: Fr,
    ) -> Result<Verified<GrantLeaf>, LookupError> {
        let root = self.check(
            "grant",
            id,
            &a,
            a.item.grant.hash(),
            |r| r.grants,
            trusted_root,
        )?;
        Ok(Verified {
            id,
            leaf: a.item.grant,
            state_root: root,
        })
    }
}

/// Why `reader` may not read a record, or `Ok` when a verified grant lets them.
///
/// The owner always may. Anyone else needs an active grant from the owner to them, for
/// this record or for all the owner's records, with the read permission, not expired at
/// `now` (unix seconds).
///
/// # Errors
/// [`AccessError`] naming the rule that fails.
pub fn check_read_access(
    reader: u64,
    record: &Verified<RecordLeaf>,
    grant: Option<&Verified<GrantLeaf>>,
    now: u64,
) -> Result<(), AccessError> {
    if record.leaf.owner == reader {
        return Ok(());
    }
    let Some(g) = grant else {
        return Err(AccessError::NoGrant { record: record.id });
    };
    let leaf = &g.leaf;
    if leaf.grantee != reader {
        return Err(AccessError::NotYours { grant: g.id });
    }
    if leaf.patient != record.leaf.owner {
        return Err(AccessError::OtherPatient {
            grant: g.id,
            record: record.id,
        });
    }
    if leaf.scope != 0 && leaf.scope != record.id {
        return Err(AccessError::OtherRecord {
            grant: g.id,
            record: record.id,
        });
    }
    if !leaf.active {
        return Err(AccessError::Revoked { grant: g.id });
    }
    if leaf.permissions & 1 == 0 {
        return Err(AccessError::NoReadPermission { grant: g.id });
    }
    if leaf.expires_at <= now {
        return Err(AccessError::Expired {
            grant: g.id,
            expired_at: leaf.expires_at,
        });
    }
    Ok(())
}

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The API URL is not usable.
    #[error("coordinator API URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The API did not answer.
    #[error(
        "cannot reach the coordinator API at {url}: {reason}; check --coordinator and that the coordinator runs"
    )]
    Unreachable {
        /// The API URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// There is no such leaf in the committed state.
    #[error("the coordinator has no such {what} (not created yet, or its batch is not sealed)")]
    NotFound {
        /// Account, record or grant.
        what: &'static str,
    },
    /// The API did not take the request's signature (401): unsigned, stale, replayed, or
    /// by an account it does not know (yet: a registration is known once its batch seals).
    #[error("the coordinator did not take the signature of the {what} lookup: {reason}")]
    Unauthorized {
        /// Account, record or grant.
        what: &'static str,
        /// Its message.
        reason: String,
    },
    /// The API refused the request.
    #[error("the coordinator refused the {what} lookup: {reason}")]
    Refused {
        /// Account, record or grant.
        what: &'static str,
        /// Its message.
        reason: String,
    },
    /// The answer is not what the API sends.
    #[error("the coordinator's {what} answer is malformed: {reason}")]
    BadAnswer {
        /// Account, record or grant.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The answer's proof does not hold: the coordinator is wrong or lying.
    #[error(
        "the coordinator's proof for {what} {id} does not hold: {reason}; do not trust this coordinator's answers"
    )]
    Unproven {
        /// Account, record or grant.
        what: &'static str,
        /// The id asked for.
        id: u64,
        /// Which check failed.
        reason: String,
    },
    /// A valid proof, but against another state root than the trusted one: usually the
    /// coordinator is ahead of L1 (a batch is being proven); retry after it commits.
    #[error(
        "the coordinator's {what} proof is for state root {served}, but L1 holds {trusted}; a batch is probably still being proven or committed: retry shortly"
    )]
    RootMismatch {
        /// Account, record or grant.
        what: &'static str,
        /// The root the proof leads to.
        served: Fr,
        /// The trusted root.
        trusted: Fr,
    },
}

/// Why a reader may not read a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    /// Not the owner, and no grant named.
    #[error("you do not own record {record}; name the grant that lets you read it (--grant)")]
    NoGrant {
        /// The record.
        record: u64,
    },
    /// The grant is to someone else.
    #[error("grant {grant} was given to another account, not to you")]
    NotYours {
        /// The grant.
        grant: u64,
    },
    /// The grant comes from another patient than the record's owner.
    #[error("grant {grant} is from another patient than the owner of record {record}")]
    OtherPatient {
        /// The grant.
        grant: u64,
        /// The record.
        record: u64,
    },
    /// The grant covers another record.
    #[error("grant {grant} covers another record, not record {record}")]
    OtherRecord {
        /// The grant.
        grant: u64,
        /// The record.
        record: u64,
    },
    /// The patient revoked it.
    #[error("grant {grant} was revoked by the patient (on L1); you no longer have access")]
    Revoked {
        /// The grant.
        grant: u64,
    },
    /// Write-only.
    #[error("grant {grant} does not carry the read permission")]
    NoReadPermission {
        /// The grant.
        grant: u64,
    },
    /// Past its expiry.
    #[error("grant {grant} expired at unix time {expired_at}")]
    Expired {
        /// The grant.
        grant: u64,
        /// Its expiry.
        expired_at: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(owner: u64) -> Verified<RecordLeaf> {
        Verified {
            id: 5,
            leaf: RecordLeaf {
                owner,
                uploader: owner,
                cid_digest: Fr::from(9u64),
                metadata_hash: Fr::from(1u64),
            },
            state_root: Fr::from(1u64),
        }
    }

    fn grant(f: impl FnOnce(&mut GrantLeaf)) -> Verified<GrantLeaf> {
        let mut leaf = GrantLeaf {
            patient: 2,
            grantee: 3,
            scope: 5,
            permissions: 1,
            expires_at: 1000,
            active: true,
        };
        f(&mut leaf);
        Verified {
            id: 8,
            leaf,
            state_root: Fr::from(1u64),
        }
    }

    #[test]
    fn read_rule() {
        let r = record(2);
        assert_eq!(check_read_access(2, &r, None, 10), Ok(()));
        assert_eq!(
            check_read_access(3, &r, None, 10),
            Err(AccessError::NoGrant { record: 5 })
        );
        assert_eq!(check_read_access(3, &r, Some(&grant(|_| {})), 10), Ok(()));
        assert_eq!(
            check_read_access(3, &r, Some(&grant(|g| g.scope = 0)), 10),
            Ok(())
        );
        assert_eq!(
            check_read_access(4, &r, Some(&grant(|_| {})), 10),
            Err(AccessError::NotYours { grant: 8 })
        );
        assert_eq!(
            check_read_access(3, &r, Some(&grant(|g| g.patient = 7)), 10),
            Err(AccessError::OtherPatient {
                grant: 8,
                record: 5
            })
        );
        assert_eq!(
            check_read_access(3, &r, Some(&grant(|g| g.scope = 6)), 10),
            Err(AccessError::OtherRecord {
                grant: 8,
                record: 5
            })
        );
        assert_eq!(
            check_read_access(3, &r, Some(&grant(|g| g.active = false)), 10),
            Err(AccessError::Revoked { grant: 8 })
        );
        assert_eq!(
            check_read_access(3, &r, Some(&grant(|g| g.permissions = 2)), 10),
            Err(AccessError::NoReadPermission { grant: 8 })
        );
        assert_eq!(
            check_read_access(3, &r, Some(&grant(|_| {})), 1000),
            Err(AccessError::Expired {
                grant: 8,
                expired_at: 1000
            })
        );
    }
}
