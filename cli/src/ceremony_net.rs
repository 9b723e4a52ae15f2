//! `pulse ceremony host` and `pulse ceremony join`: a phase-2 ceremony passed from
//! participant to participant through the cluster (the protocol is in
//! [`pulse_protocol::ceremony`]).
//!
//! The host (the operator's coordinator credentials) adds the latest key to IPFS, offers
//! the next participant its turn on NATS, waits for the announced contribution, fetches
//! it, checks it against the key it was offered ([`Ceremony::import_zkey`]: circuit,
//! transcript, proof of knowledge, consistency) and only then asks the next participant.
//! A refused contribution is answered with the reason and the turn stays open until its
//! timeout; a participant that does not answer in time is skipped, and the ceremony goes
//! on: it is secure if any one accepted participant destroyed its secret.
//!
//! A participant (a hospital's worker credentials) waits for its turn, contributes with
//! fresh randomness, adds its key to IPFS, announces it, prints its contribution hash for
//! publication, and waits for the verdict.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use pulse_ceremony::ceremony::{Ceremony, transcript_hash};
use pulse_ceremony::phase2;
use pulse_ceremony::rng::contribution_stream;
use pulse_ceremony::zkey::Zkey;
use pulse_ipfs::{Cid, IpfsClient};
use pulse_protocol::ceremony::{
    CEREMONY_STREAM, CeremonyContribution, CeremonyTurn, CeremonyVerdict, VerdictOutcome, ZkeyRef,
    ceremony_stream, contribution_subject, turn_subject, verdict_subject,
};
use pulse_protocol::messages::Message;
use pulse_protocol::{DecodeError, decode, encode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::nats::NatsArgs;

/// How often the host and the participants read the ceremony stream.
const POLL: Duration = Duration::from_millis(250);
/// How long IPFS gets to add or find a key (a 2^20 key is about a gigabyte).
const IPFS_TIMEOUT: Duration = Duration::from_secs(600);

/// `pulse ceremony host`.
#[derive(clap::Args)]
pub struct HostArgs {
    /// The ceremony directory (from `pulse ceremony new`).
    dir: PathBuf,
    #[command(flatten)]
    nats: NatsArgs,
    /// The IPFS node's RPC API.
    #[arg(long, env = "PULSE_IPFS", default_value = "http://127.0.0.1:5001")]
    ipfs: String,
    /// The participants, in order: their NATS user names (worker ids), comma-separated or
    /// the flag repeated.
    #[arg(long = "participant", required = true, value_delimiter = ',')]
    participants: Vec<String>,
    /// How long each participant has to contribute (`90s`, `30m`).
    #[arg(long, default_value = "30m", value_parser = crate::coordinator::parse_duration)]
    turn_timeout: Duration,
    /// The largest key accepted from a participant (`2GiB`).
    #[arg(long, default_value = "4GiB", value_parser = crate::worker::parse_size)]
    max_zkey: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pulse ceremony join`.
#[derive(clap::Args)]
pub struct JoinArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// The IPFS node's RPC API.
    #[arg(long, env = "PULSE_IPFS", default_value = "http://127.0.0.1:5001")]
    ipfs: String,
    /// Only contribute to this ceremony (its circuit hash, as the host publishes it).
    #[arg(long)]
    ceremony: Option<String>,
    /// Extra randomness of yours, mixed in with the operating system's.
    #[arg(long, env = "PULSE_CEREMONY_ENTROPY", hide_env_values = true)]
    entropy: Option<String>,
    /// How long to wait for the turn, and then for the verdict (`1h`).
    #[arg(long, default_value = "1h", value_parser = crate::coordinator::parse_duration)]
    wait: Duration,
    /// The largest key accepted from the host (`2GiB`).
    #[arg(long, default_value = "4GiB", value_parser = crate::worker::parse_size)]
    max_zkey: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What the host did with each participant.
#[derive(Debug, Serialize)]
pub struct HostReport {
    /// The ceremony (its circuit hash).
    pub ceremony: String,
    /// The contributions verified and added, in order.
    pub accepted: Vec<Accepted>,
    /// The participants skipped, and why.
    pub skipped: Vec<Skipped>,
    /// The transcript hash after the last accepted contribution.
    pub transcript: String,
}

/// One accepted contribution.
#[derive(Debug, Serialize)]
pub struct Accepted {
    /// The participant.
    pub participant: String,
    /// Its index in the transcript.
    pub index: usize,
    /// Its contribution hash.
    pub hash: String,
}

/// One skipped participant.
#[derive(Debug, Serialize)]
pub struct Skipped {
    /// The participant.
    pub participant: String,
    /// Why: the last refusal, or the timeout.
    pub reason: String,
}

/// What a participant did.
#[derive(Debug, Serialize)]
pub struct JoinReport {
    /// The participant.
    pub participant: String,
    /// The ceremony.
    pub ceremony: String,
    /// Its contribution's index.
    pub index: u32,
    /// Its contribution hash (publish it).
    pub contribution_hash: String,
    /// The transcript hash after it, as the host accepted it.
    pub transcript: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn ipfs_client(url: &str, max_zkey: u64) -> Result<IpfsClient> {
    Ok(IpfsClient::new(url)
        .with_context(|| format!("IPFS API {url}"))?
        .with_timeout(IPFS_TIMEOUT)
        .with_max_cat_bytes(usize::try_from(max_zkey).unwrap_or(usize::MAX)))
}

/// The last message on `subject` with its stream sequence: `None` when there is none, or
/// when the stream cannot be read now (said once per kind of failure by `warn`).
async fn last<T: Message>(
    stream: &jetstream::stream::Stream<()>,
    subject: &str,
) -> Option<(u64, Result<T, DecodeError>)> {
    match stream.direct_get_last_for_subject(subject).await {
        Ok(msg) => Some((msg.sequence, decode::<T>(&msg.payload))),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => None,
        Err(e) => {
            tracing::debug!(subject, error = %e, "reading the ceremony stream failed; retrying");
            None
        }
    }
}

async fn publish<T: Message>(js: &jetstream::Context, subject: String, msg: &T) -> Result<u64> {
    let ack = js
        .publish(subject.clone(), encode(msg).into())
        .await
        .with_context(|| format!("publishing the {} on {subject}", T::KIND))?
        .await
        .with_context(|| {
            format!(
                "storing the {} on {subject} (is the {CEREMONY_STREAM} stream there?)",
                T::KIND
            )
        })?;
    Ok(ack.sequence)
}

/// Fetches the key `r` names, checks its length and SHA-256, and parses it.
async fn fetch_zkey(ipfs: &IpfsClient, r: &ZkeyRef, max: u64) -> Result<Zkey, String> {
    if r.bytes > max {
        return Err(format!(
            "the key is {} bytes, over the {max}-byte limit",
            r.bytes
        ));
    }
    let cid =
        Cid::try_from(r.cid.as_str()).map_err(|e| format!("{:?} is not a CID: {e}", r.cid))?;
    let bytes = ipfs
        .cat(&cid, IPFS_TIMEOUT)
        .await
        .map_err(|e| format!("fetching {cid} from IPFS: {e}"))?;
    if bytes.len() as u64 != r.bytes || sha256_hex(&bytes) != r.sha256 {
        return Err(format!(
            "{cid} holds {} bytes with SHA-256 {}, not the {} bytes with SHA-256 {} announced",
            bytes.len(),
            sha256_hex(&bytes),
            r.bytes,
            r.sha256
        ));
    }
    Zkey::parse(bytes).map_err(|e| format!("{cid} is not a Groth16 zkey: {e}"))
}

async fn add_zkey(ipfs: &IpfsClient, bytes: Vec<u8>) -> Result<ZkeyRef> {
    let (sha256, len) = (sha256_hex(&bytes), bytes.len() as u64);
    let cid = ipfs.add(bytes).await.context("adding the key to IPFS")?;
    Ok(ZkeyRef {
        cid: cid.to_string(),
        sha256,
        bytes: len,
    })
}

/// What the host needs besides the ceremony.
pub struct HostOptions {
    /// How long each participant has.
    pub turn_timeout: Duration,
    /// The largest key accepted.
    pub max_zkey: u64,
}

/// Offers each participant its turn in order, verifying every contribution before the
/// next turn (see the module's documentation).
///
/// # Errors
/// The ceremony cannot be read or written, NATS or IPFS refuse the host's own writes.
/// A participant's bad contribution or silence is not an error: it is refused or skipped.
pub async fn host(
    c: &mut Ceremony,
    js: &jetstream::Context,
    ipfs: &IpfsClient,
    participants: &[String],
    options: &HostOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<HostReport> {
    js.create_or_update_stream(ceremony_stream())
        .await
        .with_context(|| format!("creating the {CEREMONY_STREAM} stream"))?;
    let stream = js
        .get_stream_no_info(CEREMONY_STREAM)
        .await
        .with_context(|| format!("opening the {CEREMONY_STREAM} stream"))?;
    let id = c.manifest.circuit_hash.clone();
    // The latest key's transcript is read once; each accepted contribution's replaces it.
    let transcript = transcript_hash(&tokio::task::block_in_place(|| c.latest())?);
    let mut report = HostReport {
        ceremony: id.clone(),
        accepted: Vec::new(),
        skipped: Vec::new(),
        transcript,
    };
    for p in participants {
        pulse_access::validate_user_name(p).map_err(|e| anyhow!("participant {p:?}: {e}"))?;
        if c.is_closed() {
            bail!("the ceremony already ends with a beacon: no participant can follow it");
        }
        let base_path = c.latest_path();
        let base = std::fs::read(&base_path)
            .with_context(|| format!("reading {}", base_path.display()))?;
        let index = c.manifest.contributions.len() + 1;
        progress(&format!("offering contribution #{index} to {p}"));
        let zkey = add_zkey(ipfs, base).await?;
        let turn = CeremonyTurn {
            ceremony: id.clone(),
            index: u32::try_from(index).context("too many contributions")?,
            zkey,
            transcript: report.transcript.clone(),
            timeout_s: options.turn_timeout.as_secs(),
        };
        let turn_seq = publish(js, turn_subject(p), &turn).await?;
        let deadline = Instant::now() + options.turn_timeout;
        let mut seen = HashSet::new();
        let mut last_refusal = None;
        let outcome = loop {
            if Instant::now() >= deadline {
                break Err(match last_refusal.take() {
                    Some(r) => format!(
                        "no valid contribution within {:?}; the last was refused: {r}",
                        options.turn_timeout
                    ),
                    None => format!("no contribution within {:?}", options.turn_timeout),
                });
            }
            let Some((seq, msg)) =
                last::<CeremonyContribution>(&stream, &contribution_subject(p)).await
            else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            // Announcements before this turn belong to earlier turns.
            if seq <= turn_seq || !seen.insert(seq) {
                tokio::time::sleep(POLL).await;
                continue;
            }
            let checked = match msg {
                Err(e) => Err(format!("the announcement is unreadable: {e}")),
                Ok(m) => {
                    progress(&format!("verifying contribution #{index} of {p}"));
                    accept(c, ipfs, &turn, p, &m, options.max_zkey).await
                }
            };
            match checked {
                Ok(a) => break Ok(a),
                Err(reason) => {
                    tracing::warn!(participant = %p, index, %reason, "contribution refused");
                    progress(&format!("refused contribution #{index} of {p}: {reason}"));
                    let verdict = CeremonyVerdict {
                        ceremony: id.clone(),
                        index: turn.index,
                        outcome: VerdictOutcome::Refused {
                            reason: reason.clone(),
                            is_final: false,
                        },
                    };
                    publish(js, verdict_subject(p), &verdict).await?;
                    last_refusal = Some(reason);
                }
            }
        };
        let outcome = match outcome {
            Ok((a, transcript)) => {
                report.transcript.clone_from(&transcript);
                let accepted = VerdictOutcome::Accepted {
                    contribution_hash: a.hash.clone(),
                    transcript,
                };
                report.accepted.push(a);
                accepted
            }
            Err(reason) => {
                progress(&format!("skipping {p}: {reason}"));
                report.skipped.push(Skipped {
                    participant: p.clone(),
                    reason: reason.clone(),
                });
                VerdictOutcome::Refused {
                    reason,
                    is_final: true,
                }
            }
        };
        let verdict = CeremonyVerdict {
            ceremony: id.clone(),
            index: turn.index,
            outcome,
        };
        publish(js, verdict_subject(p), &verdict).await?;
    }
    Ok(report)
}

/// Fetches, checks and imports one announced contribution; the reason when refused.
async fn accept(
    c: &mut Ceremony,
    ipfs: &IpfsClient,
    turn: &CeremonyTurn,
    participant: &str,
    m: &CeremonyContribution,
    max: u64,
) -> Result<(Accepted, String), String> {
    if m.ceremony != turn.ceremony || m.index != turn.index || m.base_sha256 != turn.zkey.sha256 {
        return Err(format!(
            "the announcement is for ceremony {}…, contribution #{} on the key with SHA-256 {}; \
             this turn is contribution #{} on the key with SHA-256 {}",
            m.ceremony.chars().take(16).collect::<String>(),
            m.index,
            m.base_sha256,
            turn.index,
            turn.zkey.sha256
        ));
    }
    let next = fetch_zkey(ipfs, &m.zkey, max).await?;
    let last = next.mpc.contributions.last();
    let name = last.and_then(|l| l.name.as_deref());
    if name != Some(participant) {
        return Err(format!(
            "contribution #{}: its name is {name:?}, but it was announced by participant {participant:?} (a participant contributes under its own name)",
            turn.index
        ));
    }
    let hash = last.map(|l| hex::encode(l.hash())).unwrap_or_default();
    if hash != m.contribution_hash {
        return Err(format!(
            "contribution #{}: the key's contribution hash is {hash}, not the {} announced",
            turn.index, m.contribution_hash
        ));
    }
    let transcript = transcript_hash(&next);
    let summary =
        tokio::task::block_in_place(|| c.import_zkey(&next)).map_err(|e| e.to_string())?;
    Ok((
        Accepted {
            participant: participant.to_owned(),
            index: summary.index,
            hash: summary.hash,
        },
        transcript,
    ))
}

/// What a participant needs besides its connection.
pub struct JoinOptions<'a> {
    /// Only this ceremony, if given.
    pub ceremony: Option<&'a str>,
    /// Extra entropy.
    pub entropy: &'a [u8],
    /// How long to wait for the turn, then for the verdict.
    pub wait: Duration,
    /// The largest key accepted.
    pub max_zkey: u64,
}

/// Waits for `name`'s turn, contributes, announces, and waits for the verdict.
///
/// # Errors
/// No turn within the wait, a key from the host that does not check, a refusal (its
/// reason), NATS or IPFS failures.
pub async fn join(
    js: &jetstream::Context,
    ipfs: &IpfsClient,
    name: &str,
    options: &JoinOptions<'_>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<JoinReport> {
    let stream = js
        .get_stream_no_info(CEREMONY_STREAM)
        .await
        .with_context(|| format!("opening the {CEREMONY_STREAM} stream"))?;
    let deadline = Instant::now() + options.wait;
    progress(&format!("waiting for {name}'s turn"));
    let turn = loop {
        if let Some((turn_seq, Ok(t))) = last::<CeremonyTurn>(&stream, &turn_subject(name)).await
            && options.ceremony.is_none_or(|c| c == t.ceremony)
        {
            let over = matches!(
                last::<CeremonyVerdict>(&stream, &verdict_subject(name)).await,
                Some((seq, Ok(v))) if seq > turn_seq && v.ceremony == t.ceremony && v.index == t.index
                    && matches!(v.outcome, VerdictOutcome::Accepted { .. } | VerdictOutcome::Refused { is_final: true, .. })
            );
            if !over {
                break t;
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "no open turn was offered to {name} within {:?} (is the host running, and is {name} among its participants?)",
                options.wait
            );
        }
        tokio::time::sleep(POLL).await;
    };
    progress(&format!(
        "contribution #{} to ceremony {}…: fetching the key",
        turn.index,
        turn.ceremony.chars().take(16).collect::<String>()
    ));
    let prev = fetch_zkey(ipfs, &turn.zkey, options.max_zkey)
        .await
        .map_err(|e| anyhow!("the host's key does not check: {e}"))?;
    if hex::encode(prev.mpc.cs_hash) != turn.ceremony
        || prev.mpc.contributions.len() + 1 != turn.index as usize
    {
        bail!(
            "the host's key is not the one its turn describes (ceremony {}, {} earlier contributions; the turn says contribution #{})",
            hex::encode(prev.mpc.cs_hash),
            prev.mpc.contributions.len(),
            turn.index
        );
    }
    progress("applying the contribution");
    let (next, hash) = tokio::task::block_in_place(|| {
        phase2::contribute(
            &prev,
            &mut contribution_stream(options.entropy),
            Some(name.to_owned()),
        )
    });
    drop(prev);
    let bytes = tokio::task::block_in_place(|| next.to_bytes());
    drop(next);
    progress("adding the key to IPFS and announcing it");
    let zkey = add_zkey(ipfs, bytes).await?;
    let announcement = CeremonyContribution {
        ceremony: turn.ceremony.clone(),
        index: turn.index,
        base_sha256: turn.zkey.sha256.clone(),
        zkey,
        contribution_hash: hex::encode(hash),
    };
    let seq = publish(js, contribution_subject(name), &announcement).await?;
    progress("waiting for the host's verdict");
    let deadline = Instant::now() + options.wait;
    loop {
        if let Some((vseq, Ok(v))) = last::<CeremonyVerdict>(&stream, &verdict_subject(name)).await
            && vseq > seq
            && v.ceremony == turn.ceremony
            && v.index == turn.index
        {
            match v.outcome {
                VerdictOutcome::Accepted {
                    contribution_hash,
                    transcript,
                } if contribution_hash == announcement.contribution_hash => {
                    return Ok(JoinReport {
                        participant: name.to_owned(),
                        ceremony: turn.ceremony,
                        index: turn.index,
                        contribution_hash,
                        transcript,
                    });
                }
                VerdictOutcome::Accepted {
                    contribution_hash, ..
                } => bail!(
                    "the host accepted contribution {contribution_hash}, not ours ({})",
                    announcement.contribution_hash
                ),
                VerdictOutcome::Refused { reason, .. } => {
                    bail!("the host refused contribution #{}: {reason}", turn.index)
                }
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "no verdict on contribution #{} within {:?}",
                turn.index,
                options.wait
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `f` with a JetStream context on `endpoint` and a progress printer (silent for
/// JSON output).
fn with_nats<T, F, Fut>(
    endpoint: &pulse_access::NatsEndpoint,
    connection_name: &str,
    json: bool,
    f: F,
) -> Result<T>
where
    F: FnOnce(jetstream::Context, &'static (dyn Fn(&str) + Sync)) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    fn say(s: &str) {
        eprintln!("{s}");
    }
    fn quiet(_: &str) {}
    let progress: &'static (dyn Fn(&str) + Sync) = if json { &quiet } else { &say };
    crate::l1::runtime()?.block_on(async {
        let client = endpoint
            .connect(connection_name)
            .await
            .context("connecting to NATS")?;
        f(jetstream::new(client), progress).await
    })
}

/// `pulse ceremony host`.
#[allow(clippy::print_stdout)]
pub fn run_host(args: HostArgs) -> Result<ExitCode> {
    let mut c = Ceremony::open(&args.dir)?;
    let ipfs = ipfs_client(&args.ipfs, args.max_zkey)?;
    let endpoint = args.nats.endpoint();
    let json = args.json;
    let options = HostOptions {
        turn_timeout: args.turn_timeout,
        max_zkey: args.max_zkey,
    };
    let report = with_nats(
        &endpoint,
        "pulse-ceremony-host",
        json,
        |js, say| async move { host(&mut c, &js, &ipfs, &args.participants, &options, say).await },
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for a in &report.accepted {
            println!(
                "contribution #{} by {}: accepted, hash {}",
                a.index, a.participant, a.hash
            );
        }
        for s in &report.skipped {
            println!("{}: skipped: {}", s.participant, s.reason);
        }
        println!("transcript {}", report.transcript);
    }
    if report.accepted.is_empty() {
        bail!(
            "no participant's contribution was accepted ({} skipped); the ceremony is unchanged",
            report.skipped.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `pulse ceremony join`.
#[allow(clippy::print_stdout)]
pub fn run_join(args: JoinArgs) -> Result<ExitCode> {
    let endpoint = args.nats.endpoint();
    let name = endpoint
        .load_credentials()?
        .ok_or_else(|| {
            anyhow!(
                "join needs your worker's credentials file (--nats-credentials): a participant is known by its NATS user"
            )
        })?
        .user()
        .to_owned();
    let ipfs = ipfs_client(&args.ipfs, args.max_zkey)?;
    let json = args.json;
    let options = JoinOptions {
        ceremony: args.ceremony.as_deref(),
        entropy: args.entropy.as_deref().unwrap_or("").as_bytes(),
        wait: args.wait,
        max_zkey: args.max_zkey,
    };
    let report = with_nats(
        &endpoint,
        "pulse-ceremony-participant",
        json,
        |js, say| async move { join(&js, &ipfs, &name, &options, say).await },
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "contribution #{} by {} accepted into ceremony {}",
            report.index, report.participant, report.ceremony
        );
        println!(
            "contribution hash (publish it): {}",
            report.contribution_hash
        );
        println!("transcript {}", report.transcript);
    }
    Ok(ExitCode::SUCCESS)
}
