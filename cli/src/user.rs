//! The client commands patients and doctors use: `pulse keys new`, `pulse account
//! register`, `pulse record add|get`, `pulse grant`, `pulse revoke`, `pulse access-log`.
//!
//! Every command that changes state signs one transaction with the user's key file,
//! publishes it on NATS and waits for the coordinator's receipt (`--wait-committed` waits
//! until its batch is final on L1). Every read is checked as a light client would: the
//! leaf's Merkle proof must lead to the state root the L1 contract holds, so a lying
//! coordinator is caught.
//!
//! Where the cluster is comes from flags, their environment variables, or the
//! `cluster.json` written by `pulse dev up` (`--cluster`, or the default dev directory).
//! Transactions are signed for the cluster's deployment: the id its rollup contract reports
//! (`deploymentId()`), checked against the one Pulse computes from the chain id and the
//! contract's address, so a signature never serves on another chain or contract.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::Address;
use anyhow::{Context, Result, anyhow, bail};
use ark_ff::PrimeField;
use async_nats::jetstream;
use pulse_circuits::Fr;
use pulse_circuits::deployment::Deployment;
use pulse_circuits::eddsa::PublicKey;
use pulse_circuits::tx::{Permissions, Role, Scope, Transaction, TxBody};
use pulse_client::{CoordinatorApi, KeyFile, LookupError, Overwrite, RecordEnvelope};
use pulse_protocol::{Receipt, ReceiptStatus};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::dev::ClusterInfo;

/// The largest file `pulse record add` encrypts (records are documents, not imaging
/// studies; those belong in a PACS, referenced from a record).
const MAX_RECORD_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// How long to wait for a stale nonce to catch up (the open batch to seal).
const NONCE_RETRY: Duration = Duration::from_millis(500);

/// Where the cluster is. Each flag falls back to its environment variable, then to the
/// cluster file.
#[derive(clap::Args, Clone, Debug)]
pub struct Connect {
    /// The `cluster.json` written by `pulse dev up` (default: the dev directory's, if any).
    #[arg(long, env = "PULSE_CLUSTER")]
    cluster: Option<PathBuf>,
    /// NATS server URL.
    #[arg(long, env = "PULSE_NATS")]
    nats: Option<String>,
    /// The CA certificate NATS's server certificate chains to.
    #[arg(long, env = "PULSE_NATS_CA")]
    nats_ca: Option<PathBuf>,
    /// Your client credentials file for NATS (from the cluster's operator).
    #[arg(long, env = "PULSE_NATS_CREDENTIALS")]
    nats_credentials: Option<PathBuf>,
    /// The coordinator's HTTP API.
    #[arg(long, env = "PULSE_COORDINATOR")]
    coordinator: Option<String>,
    /// The IPFS node's RPC API.
    #[arg(long, env = "PULSE_IPFS")]
    ipfs: Option<String>,
    /// Ethereum JSON-RPC URL.
    #[arg(long, env = "PULSE_L1_RPC")]
    l1_rpc: Option<String>,
    /// The rollup contract.
    #[arg(long, env = "PULSE_L1_CONTRACT")]
    contract: Option<Address>,
    /// The state tree depth (the circuit's), to check Merkle proofs with.
    #[arg(long, env = "PULSE_DEPTH", value_parser = clap::value_parser!(u64).range(2..=64))]
    depth: Option<u64>,
    /// How long to wait for receipts and lookups.
    #[arg(long, default_value = "120s", value_parser = crate::coordinator::parse_duration)]
    timeout: Duration,
}

/// The resolved endpoints.
struct Cluster {
    nats: pulse_access::NatsEndpoint,
    coordinator: String,
    ipfs: String,
    l1_rpc: String,
    contract: Address,
    depth: usize,
    timeout: Duration,
}

impl Connect {
    fn resolve(&self) -> Result<Cluster> {
        let file = match &self.cluster {
            Some(p) => Some(ClusterInfo::load(p)?),
            None => {
                let p = crate::dev::default_dir().join(crate::dev::CLUSTER_FILE);
                if p.exists() {
                    Some(ClusterInfo::load(&p)?)
                } else {
                    None
                }
            }
        };
        let need = |flag: &str, v: Option<String>, f: Option<String>| -> Result<String> {
            v.or(f).ok_or_else(|| {
                anyhow!(
                    "no {flag}: pass --{flag} (or its environment variable), or --cluster with the cluster.json of `pulse dev up`"
                )
            })
        };
        let contract = match (self.contract, &file) {
            (Some(a), _) => a,
            (None, Some(f)) => f.contract,
            (None, None) => bail!(
                "no --contract: pass the rollup contract's address (PULSE_L1_CONTRACT), or --cluster"
            ),
        };
        Ok(Cluster {
            nats: pulse_access::NatsEndpoint {
                url: need(
                    "nats",
                    self.nats.clone(),
                    file.as_ref().map(|f| f.nats_url.clone()),
                )?,
                ca: self
                    .nats_ca
                    .clone()
                    .or_else(|| file.as_ref().and_then(|f| f.nats_ca.clone())),
                credentials: self
                    .nats_credentials
                    .clone()
                    .or_else(|| file.as_ref().map(|f| f.nats_credentials.client.clone())),
            },
            coordinator: need(
                "coordinator",
                self.coordinator.clone(),
                file.as_ref().map(|f| f.coordinator_url.clone()),
            )?,
            ipfs: need(
                "ipfs",
                self.ipfs.clone(),
                file.as_ref().map(|f| f.ipfs_url.clone()),
            )?,
            l1_rpc: need(
                "l1-rpc",
                self.l1_rpc.clone(),
                file.as_ref().map(|f| f.l1_rpc.clone()),
            )?,
            contract,
            depth: match (self.depth, &file) {
                (Some(d), _) => d as usize,
                (None, Some(f)) => f.depth,
                (None, None) => bail!(
                    "no --depth: name the state tree depth (PULSE_DEPTH) so Merkle proofs can be checked, or pass --cluster"
                ),
            },
            timeout: self.timeout,
        })
    }
}

impl Cluster {
    async fn jetstream(&self) -> Result<jetstream::Context> {
        let client = self
            .nats
            .connect_with(
                async_nats::ConnectOptions::new()
                    .name("pulse")
                    .connection_timeout(Duration::from_secs(5)),
            )
            .await
            .context("connecting to NATS with your client credentials")?;
        Ok(jetstream::new(client))
    }

    /// The coordinator's API, every lookup signed with `key`'s account (the API answers
    /// only the parties themselves); unsigned when the key has no account yet.
    async fn api(&self, key: &KeyFile) -> Result<CoordinatorApi> {
        let api = CoordinatorApi::new(&self.coordinator)?.with_depth(self.depth);
        Ok(match key.account() {
            Some(account) => {
                let deployment = self.deployment().await?;
                api.with_signer(account, key.private_key().clone(), deployment.id)
            }
            None => api,
        })
    }

    fn ipfs(&self) -> Result<pulse_ipfs::IpfsClient> {
        pulse_ipfs::IpfsClient::new(&self.ipfs).with_context(|| format!("IPFS API {}", self.ipfs))
    }

    /// The deployment to sign for: the contract's id, checked against the one computed from
    /// the node's chain id and the contract's address.
    async fn deployment(&self) -> Result<Deployment> {
        pulse_l1::read_deployment(&self.l1_rpc, self.contract)
            .await
            .with_context(|| {
                format!(
                    "reading the deployment id of the rollup contract {} on {}",
                    self.contract, self.l1_rpc
                )
            })
    }

    /// The state root the L1 contract holds: the only root a reader trusts.
    async fn l1_root(&self) -> Result<Fr> {
        let s = pulse_l1::status(&self.l1_rpc, self.contract, 0)
            .await
            .with_context(|| {
                format!(
                    "reading the rollup contract {} on {}",
                    self.contract, self.l1_rpc
                )
            })?;
        pulse_circuits::field::fr_from_decimal(&s.state_root.to_string())
            .map_err(|e| anyhow!("the contract's state root is not a field element: {e}"))
    }

    /// Runs a verified lookup against the L1 root, retrying while the coordinator is
    /// ahead of (or behind) L1 or the leaf's batch is not sealed yet.
    async fn verified<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: FnMut(Fr) -> Fut,
        Fut: std::future::Future<Output = Result<T, LookupError>>,
    {
        let not_final = |e: &LookupError| {
            matches!(
                e,
                LookupError::RootMismatch { .. }
                    | LookupError::NotFound { .. }
                    | LookupError::Unauthorized { .. }
            )
        };
        self.retrying(f, not_final)
            .await?
            .map_err(|e| anyhow!(e).context(format!("looking up {what}")))
    }

    /// A lookup against the L1 root, retried only while the coordinator and L1 disagree on
    /// the root (a batch committing meanwhile): a refusal or a missing leaf is answered at
    /// once, in the inner result.
    async fn proven<T, F, Fut>(&self, f: F) -> Result<Result<T, LookupError>>
    where
        F: FnMut(Fr) -> Fut,
        Fut: std::future::Future<Output = Result<T, LookupError>>,
    {
        self.retrying(f, |e| matches!(e, LookupError::RootMismatch { .. }))
            .await
    }

    /// Runs `f` against the L1 root until it answers with something `again` does not
    /// retry, or the cluster's timeout has passed.
    async fn retrying<T, F, Fut>(
        &self,
        mut f: F,
        again: impl Fn(&LookupError) -> bool,
    ) -> Result<Result<T, LookupError>>
    where
        F: FnMut(Fr) -> Fut,
        Fut: std::future::Future<Output = Result<T, LookupError>>,
    {
        let deadline = Instant::now() + self.timeout;
        loop {
            let root = self.l1_root().await?;
            match f(root).await {
                Err(e) if again(&e) && Instant::now() < deadline => {
                    tracing::debug!(error = %e, "lookup not final yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => return Ok(other),
            }
        }
    }
}

fn load_key(path: &Path) -> Result<KeyFile> {
    KeyFile::load(path).with_context(|| format!("reading the key file {}", path.display()))
}

fn account_of(key: &KeyFile, path: &Path) -> Result<u64> {
    key.account().ok_or_else(|| {
        anyhow!(
            "the key file {} has no account yet: run `pulse account register --key {}` first",
            path.display(),
            path.display()
        )
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a submitted transaction came to.
enum Outcome {
    Accepted {
        batch: u64,
        new_account: Option<u64>,
        new_record: Option<u64>,
        new_grant: Option<u64>,
        hash: String,
    },
    Rejected {
        reason: String,
        message: String,
    },
}

/// Signs `body` with the account's next nonce and submits it, retrying with a fresh nonce
/// while the account's last transaction is still in the open batch (`stale_nonce`).
async fn submit(
    cluster: &Cluster,
    js: &jetstream::Context,
    key: &KeyFile,
    signer: u64,
    body: TxBody,
    wait_committed: bool,
) -> Result<Outcome> {
    let deadline = Instant::now() + cluster.timeout;
    let api = cluster.api(key).await?;
    let deployment = cluster.deployment().await?;
    loop {
        let nonce = if signer == 0 {
            0
        } else {
            match current_nonce(&api, signer).await? {
                Some(n) => n,
                None if Instant::now() < deadline => {
                    // Registered in the open batch: known once it seals.
                    tokio::time::sleep(NONCE_RETRY).await;
                    continue;
                }
                None => bail!(
                    "account {signer} is not known to the coordinator, or the key file's key is not account {signer}'s (the coordinator took no lookup signed with it): register it first (`pulse account register`), or use the key file it was registered with"
                ),
            }
        };
        let stx = Transaction {
            signer,
            nonce,
            body: body.clone(),
        }
        .sign(key.private_key(), deployment.id)
        .context("signing the transaction")?;
        let receipt = pulse_client::submit(js, &stx, deployment.id, cluster.timeout)
            .await
            .context("submitting the transaction")?;
        match receipt.status {
            ReceiptStatus::Rejected { reason, .. }
                if reason == "stale_nonce" && Instant::now() < deadline =>
            {
                tokio::time::sleep(NONCE_RETRY).await;
            }
            _ => {
                let hash = stx.hash(deployment.id).map(|h| h.to_string())?;
                return finish(js, hash, receipt, cluster.timeout, wait_committed).await;
            }
        }
    }
}

async fn finish(
    js: &jetstream::Context,
    hash: String,
    receipt: Receipt,
    timeout: Duration,
    wait_committed: bool,
) -> Result<Outcome> {
    match receipt.status {
        ReceiptStatus::Rejected { reason, message } => Ok(Outcome::Rejected { reason, message }),
        ReceiptStatus::Accepted {
            batch,
            new_account,
            new_record,
            new_grant,
        } => {
            if wait_committed {
                eprintln!("accepted into batch {batch}; waiting for its commit on L1");
                let r = pulse_client::wait_committed(js, &hash, timeout)
                    .await
                    .context("waiting for the batch's commit on L1")?;
                if let ReceiptStatus::Committed { batch, l1_tx } = &r.status {
                    eprintln!("committed on L1 in batch {batch} (L1 transaction {l1_tx})");
                }
            }
            Ok(Outcome::Accepted {
                batch,
                new_account,
                new_record,
                new_grant,
                hash,
            })
        }
        ReceiptStatus::Committed { batch, .. } => Ok(Outcome::Accepted {
            batch,
            new_account: None,
            new_record: None,
            new_grant: None,
            hash,
        }),
    }
}

/// The account's nonce in the coordinator's latest sealed state. Not trusted: a wrong
/// nonce only gets the transaction rejected.
async fn current_nonce(api: &CoordinatorApi, account: u64) -> Result<Option<u64>> {
    // The freshest nonce (sealed, not yet on L1): it is not trusted, only tried.
    let v = match api
        .json("account", &format!("/accounts/{account}?view=latest"))
        .await
    {
        Ok(v) => v,
        // Not sealed yet: the account's own signature is not known to the coordinator
        // until its registration's batch seals (a wrong key keeps failing: the caller's
        // deadline ends the wait).
        Err(LookupError::NotFound { .. } | LookupError::Unauthorized { .. }) => return Ok(None),
        Err(e) => {
            return Err(anyhow!(e).context(format!(
                "asking the coordinator at {} for the account's nonce",
                api.url()
            )));
        }
    };
    v["account"]["nonce"]
        .as_u64()
        .map(Some)
        .ok_or_else(|| anyhow!("the coordinator's account answer has no nonce"))
}

#[allow(clippy::print_stdout)]
fn report(outcome: &Outcome, json: bool, what: &str, extra: serde_json::Value) -> ExitCode {
    match outcome {
        Outcome::Accepted {
            batch,
            new_account,
            new_record,
            new_grant,
            hash,
        } => {
            if json {
                let mut v = json!({
                    "status": "accepted", "batch": batch, "tx_hash": hash,
                    "account": new_account, "record": new_record, "grant": new_grant,
                });
                if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                    o.extend(e.clone());
                }
                println!("{v}");
            } else {
                let mut line = format!("{what}: accepted into batch {batch} (tx {hash})");
                for (name, id) in [
                    ("account", new_account),
                    ("record", new_record),
                    ("grant", new_grant),
                ] {
                    if let Some(id) = id {
                        line.push_str(&format!("; {name} {id}"));
                    }
                }
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Outcome::Rejected { reason, message } => {
            if json {
                println!(
                    "{}",
                    json!({"status": "rejected", "reason": reason, "message": message})
                );
            } else {
                eprintln!("{what}: rejected ({reason}): {message}");
            }
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- keys new

/// `pulse keys …`.
#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Make a new private key and write it to a key file (mode 0600); prints the public key.
    New {
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing file (its key is lost).
        #[arg(long)]
        force: bool,
    },
}

/// `pulse keys new`.
#[allow(clippy::print_stdout)]
pub fn keys(cmd: KeysCommand) -> Result<ExitCode> {
    match cmd {
        KeysCommand::New { out, force } => {
            let key = KeyFile::generate(&mut rand::rngs::OsRng);
            let overwrite = if force {
                Overwrite::Replace
            } else {
                Overwrite::Refuse
            };
            key.save(&out, overwrite)
                .with_context(|| format!("writing the key file {}", out.display()))?;
            println!(
                "{}",
                json!({"key_file": out, "public_key": key.public_key()})
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

// ---------------------------------------------------------------- account register

/// `pulse account …`.
#[derive(clap::Subcommand)]
pub enum AccountCommand {
    /// Register the key file's key as an account and record the account id in the file.
    /// Patients register themselves; doctors and registrars are registered by a registrar.
    Register(RegisterArgs),
}

/// `pulse account register`.
#[derive(clap::Args)]
pub struct RegisterArgs {
    /// The key file of the account to register (updated with its id).
    #[arg(long, env = "PULSE_KEY")]
    key: PathBuf,
    /// The role.
    #[arg(long, default_value = "patient", value_parser = ["patient", "doctor", "registrar"])]
    role: String,
    /// A registrar's key file, to register a doctor or registrar.
    #[arg(long)]
    registrar_key: Option<PathBuf>,
    #[command(flatten)]
    connect: Connect,
    /// Wait until the registration is final on L1.
    #[arg(long)]
    wait_committed: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pulse account register`.
pub fn account(cmd: AccountCommand) -> Result<ExitCode> {
    let AccountCommand::Register(args) = cmd;
    let cluster = args.connect.resolve()?;
    let mut key = load_key(&args.key)?;
    if let Some(id) = key.account() {
        bail!(
            "the key file {} is already account {id}; make a new key with `pulse keys new` to register another",
            args.key.display()
        );
    }
    let role = match args.role.as_str() {
        "doctor" => Role::Doctor,
        "registrar" => Role::Registrar,
        _ => Role::Patient,
    };
    crate::l1::runtime()?.block_on(async {
        let js = cluster.jetstream().await?;
        let body = TxBody::Register {
            public_key: key.public_key(),
            role,
        };
        let outcome = match (&args.registrar_key, role) {
            (None, Role::Patient) => submit(&cluster, &js, &key, 0, body, args.wait_committed).await?,
            (None, _) => bail!(
                "a {role} is registered by a registrar: pass --registrar-key with the registrar's key file"
            ),
            (Some(path), _) => {
                let registrar = load_key(path)?;
                let id = account_of(&registrar, path)?;
                submit(&cluster, &js, &registrar, id, body, args.wait_committed).await?
            }
        };
        if let Outcome::Accepted {
            new_account: Some(id),
            ..
        } = &outcome
        {
            key.set_account(*id);
            key.save(&args.key, Overwrite::Replace)
                .with_context(|| format!("recording account {id} in {}", args.key.display()))?;
        }
        Ok(report(&outcome, args.json, "register", json!({})))
    })
}

// ---------------------------------------------------------------- record add / get

/// `pulse record …`.
#[derive(clap::Subcommand)]
pub enum RecordCommand {
    /// Encrypt a file for the patient (and you), add it to IPFS and register it on the
    /// rollup.
    Add(RecordAddArgs),
    /// Fetch a record: check its Merkle proof against the root on L1, check your access,
    /// fetch it from IPFS and decrypt it.
    Get(RecordGetArgs),
}

/// `pulse record add`.
#[derive(clap::Args)]
pub struct RecordAddArgs {
    /// The file to encrypt and add.
    file: PathBuf,
    /// The patient who owns the record.
    #[arg(long)]
    patient: u64,
    /// Your key file (the patient's, or a doctor's with a write grant).
    #[arg(long, env = "PULSE_KEY")]
    key: PathBuf,
    /// The write grant a doctor adds under.
    #[arg(long)]
    grant: Option<u64>,
    #[command(flatten)]
    connect: Connect,
    /// Wait until the record is final on L1.
    #[arg(long)]
    wait_committed: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pulse record get`.
#[derive(clap::Args)]
pub struct RecordGetArgs {
    /// The record id.
    id: u64,
    /// Your key file.
    #[arg(long, env = "PULSE_KEY")]
    key: PathBuf,
    /// The grant that lets you read it (not needed for your own records).
    #[arg(long)]
    grant: Option<u64>,
    /// Write the decrypted file here (mode 0600) instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    connect: Connect,
}

/// `pulse record …`.
pub fn record(cmd: RecordCommand) -> Result<ExitCode> {
    match cmd {
        RecordCommand::Add(a) => record_add(a),
        RecordCommand::Get(a) => record_get(a),
    }
}

fn record_add(args: RecordAddArgs) -> Result<ExitCode> {
    let cluster = args.connect.resolve()?;
    let key = load_key(&args.key)?;
    let me = account_of(&key, &args.key)?;
    let meta = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    if meta.len() > MAX_RECORD_FILE_BYTES {
        bail!(
            "{} is {} bytes; records are at most {MAX_RECORD_FILE_BYTES} bytes (store large studies elsewhere and add a record that references them)",
            args.file.display(),
            meta.len()
        );
    }
    let plaintext = zeroize::Zeroizing::new(
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?,
    );
    crate::l1::runtime()?.block_on(async {
        let js = cluster.jetstream().await?;
        let api = cluster.api(&key).await?;
        let mut recipients = vec![(me, key.public_key())];
        if args.patient != me {
            let patient = cluster
                .verified("the patient's account", |root| {
                    api.account(args.patient, root)
                })
                .await?;
            if patient.leaf.role != Role::Patient.code() {
                bail!("account {} is not a patient", args.patient);
            }
            recipients.insert(0, (args.patient, PublicKey(patient.leaf.pk)));
        }
        let envelope = pulse_client::seal_record(&plaintext, &recipients, &mut rand::rngs::OsRng)
            .context("encrypting the record")?;
        let bytes = envelope.to_json();
        let metadata_hash = Fr::from_be_bytes_mod_order(&Sha256::digest(&bytes));
        let cid = cluster
            .ipfs()?
            .add(bytes)
            .await
            .context("adding the encrypted record to IPFS")?;
        let body = TxBody::AddRecord {
            patient: args.patient,
            cid,
            metadata_hash,
            grant: args.grant,
        };
        let outcome = submit(&cluster, &js, &key, me, body, args.wait_committed).await?;
        Ok(report(
            &outcome,
            args.json,
            "record add",
            json!({"cid": cid.to_string()}),
        ))
    })
}

#[allow(clippy::print_stdout)]
fn record_get(args: RecordGetArgs) -> Result<ExitCode> {
    let cluster = args.connect.resolve()?;
    let key = load_key(&args.key)?;
    let me = account_of(&key, &args.key)?;
    crate::l1::runtime()?.block_on(async {
        let api = cluster.api(&key).await?;
        let grant = match args.grant {
            Some(g) => match cluster.proven(|root| api.grant(g, root)).await? {
                Ok(v) => Some(v),
                Err(LookupError::NotFound { .. }) => {
                    eprintln!("record {}: access refused: grant {g} does not exist or is not one you hold", args.id);
                    return Ok(ExitCode::from(3));
                }
                Err(e) => return Err(anyhow!(e).context("looking up the grant")),
            },
            None => None,
        };
        // The coordinator answers only a reader it lets read the record: a refusal looks
        // like a record that does not exist, and is explained from the grant when there is one.
        let record = match cluster.proven(|root| api.record_under(args.id, args.grant, root)).await? {
            Ok(r) => r,
            Err(LookupError::NotFound { .. }) => {
                let why = match &grant {
                    Some(g) if !g.leaf.active => format!(
                        "grant {} was revoked by the patient (on L1); you no longer have access",
                        g.id
                    ),
                    Some(g) if g.leaf.expires_at <= now_secs() => {
                        format!("grant {} expired at {}", g.id, g.leaf.expires_at)
                    }
                    Some(g) if g.leaf.scope != 0 && g.leaf.scope != args.id => {
                        format!("grant {} covers record {} only", g.id, g.leaf.scope)
                    }
                    Some(g) => format!("grant {} does not let you read record {}", g.id, args.id),
                    None => format!(
                        "record {} does not exist or is not yours: name the grant that lets you read it with --grant ID",
                        args.id
                    ),
                };
                eprintln!("record {}: access refused: {why}", args.id);
                return Ok(ExitCode::from(3));
            }
            Err(e) => return Err(anyhow!(e).context("looking up the record")),
        };
        if grant.as_ref().is_some_and(|g| g.state_root != record.record.state_root) {
            bail!("the record and the grant were proven against different L1 roots (a batch committed in between): run the command again");
        }
        if let Err(refusal) = pulse_client::check_read_access(me, &record.record, grant.as_ref(), now_secs()) {
            eprintln!("record {}: access refused: {refusal}", args.id);
            return Ok(ExitCode::from(3));
        }
        eprintln!(
            "record {}: Merkle proof checked against the L1 state root {}",
            args.id,
            record.record.state_root
        );
        let bytes = cluster
            .ipfs()?
            .cat(&record.cid, cluster.timeout)
            .await
            .with_context(|| format!("fetching the record's envelope {} from IPFS", record.cid))?;
        if Fr::from_be_bytes_mod_order(&Sha256::digest(&bytes)) != record.record.leaf.metadata_hash {
            tracing::debug!("the envelope's hash is not the record's metadata hash (added by another client)");
        }
        let envelope = RecordEnvelope::from_json(&bytes).context("reading the record envelope")?;
        let plaintext = zeroize::Zeroizing::new(if envelope.wrapped_for(me).is_some() {
            pulse_client::open_record(&envelope, me, key.private_key()).context("decrypting the record")?
        } else {
            let js = cluster.jetstream().await?;
            let share = pulse_client::get_share(&js, args.id, me)
                .await
                .context("reading your key share")?
                .ok_or_else(|| {
                    anyhow!("the patient has not shared the record's key with you (no key share for record {} and account {me})", args.id)
                })?;
            pulse_client::open_with_share(&envelope, &share, key.private_key())
                .context("decrypting the record with your key share")?
        });
        match &args.out {
            Some(path) => write_private(path, &plaintext)?,
            None => {
                use std::io::Write;
                std::io::stdout().write_all(&plaintext).context("writing to standard output")?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Writes a private file (mode 0600 from its creation).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------- grant / revoke / access-log

/// `pulse grant`.
#[derive(clap::Args)]
pub struct GrantArgs {
    /// Your key file (a patient's).
    #[arg(long, env = "PULSE_KEY")]
    key: PathBuf,
    /// The account receiving access.
    #[arg(long)]
    grantee: u64,
    /// The record (its file key is shared with the grantee).
    #[arg(long, conflicts_with = "all")]
    record: Option<u64>,
    /// All your records, present and future (keys are shared per record with `--record`).
    #[arg(long)]
    all: bool,
    /// Also allow adding records for you.
    #[arg(long)]
    write: bool,
    /// How long the grant lasts (e.g. 30d is written 720h).
    #[arg(long, default_value = "720h", value_parser = crate::coordinator::parse_duration)]
    valid_for: Duration,
    #[command(flatten)]
    connect: Connect,
    /// Wait until the grant is final on L1.
    #[arg(long)]
    wait_committed: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pulse grant`.
pub fn grant(args: GrantArgs) -> Result<ExitCode> {
    let cluster = args.connect.resolve()?;
    let key = load_key(&args.key)?;
    let me = account_of(&key, &args.key)?;
    let scope = match (args.record, args.all) {
        (Some(r), _) => Scope::Record(r),
        (None, true) => Scope::All,
        (None, false) => bail!("name what to grant: --record ID, or --all for all your records"),
    };
    crate::l1::runtime()?.block_on(async {
        let js = cluster.jetstream().await?;
        let api = cluster.api(&key).await?;
        // The grantee's key, proven against L1: the file key is wrapped for exactly it.
        let grantee = cluster
            .verified("the grantee's account", |root| {
                api.account(args.grantee, root)
            })
            .await?;
        let share = match args.record {
            Some(r) => {
                let record = cluster
                    .verified("the record", |root| api.record(r, root))
                    .await?;
                if record.record.leaf.owner != me {
                    bail!("record {r} is not yours (you are account {me})");
                }
                let bytes = cluster
                    .ipfs()?
                    .cat(&record.cid, cluster.timeout)
                    .await
                    .context("fetching the record's envelope from IPFS")?;
                let envelope =
                    RecordEnvelope::from_json(&bytes).context("reading the record envelope")?;
                Some(
                    pulse_client::add_recipient(
                        &envelope,
                        &record.cid,
                        me,
                        key.private_key(),
                        args.grantee,
                        &PublicKey(grantee.leaf.pk),
                        &mut rand::rngs::OsRng,
                    )
                    .context("wrapping the record's key for the grantee")?,
                )
            }
            None => None,
        };
        let body = TxBody::Grant {
            grantee: args.grantee,
            scope,
            permissions: Permissions {
                read: true,
                write: args.write,
            },
            expires_at: now_secs() + args.valid_for.as_secs(),
        };
        let outcome = submit(&cluster, &js, &key, me, body, args.wait_committed).await?;
        if let (Outcome::Accepted { .. }, Some(share), Some(r)) = (&outcome, &share, args.record) {
            pulse_client::put_share(&js, r, share)
                .await
                .context("delivering the key share to the grantee's mailbox")?;
        }
        Ok(report(&outcome, args.json, "grant", json!({})))
    })
}

/// `pulse history`.
#[derive(clap::Args)]
pub struct HistoryArgs {
    /// Your key file.
    #[arg(long, env = "PULSE_KEY")]
    key: PathBuf,
    #[command(flatten)]
    connect: Connect,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pulse history`: records, grants and accesses of the key's account, proven against L1
/// (the access log as the coordinator keeps it).
#[allow(clippy::print_stdout)]
pub fn history(args: HistoryArgs) -> Result<ExitCode> {
    let cluster = args.connect.resolve()?;
    let key = load_key(&args.key)?;
    let me = account_of(&key, &args.key)?;
    crate::l1::runtime()?.block_on(async {
        let api = cluster.api(&key).await?;
        let records = cluster
            .verified("your records", |root| api.records_of(me, root))
            .await?;
        let grants = cluster
            .verified("your grants", |root| api.grants_of(me, root))
            .await?;
        let access = api
            .access_of(me)
            .await
            .context("reading your access log")?;
        let root = records
            .first()
            .map(|r| r.record.state_root)
            .or_else(|| grants.first().map(|g| g.state_root));
        if args.json {
            let v = json!({
                "account": me,
                "l1_state_root": root.map(|r| pulse_circuits::field::fr_to_decimal(&r)),
                "records": records.iter().map(|r| json!({
                    "id": r.record.id,
                    "owner": r.record.leaf.owner,
                    "uploader": r.record.leaf.uploader,
                    "cid": r.cid.to_string(),
                })).collect::<Vec<_>>(),
                "grants": grants.iter().map(|g| json!({
                    "id": g.id,
                    "patient": g.leaf.patient,
                    "grantee": g.leaf.grantee,
                    "scope": g.leaf.scope,
                    "permissions": g.leaf.permissions,
                    "expires_at": g.leaf.expires_at,
                    "active": g.leaf.active,
                })).collect::<Vec<_>>(),
                "access": access,
            });
            println!("{v}");
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "account {me}: {} record(s), {} grant(s), {} logged access(es); records and grants proven against the L1 state root",
            records.len(),
            grants.len(),
            access.len()
        );
        for r in &records {
            println!(
                "  record {:>6}  owner {:>6}  uploaded by {:>6}  {}",
                r.record.id, r.record.leaf.owner, r.record.leaf.uploader, r.cid
            );
        }
        for g in &grants {
            let scope = if g.leaf.scope == 0 {
                "all records".to_owned()
            } else {
                format!("record {}", g.leaf.scope)
            };
            println!(
                "  grant  {:>6}  {} → {}  {scope}  expires {}  {}",
                g.id,
                g.leaf.patient,
                g.leaf.grantee,
                g.leaf.expires_at,
                if g.leaf.active { "active" } else { "revoked" }
            );
        }
        for a in &access {
            println!(
                "  access at {}  account {} read record {} under grant {}",
                a.at, a.reader, a.record, a.grant
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `pulse revoke`.
#[derive(clap::Args)]
pub struct RevokeArgs {
    /// Your key file (the patient's).
    #[arg(long, env = "PULSE_KEY")]
    key: PathBuf,
    /// The grant to revoke.
    #[arg(long)]
    grant: u64,
    #[command(flatten)]
    connect: Connect,
    /// Wait until the revocation is final on L1.
    #[arg(long)]
    wait_committed: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pulse revoke`.
pub fn revoke(args: RevokeArgs) -> Result<ExitCode> {
    let cluster = args.connect.resolve()?;
    let key = load_key(&args.key)?;
    let me = account_of(&key, &args.key)?;
    crate::l1::runtime()?.block_on(async {
        let js = cluster.jetstream().await?;
        let api = cluster.api(&key).await?;
        let outcome = submit(
            &cluster,
            &js,
            &key,
            me,
            TxBody::Revoke { grant: args.grant },
            args.wait_committed,
        )
        .await?;
        if matches!(outcome, Outcome::Accepted { .. }) {
            // The key share is withdrawn too (a grantee who kept it could still decrypt:
            // revocation stops access through Pulse and is on the audit trail).
            if let Ok(Ok(g)) = tokio::time::timeout(Duration::from_secs(5), async {
                api.grant(args.grant, cluster.l1_root().await.unwrap_or_default())
                    .await
            })
            .await
                && g.leaf.scope != 0
            {
                let _ = pulse_client::delete_share(&js, g.leaf.scope, g.leaf.grantee).await;
            }
        }
        Ok(report(&outcome, args.json, "revoke", json!({})))
    })
}

/// `pulse access-log`.
#[derive(clap::Args)]
pub struct AccessLogArgs {
    /// Your key file (the grantee's).
    #[arg(long, env = "PULSE_KEY")]
    key: PathBuf,
    /// The record accessed.
    #[arg(long)]
    record: u64,
    /// The grant it was accessed under.
    #[arg(long)]
    grant: u64,
    /// The purpose code (1 treatment, 2 emergency, 3 billing, 4 research).
    #[arg(long, default_value_t = 1)]
    purpose: u64,
    #[command(flatten)]
    connect: Connect,
    /// Wait until the entry is final on L1.
    #[arg(long)]
    wait_committed: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pulse access-log`.
pub fn access_log(args: AccessLogArgs) -> Result<ExitCode> {
    let cluster = args.connect.resolve()?;
    let key = load_key(&args.key)?;
    let me = account_of(&key, &args.key)?;
    crate::l1::runtime()?.block_on(async {
        let js = cluster.jetstream().await?;
        let body = TxBody::AccessLog {
            record: args.record,
            grant: args.grant,
            purpose: Fr::from(args.purpose),
        };
        let outcome = submit(&cluster, &js, &key, me, body, args.wait_committed).await?;
        Ok(report(&outcome, args.json, "access-log", json!({})))
    })
}
