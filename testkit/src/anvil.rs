//! anvil, Foundry's Ethereum dev node.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{ServerProcess, start_on_free_port};
use crate::{READY_TIMEOUT, Tool, http_request};

/// The chain id anvil uses unless `--chain-id` says otherwise.
pub const ANVIL_CHAIN_ID: u64 = 31337;

/// One of the accounts anvil funds at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevAccount {
    /// The checksummed address, `0x…`.
    pub address: &'static str,
    /// The secp256k1 private key, `0x…` and 64 hex digits.
    pub private_key: &'static str,
}

/// The first five accounts anvil derives from its default mnemonic ("test test … junk"),
/// each funded with 10 000 ETH.
///
/// These keys are public: anvil prints them at every start and the whole Ethereum tooling
/// world knows them. They are for local test chains only; anything sent to these addresses
/// on a real network is taken at once.
pub const DEV_ACCOUNTS: [DevAccount; 5] = [
    DevAccount {
        address: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        private_key: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    },
    DevAccount {
        address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        private_key: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    },
    DevAccount {
        address: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        private_key: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    },
    DevAccount {
        address: "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        private_key: "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    },
    DevAccount {
        address: "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
        private_key: "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    },
];

/// An anvil node on `127.0.0.1`, killed on drop.
#[derive(Debug)]
pub struct Anvil {
    process: ServerProcess,
    port: u16,
    dir: TempDir,
}

impl Anvil {
    /// Starts anvil with its defaults (chain id [`ANVIL_CHAIN_ID`], a block per
    /// transaction, [`DEV_ACCOUNTS`] funded) and waits until JSON-RPC answers.
    ///
    /// # Panics
    /// As [`Anvil::start_with`].
    #[track_caller]
    pub fn start() -> Anvil {
        Anvil::start_with(&[])
    }

    /// Starts anvil with extra arguments (`--no-mining`, `--block-time 1`,
    /// `--chain-id 1337`, …) and waits until `eth_chainId` answers. `--host` and `--port`
    /// are set here and must not be given.
    ///
    /// # Panics
    /// If anvil is not installed (run `scripts/deps`), exits (bad arguments), or does not
    /// answer within [`READY_TIMEOUT`]; the message carries the end of its log.
    #[track_caller]
    pub fn start_with(args: &[&str]) -> Anvil {
        assert!(
            !args
                .iter()
                .any(|a| matches!(*a, "--host" | "--port" | "-p")),
            "Anvil::start_with sets --host and --port itself"
        );
        let binary = Tool::Anvil.path();
        let dir = tempfile::Builder::new()
            .prefix("pulse-anvil-")
            .tempdir()
            .unwrap_or_else(|e| panic!("anvil: cannot make a temp dir: {e}"));
        let mut process = ServerProcess::new("anvil", dir.path().join("anvil.log"));
        let port = start_on_free_port(&mut process, "start", |process, port| {
            let mut command = Command::new(&binary);
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(args)
                .current_dir(dir.path());
            process.spawn(command);
            process.wait_ready(READY_TIMEOUT, || chain_id_answers(port))
        });
        Anvil { process, port, dir }
    }

    /// The JSON-RPC URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The JSON-RPC port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// anvil's log (it prints every transaction and block).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The temporary directory anvil runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills anvil (its chain is lost). Dropping the handle does the same.
    pub fn stop(&mut self) {
        self.process.kill();
    }
}

fn chain_id_answers(port: u16) -> bool {
    let request = br#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    http_request(
        port,
        "POST",
        "/",
        Some(("application/json", request)),
        Duration::from_secs(2),
    )
    .is_ok_and(|answer| answer.status == 200 && answer.text().contains("\"result\""))
}
