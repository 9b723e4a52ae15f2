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
        /// The file to write (`committee.json`).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a committee file and print its id and members.
    Check {
        /// The file.
        file: PathBuf,
    },
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

/// Runs `pulse committee …`.
#[allow(clippy::print_stdout)]
pub fn run(command: CommitteeCommand) -> Result<ExitCode> {
    match command {
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
            out,
        } => {
            let members = members
                .iter()
                .map(|m| parse_member(m))
                .collect::<Result<Vec<_>>>()?;
            let c = Committee::new(threshold, members)?;
            if out.exists() {
                bail!(
                    "{} exists; choose another --out or remove it first",
                    out.display()
                );
            }
            std::fs::write(&out, c.to_json() + "\n")
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "wrote {}: {} of {} members, id {}",
                out.display(),
                c.threshold,
                c.members.len(),
                hex::encode(c.id())
            );
        }
        CommitteeCommand::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let c = Committee::from_json(&text, &file.display().to_string())?;
            println!(
                "{}: {} of {} members, id {}",
                file.display(),
                c.threshold,
                c.members.len(),
                hex::encode(c.id())
            );
            for m in &c.members {
                println!("  {} {} {}", m.name, m.address, m.x25519);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
