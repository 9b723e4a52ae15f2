//! The data-availability committee, both sides of it.
//!
//! - The coordinator seals each batch's public data for the committee
//!   ([`pulse_dac::seal`]: only ciphertext goes to IPFS), asks the members to attest it
//!   ([`AttestRequest`]), and collects attestations ([`collect`]) until the threshold of
//!   members has signed; `commitBatch` then carries them and L1 counts them.
//! - A member's node ([`run_member`], `pulse committee run`) walks the requests in order:
//!   fetches the sealed data, opens it with its own key, checks it against the chunk
//!   commitments (which the chunk proofs bind, so data that passes is the data the proofs
//!   are about), pins it on its IPFS node, and only then signs and publishes its
//!   attestation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, bail};
use async_nats::HeaderMap;
use async_nats::jetstream;
use async_nats::jetstream::stream::DirectGetErrorKind;
use pulse_circuits::Fr;
use pulse_circuits::deployment::DeploymentId;
use pulse_circuits::field::fr_to_decimal;
use pulse_dac::{Committee, MemberKey};
use pulse_l1::attest::{self, Attestation};
use pulse_protocol::dac::{
    AttestRequest, AttestationMessage, DAC_STREAM, attestation_subject, request_subject,
    request_subjects,
};
use pulse_protocol::{decode, encode};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::pubdata::{self, BatchData};

/// How often the collector and the member poll the committee stream.
const POLL: Duration = Duration::from_millis(200);
/// How often a batch still short of attestations is reported.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// The committee as the coordinator uses it: the file, and each member's address.
#[derive(Clone, Debug)]
pub struct CommitteeSide {
    /// The committee file.
    pub committee: Committee,
    /// Name and attestation address of each member, in the file's order.
    pub members: Vec<(String, Address)>,
}

impl CommitteeSide {
    /// From a checked committee file.
    ///
    /// # Errors
    /// A member address that does not parse.
    pub fn new(committee: Committee) -> Result<Self> {
        let addresses = attest::member_addresses(&committee).map_err(anyhow::Error::msg)?;
        let members = committee
            .members
            .iter()
            .map(|m| m.name.clone())
            .zip(addresses)
            .collect();
        Ok(Self { committee, members })
    }

    /// The threshold, as a count.
    pub fn threshold(&self) -> usize {
        self.committee.threshold as usize
    }
}

/// Publishes the request to attest batch `batch` (idempotent: the message id names the
/// batch and the CID).
///
/// # Errors
/// NATS refused or did not store it.
pub async fn request(
    js: &jetstream::Context,
    side: &CommitteeSide,
    batch: u64,
    data_cid: &str,
    commitments: &[Fr],
) -> Result<()> {
    let msg = AttestRequest {
        batch,
        data_cid: data_cid.to_owned(),
        committee: hex::encode(side.committee.id()),
        commitments: commitments.iter().map(fr_to_decimal).collect(),
    };
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("dac-{batch}-{data_cid}").as_str());
    js.publish_with_headers(request_subject(batch), headers, encode(&msg).into())
        .await
        .context("publishing the attestation request")?
        .await
        .with_context(|| {
            format!("storing the attestation request (is the {DAC_STREAM} stream there?)")
        })?;
    Ok(())
}

/// Checks one member's attestation message for batch `batch` over `digest`: the batch and
/// CID it names, and a signature that recovers to the member's address.
pub fn check_attestation(
    msg: &AttestationMessage,
    batch: u64,
    data_cid: &str,
    digest: B256,
    member: &str,
    address: Address,
) -> Result<Attestation, String> {
    if msg.batch != batch || msg.data_cid != data_cid {
        return Err(format!(
            "member {member} attested batch {} at {}, not batch {batch} at {data_cid}",
            msg.batch, msg.data_cid
        ));
    }
    let bytes = msg
        .signature
        .strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| format!("member {member}'s signature is not 0x-prefixed hex"))?;
    let signer = attest::recover(digest, &bytes).map_err(|e| format!("member {member}: {e}"))?;
    if signer != address {
        return Err(format!(
            "member {member}'s attestation is signed by {signer}, not by its address {address} \
             (it signed other data, or with another key)"
        ));
    }
    let signature = bytes
        .try_into()
        .map_err(|_| format!("member {member}'s signature is not 65 bytes"))?;
    Ok(Attestation { signer, signature })
}

/// Collects attestations of batch `batch` until `side`'s threshold of members has signed
/// `digest` (or `cancel`), then sends them on `done`. Invalid attestations are reported
/// and skipped (the member may publish a corrected one).
pub async fn collect(
    js: jetstream::Context,
    side: CommitteeSide,
    batch: u64,
    data_cid: String,
    digest: B256,
    done: mpsc::Sender<(u64, Vec<Attestation>)>,
    cancel: CancellationToken,
) {
    let stream = match js.get_stream_no_info(DAC_STREAM).await {
        Ok(s) => s,
        Err(e) => {
            warn!(batch, error = %e, "cannot open the committee stream");
            return;
        }
    };
    let mut valid: BTreeMap<String, Attestation> = BTreeMap::new();
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let started = Instant::now();
    let mut reported = Instant::now();
    loop {
        for (name, address) in &side.members {
            if valid.contains_key(name) {
                continue;
            }
            let subject = attestation_subject(name, &batch.to_string());
            let msg = match stream.direct_get_last_for_subject(subject).await {
                Ok(m) => m,
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::debug!(batch, error = %e, "reading the committee stream failed; retrying");
                    continue;
                }
            };
            // A message already refused is not reported again.
            if refused.get(name) == Some(&msg.sequence) {
                continue;
            }
            let checked = decode::<AttestationMessage>(&msg.payload)
                .map_err(|e| format!("member {name}'s attestation: {e}"))
                .and_then(|m| check_attestation(&m, batch, &data_cid, digest, name, *address));
            match checked {
                Ok(a) => {
                    info!(batch, member = %name, "attestation received");
                    valid.insert(name.clone(), a);
                }
                Err(reason) => {
                    warn!(batch, %reason, "attestation refused");
                    refused.insert(name.clone(), msg.sequence);
                }
            }
        }
        if valid.len() >= side.threshold() {
            let atts = valid.into_values().take(side.threshold()).collect();
            let _ = done.send((batch, atts)).await;
            return;
        }
        if reported.elapsed() >= REPORT_EVERY {
            reported = Instant::now();
            let missing: Vec<&str> = side
                .members
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| !valid.contains_key(*n))
                .collect();
            warn!(
                batch,
                have = valid.len(),
                need = side.threshold(),
                waited_s = started.elapsed().as_secs(),
                missing = %missing.join(","),
                "the batch waits for committee attestations"
            );
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// What a member's node needs.
pub struct MemberConfig {
    /// The NATS server, its CA and the member's credentials (its user name is its member
    /// name).
    pub nats: pulse_access::NatsEndpoint,
    /// The committee file.
    pub committee: Committee,
    /// The member's X25519 key (its name is the member's).
    pub key: MemberKey,
    /// The member's attestation key (its address is the committee's for this member).
    pub signer: PrivateKeySigner,
    /// The deployment attestations are for (read from the contract).
    pub deployment: DeploymentId,
    /// The member's IPFS node: it fetches and pins the batch data there.
    pub ipfs_url: String,
    /// How long one fetch from IPFS may take.
    pub fetch_timeout: Duration,
    /// Attest only requests from this batch on (0: from the oldest the stream keeps).
    pub from_batch: u64,
}

/// What a member's node did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberSummary {
    /// Batches attested.
    pub attested: u64,
    /// Requests refused (data unavailable, not opening, or not matching).
    pub refused: u64,
    /// The last batch attested.
    pub last_batch: u64,
}

/// Checks batch data against the request: the batch number and each chunk's commitment,
/// recomputed from its slots, equal to the one the request names. Returns the
/// commitments.
///
/// # Errors
/// What does not match.
pub fn check_batch(data: &BatchData, request: &AttestRequest) -> Result<Vec<Fr>, String> {
    if data.batch != request.batch {
        return Err(format!(
            "the data is batch {}'s, the request batch {}'s",
            data.batch, request.batch
        ));
    }
    if data.chunks.len() != request.commitments.len() {
        return Err(format!(
            "the data has {} chunks, the request names {} commitments",
            data.chunks.len(),
            request.commitments.len()
        ));
    }
    let mut out = Vec::with_capacity(data.chunks.len());
    for (i, (c, named)) in data.chunks.iter().zip(&request.commitments).enumerate() {
        let computed = c.computed_commitment(data.timestamp);
        if computed != c.commitment {
            return Err(format!(
                "chunk {i}'s slots do not give the commitment the data states"
            ));
        }
        if fr_to_decimal(&computed) != *named {
            return Err(format!(
                "chunk {i}'s data commits to another value than the chunk's proof"
            ));
        }
        out.push(computed);
    }
    Ok(out)
}

/// Runs a member's node until `shutdown`: attests every request it can check.
///
/// # Errors
/// A start that cannot work: the key is not the committee's for its name, the signer's
/// address is not the member's, or NATS or IPFS cannot be reached.
pub async fn run_member(
    config: MemberConfig,
    shutdown: CancellationToken,
) -> Result<MemberSummary> {
    let name = config.key.name().to_owned();
    let member = config
        .committee
        .member(&name)
        .with_context(|| format!("{name:?} is not a member of this committee"))?;
    if !member.x25519.eq_ignore_ascii_case(&config.key.public_hex()) {
        bail!("this key is not the one the committee lists for {name}: use that member's key file");
    }
    let address: Address = member
        .address
        .parse()
        .with_context(|| format!("member {name}'s address"))?;
    if config.signer.address() != address {
        bail!(
            "the attestation key's address is {}, the committee lists {address} for {name}: give that address's key",
            config.signer.address()
        );
    }
    let ipfs = pulse_ipfs::IpfsClient::new(&config.ipfs_url)
        .context("the IPFS API URL")?
        .with_max_cat_bytes(pubdata::MAX_BYTES);
    ipfs.version()
        .await
        .with_context(|| format!("reaching the IPFS node at {}", config.ipfs_url))?;
    let client = config
        .nats
        .connect(&format!("pulse-committee-{name}"))
        .await
        .context("connecting to NATS with the member's credentials")?;
    let js = jetstream::new(client);
    let stream = js
        .get_stream_no_info(DAC_STREAM)
        .await
        .context("opening the committee stream")?;
    let committee_id = hex::encode(config.committee.id());
    info!(member = %name, %address, "committee member running");
    let mut summary = MemberSummary::default();
    let mut next_seq = 1u64;
    loop {
        let msg = tokio::select! {
            () = shutdown.cancelled() => return Ok(summary),
            r = stream.direct_get_next_for_subject(request_subjects(), Some(next_seq)) => r,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                if e.kind() != DirectGetErrorKind::NotFound {
                    tracing::debug!(error = %e, "reading the committee stream failed; retrying");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(summary),
                    () = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
        };
        next_seq = msg.sequence + 1;
        let request = match decode::<AttestRequest>(&msg.payload) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "an attestation request does not decode; skipped");
                summary.refused += 1;
                continue;
            }
        };
        if request.batch < config.from_batch {
            continue;
        }
        if request.committee != committee_id {
            warn!(
                batch = request.batch,
                "the request is for another committee (its file differs from this one); not attested"
            );
            summary.refused += 1;
            continue;
        }
        match attest_one(&config, &ipfs, &request).await {
            Ok(signed) => {
                let out = AttestationMessage {
                    batch: request.batch,
                    data_cid: request.data_cid.clone(),
                    signer: address.to_string(),
                    signature: format!("0x{}", hex::encode(signed.signature)),
                };
                let subject = attestation_subject(&name, &request.batch.to_string());
                let stored = match js.publish(subject, encode(&out).into()).await {
                    Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match stored {
                    Ok(()) => {
                        info!(batch = request.batch, cid = %request.data_cid, "batch attested");
                        summary.attested += 1;
                        summary.last_batch = request.batch;
                    }
                    Err(e) => {
                        // Asked again: the request is read again from the same place.
                        warn!(batch = request.batch, error = %e, "publishing the attestation failed; retrying");
                        next_seq = msg.sequence;
                        tokio::time::sleep(POLL).await;
                    }
                }
            }
            Err(AttestFailure::Retry(reason)) => {
                warn!(batch = request.batch, %reason, "cannot attest yet; retrying");
                next_seq = msg.sequence;
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(summary),
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(AttestFailure::Refuse(reason)) => {
                warn!(batch = request.batch, %reason, "batch not attested");
                summary.refused += 1;
            }
        }
    }
}

enum AttestFailure {
    /// Worth trying again (IPFS did not answer, pinning failed).
    Retry(String),
    /// The data is wrong: never attested.
    Refuse(String),
}

async fn attest_one(
    config: &MemberConfig,
    ipfs: &pulse_ipfs::IpfsClient,
    request: &AttestRequest,
) -> Result<Attestation, AttestFailure> {
    let n = request.batch;
    let cid: cid::Cid = request
        .data_cid
        .parse()
        .map_err(|e| AttestFailure::Refuse(format!("{:?} is not a CID: {e}", request.data_cid)))?;
    let bytes = ipfs.cat(&cid, config.fetch_timeout).await.map_err(|e| {
        if e.is_transient() {
            AttestFailure::Retry(format!("fetching {cid}: {e}"))
        } else {
            AttestFailure::Refuse(format!("fetching {cid}: {e}"))
        }
    })?;
    let plain = pulse_dac::open(&bytes, n, &config.committee, &config.key)
        .map_err(|e| AttestFailure::Refuse(e.to_string()))?;
    let data = BatchData::from_json(&plain).map_err(AttestFailure::Refuse)?;
    let commitments = check_batch(&data, request).map_err(AttestFailure::Refuse)?;
    ipfs.pin_add(&cid)
        .await
        .map_err(|e| AttestFailure::Retry(format!("pinning {cid}: {e}")))?;
    let digest = attest::attestation_digest(config.deployment, n, &request.data_cid, &commitments);
    attest::sign(&config.signer, digest).map_err(AttestFailure::Retry)
}
