//! `pulse committee …`: the hospitals' data-availability committee (`pulse-dac`): member
//! keys and the committee file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use pulse_dac::{Committee, Member, MemberKey};

/// `pulse committee`.
#[derive(clap::Subcommand)]
pub enum CommitteeCommand {
    /// A member's key: `key new` writes one (mode 0600) and prints its public half for the
    /// committee file; `key show` prints the public half of an existing one.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Write a committee file from its members and threshold.
    Init {
        /// A member as NAME:X25519_PUBLIC_HEX:ETH_ADDRESS (the flag repeated per member).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        /// Attestations required per batch (1 to the member count).
        #[arg(long)]
        threshold: u32,
        /// A reader as NAME:X25519_PUBLIC_HEX (repeat per reader): batch data keys are also
        /// wrapped for it, but it does not attest (the operator, to rebuild its state).
        #[arg(long = "reader")]
        readers: Vec<String>,
        /// The file to write (`committee.json`).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a committee file and print its id and members.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Run a member's node: attest each batch once its sealed data is fetched, opened,
    /// checked against the chunk commitments and pinned on this member's IPFS node.
    Run(RunArgs),
}

/// `pulse committee run`.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
    /// The committee file (as the contract holds it).
    #[arg(long, env = "PULSE_COMMITTEE")]
    committee: PathBuf,
    /// This member's key file (`pulse committee key new`); its name is the member's.
    #[arg(long)]
    key: PathBuf,
    /// File holding the member's attestation key (hex; its address is the committee's for
    /// this member); or set PULSE_L1_PRIVATE_KEY.
    #[arg(long)]
    attestation_key_file: Option<PathBuf>,
    /// This member's IPFS node (the batch data is fetched and pinned there).
    #[arg(long, env = "PULSE_IPFS", default_value = "http://127.0.0.1:5001")]
    ipfs: String,
    /// Ethereum JSON-RPC URL (the deployment is read from the contract).
    #[arg(long, env = "PULSE_L1_RPC", default_value = "http://127.0.0.1:8545")]
    l1_rpc: String,
    /// The rollup contract.
    #[arg(long, env = "PULSE_L1_CONTRACT")]
    contract: alloy::primitives::Address,
    /// Attest only batches from this number on (default: every request the stream keeps).
    #[arg(long, default_value_t = 0)]
    from_batch: u64,
}

/// `pulse committee key`.
#[derive(clap::Subcommand)]
pub enum KeyCommand {
    /// Make a member's key.
    New {
        /// The member's name (`[A-Za-z0-9_-]`, as in the committee file).
        #[arg(long)]
        name: String,
        /// The key file to write (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public half of a member's key.
    Show {
        /// The key file.
        file: PathBuf,
    },
}

fn parse_member(text: &str) -> Result<Member> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(x25519), Some(address)) => Ok(Member {
            name: name.to_owned(),
            x25519: x25519.to_owned(),
            address: address.to_owned(),
        }),
        _ => Err(anyhow!(
            "--member {text:?}: write NAME:X25519_PUBLIC_HEX:ETH_ADDRESS (the public key from `pulse committee key show`)"
        )),
    }
}

/// `pulse committee run`: until Ctrl-C or SIGTERM.
fn run_member(args: RunArgs) -> Result<ExitCode> {
    let committee = Committee::load(&args.committee)?;
    let key = MemberKey::load(&args.key)?;
    let signer = crate::l1::load_signer(args.attestation_key_file.as_deref())?;
    let rt = crate::l1::runtime()?;
    rt.block_on(async move {
        let onchain = pulse_l1::attest::read_committee(&args.l1_rpc, args.contract)
            .await
            .context("reading the rollup contract's committee")?;
        onchain
            .check_matches(&committee)
            .map_err(anyhow::Error::msg)?;
        let deployment = pulse_l1::read_deployment(&args.l1_rpc, args.contract)
            .await
            .context("reading the rollup contract's deployment")?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            crate::coordinator::wait_for_signal().await;
            token.cancel();
        });
        let summary = pulse_coordinator::dac::run_member(
            pulse_coordinator::dac::MemberConfig {
                nats: args.nats.endpoint(),
                committee,
                key,
                signer,
                deployment: deployment.id,
                ipfs_url: args.ipfs,
                fetch_timeout: std::time::Duration::from_secs(60),
                from_batch: args.from_batch,
            },
            shutdown,
        )
        .await?;
        tracing::info!(
            attested = summary.attested,
            refused = summary.refused,
            last_batch = summary.last_batch,
            "committee member stopped"
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// "k of n members, id …" for a committee file.
fn summary(c: &Committee) -> String {
    format!(
        "{} of {} members, id {}",
        c.threshold,
        c.members.len(),
        hex::encode(c.id())
    )
}

/// Runs `pulse committee …`.
#[allow(clippy::print_stdout)]
pub fn run(command: CommitteeCommand) -> Result<ExitCode> {
    match command {
        CommitteeCommand::Run(args) => return run_member(args),
        CommitteeCommand::Key {
            command: KeyCommand::New { name, out },
        } => {
            if !pulse_dac::committee::valid_name(&name) {
                bail!("--name {name:?}: use 1 to 64 of A-Z a-z 0-9 - _");
            }
            let key = MemberKey::generate(&name);
            key.save(&out)?;
            println!(
                "wrote {} (keep it private: it opens every batch)",
                out.display()
            );
            println!("{}:{}", name, key.public_hex());
        }
        CommitteeCommand::Key {
            command: KeyCommand::Show { file },
        } => {
            let key = MemberKey::load(&file)?;
            println!("{}:{}", key.name(), key.public_hex());
        }
        CommitteeCommand::Init {
            members,
            threshold,
            readers,
            out,
        } => {
            let members = members
                .iter()
                .map(|m| parse_member(m))
                .collect::<Result<Vec<_>>>()?;
            let mut c = Committee::new(threshold, members)?;
            c.readers = readers
                .iter()
                .map(|r| match r.split_once(':') {
                    Some((name, x25519)) => Ok(pulse_dac::committee::Reader {
                        name: name.to_owned(),
                        x25519: x25519.to_owned(),
                    }),
                    None => Err(anyhow!(
                        "--reader {r:?}: write NAME:X25519_PUBLIC_HEX (from `pulse committee key show`)"
                    )),
                })
                .collect::<Result<Vec<_>>>()?;
            c.check("the new committee")?;
            if out.exists() {
                bail!(
                    "{} exists; choose another --out or remove it first",
                    out.display()
                );
            }
            std::fs::write(&out, c.to_json() + "\n")
                .with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {}: {}", out.display(), summary(&c));
        }
        CommitteeCommand::Check { file } => {
            let c = Committee::load(&file)?;
            println!("{}: {}", file.display(), summary(&c));
            for m in &c.members {
                println!("  {} {} {}", m.name, m.address, m.x25519);
            }
            for r in &c.readers {
                println!("  {} (reader) {}", r.name, r.x25519);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
