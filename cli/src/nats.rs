//! `pulse nats …`: a deployment's NATS users, credentials, TLS and server configuration;
//! and the flags every component connects with.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use pulse_access::tls::TlsFiles;
use pulse_access::{Deployment, DeploymentOptions, NatsEndpoint, Role, ServerTls};

/// How a component reaches NATS: the URL, the CA to verify the server with, and its
/// credentials file. Secrets are only ever read from files, never from flags.
#[derive(clap::Args, Clone, Debug)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated (`tls://host:4222`).
    #[arg(long, env = "PULSE_NATS", default_value = "tls://127.0.0.1:4222")]
    pub nats: String,
    /// The CA certificate (PEM) the server's certificate must chain to; TLS is required
    /// when it is given.
    #[arg(long, env = "PULSE_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// This component's credentials file (mode 0600), from `pulse nats init` or
    /// `pulse nats worker add`.
    #[arg(long, env = "PULSE_NATS_CREDENTIALS")]
    pub nats_credentials: Option<PathBuf>,
}

impl NatsArgs {
    /// The endpoint these flags describe.
    pub fn endpoint(&self) -> NatsEndpoint {
        NatsEndpoint {
            url: self.nats.clone(),
            ca: self.nats_ca.clone(),
            credentials: self.nats_credentials.clone(),
        }
    }
}

/// `pulse nats …`.
#[derive(clap::Subcommand)]
pub enum NatsCommand {
    /// Set up a deployment's NATS access in a directory: TLS (a private CA, or yours), the
    /// coordinator, operator and client users, the workers you name, their credentials
    /// files, and the nats-server configuration that enforces each role's permissions.
    Init(InitArgs),
    /// Hospital workers: add one (writes its credentials file) or revoke one.
    Worker {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Client software (clinics, portals): add a client user or revoke one.
    Client {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Availability committee members (hospitals): add a member user (its name is the
    /// member's name in the committee file) or revoke one.
    Member {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// List the deployment's users and their permissions.
    Users(DirArgs),
}

/// `pulse nats init`.
#[derive(clap::Args)]
pub struct InitArgs {
    /// The directory to write (access.json, nats-server.conf, credentials/, tls/).
    #[arg(long)]
    out: PathBuf,
    /// Worker users to create, one per hospital machine (their worker ids).
    #[arg(long, value_delimiter = ',')]
    workers: Vec<String>,
    /// Host names or IP addresses the server is reached by, for the development CA's
    /// server certificate.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1,localhost")]
    hosts: Vec<String>,
    /// Your CA certificate (PEM), instead of a development CA (with --tls-cert, --tls-key).
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// Your server certificate (PEM).
    #[arg(long, requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
    /// Your server key (PEM).
    #[arg(long, requires = "tls_ca")]
    tls_key: Option<PathBuf>,
    /// `host:port` the server listens on, written into the configuration.
    #[arg(long, default_value = "127.0.0.1:4222")]
    listen: String,
    /// The JetStream store directory, written into the configuration.
    #[arg(long)]
    store_dir: Option<PathBuf>,
}

/// The deployment directory.
#[derive(clap::Args)]
pub struct DirArgs {
    /// The directory `pulse nats init` wrote.
    #[arg(long, env = "PULSE_NATS_ACCESS")]
    dir: PathBuf,
}

/// Add or revoke a user.
#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Add a user and write its credentials file; then reload nats-server.
    Add {
        /// Its name (a worker's id): letters, digits, '-' and '_'.
        name: String,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Revoke a user; after nats-server reloads, its connections are closed.
    Revoke {
        /// Its name.
        name: String,
        #[command(flatten)]
        dir: DirArgs,
    },
}

/// `pulse nats …`.
pub fn run(command: NatsCommand) -> Result<ExitCode> {
    match command {
        NatsCommand::Init(args) => init(args),
        NatsCommand::Worker { command } => user(Role::Worker, command),
        NatsCommand::Client { command } => user(Role::Client, command),
        NatsCommand::Member { command } => user(Role::Member, command),
        NatsCommand::Users(args) => users(&args),
    }
}

#[allow(clippy::print_stdout)]
fn init(args: InitArgs) -> Result<ExitCode> {
    let tls = match (args.tls_ca, args.tls_cert, args.tls_key) {
        (Some(ca), Some(cert), Some(key)) => ServerTls::Files(TlsFiles { ca, cert, key }),
        _ => ServerTls::Dev { hosts: args.hosts },
    };
    let options = DeploymentOptions {
        tls,
        workers: args.workers,
        clients: Vec::new(),
        listen: Some(args.listen),
        store_dir: args.store_dir,
    };
    let d = Deployment::init(&args.out, &options)
        .with_context(|| format!("setting up NATS access in {}", args.out.display()))?;
    println!("NATS access set up in {}", d.dir().display());
    println!("  server configuration: {}", d.config_path().display());
    if let Some(ca) = d.ca_path() {
        println!(
            "  CA certificate (give it to every party): {}",
            ca.display()
        );
    }
    for u in d.users() {
        println!(
            "  {:<11} {:<24} {}",
            u.role.name(),
            u.name,
            d.credentials_path(u.role, &u.name).display()
        );
    }
    println!(
        "start the server with: nats-server -c {} -js",
        d.config_path().display()
    );
    println!(
        "hand each credentials file to its party only (they are mode 0600; the seed inside is the secret)"
    );
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn user(role: Role, command: UserCommand) -> Result<ExitCode> {
    match command {
        UserCommand::Add { name, dir } => {
            let mut d = Deployment::open(&dir.dir)?;
            let path = d.add_user(role, &name)?;
            println!("added {role} `{name}`; its credentials: {}", path.display());
            println!(
                "reload nats-server to let it in: nats-server --signal reload (or kill -HUP its pid)"
            );
        }
        UserCommand::Revoke { name, dir } => {
            let mut d = Deployment::open(&dir.dir)?;
            d.revoke(role, &name)?;
            println!("revoked {role} `{name}`");
            println!(
                "reload nats-server to cut it off: nats-server --signal reload (or kill -HUP its pid); the other users stay connected"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn users(args: &DirArgs) -> Result<ExitCode> {
    let d = Deployment::open(&args.dir)?;
    for u in d.users() {
        let p = pulse_access::permissions(u.role, &u.name);
        println!("{} `{}` ({})", u.role, u.name, u.public_key);
        println!("  publish:   {}", p.publish.join(" "));
        println!("  subscribe: {}", p.subscribe.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `pulse worker check`.
#[derive(Debug, serde::Serialize)]
pub struct CheckLine {
    /// What was checked.
    pub name: String,
    /// Whether it is as it should be.
    pub passed: bool,
    /// What was seen, or what to do.
    pub detail: String,
}

/// Connects as worker `id` and checks what it may and may not do. Every probe is harmless
/// if it were (wrongly) allowed: it reads, or publishes a receipt for no transaction.
pub async fn check_worker(nats: &NatsEndpoint, id: &str) -> Vec<CheckLine> {
    use async_nats::jetstream;
    use pulse_protocol::{
        JOB_CONSUMER, JOB_STREAM, KEY_BUCKET, TX_STREAM, TX_SUBJECT, WORKER_BUCKET,
    };
    use std::time::Duration;

    let mut out = Vec::new();
    let mut line = |name: &str, passed: bool, detail: String| {
        out.push(CheckLine {
            name: name.to_owned(),
            passed,
            detail,
        });
    };
    let (tx, mut errors) = tokio::sync::mpsc::unbounded_channel::<String>();
    let options = async_nats::ConnectOptions::new()
        .name(format!("pulse worker check {id}"))
        .request_timeout(Some(Duration::from_secs(3)))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        });
    let client = match nats.connect_with(options).await {
        Ok(c) => {
            line(
                "connect with this worker's credentials",
                true,
                format!("as worker `{id}` at {}", nats.url),
            );
            c
        }
        Err(e) => {
            line(
                "connect with this worker's credentials",
                false,
                e.to_string(),
            );
            return out;
        }
    };
    line(
        "TLS, the server verified by the cluster's CA",
        nats.ca.is_some(),
        match &nats.ca {
            Some(ca) => format!("CA {}", ca.display()),
            None => {
                "no --nats-ca: the server is not verified; pass the CA the operator gave you".into()
            }
        },
    );
    let js = jetstream::new(client.clone());
    let consumer = async {
        let stream = js.get_stream(JOB_STREAM).await.map_err(|e| e.to_string())?;
        let mut c: jetstream::consumer::PullConsumer = stream
            .get_consumer(JOB_CONSUMER)
            .await
            .map_err(|e| e.to_string())?;
        let info = c.info().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(format!(
            "{JOB_STREAM}/{JOB_CONSUMER}: lease {:?}, {} job(s) waiting",
            info.config.ack_wait, info.num_pending
        ))
    }
    .await;
    line(
        "read the job consumer",
        consumer.is_ok(),
        consumer.unwrap_or_else(|e| e),
    );
    let registry = js
        .get_key_value(WORKER_BUCKET)
        .await
        .map(|_| format!("bucket {WORKER_BUCKET}; this worker writes only its own entry `{id}`"))
        .map_err(|e| e.to_string());
    line(
        "open the worker registry",
        registry.is_ok(),
        registry.unwrap_or_else(|e| e),
    );
    let keys = js
        .get_object_store(KEY_BUCKET)
        .await
        .map(|_| format!("object store {KEY_BUCKET}"))
        .map_err(|e| e.to_string());
    line(
        "open the proving-key store",
        keys.is_ok(),
        keys.unwrap_or_else(|e| e),
    );

    // What the server must refuse.
    let refused = |what: &str, subject: String| (what.to_owned(), subject);
    let probes = [
        refused(
            "refused: publish receipts",
            pulse_protocol::receipt_subject("0x00-worker-check"),
        ),
        refused(
            "refused: read submitted transactions",
            TX_SUBJECT.to_owned(),
        ),
        refused(
            "refused: read other parties' replies",
            "_INBOX.>".to_owned(),
        ),
        refused(
            "refused: transaction stream info",
            format!("$JS.API.STREAM.INFO.{TX_STREAM}"),
        ),
    ];
    for (i, (what, subject)) in probes.into_iter().enumerate() {
        let sent = match i {
            1 | 2 => client
                .subscribe(subject.clone())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => client
                .publish(subject.clone(), "pulse worker check".into())
                .await
                .map_err(|e| e.to_string()),
        };
        let _ = client.flush().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut seen = false;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, errors.recv()).await {
            if e.contains("Permissions Violation") && e.contains(&subject) {
                seen = true;
                break;
            }
        }
        let detail = match (&sent, seen) {
            (_, true) => format!("the server refused {subject}"),
            (Err(e), false) => format!("could not try {subject}: {e}"),
            (Ok(()), false) => format!(
                "the server allowed {subject}: this worker's permissions are too wide; tell the operator"
            ),
        };
        line(&what, seen, detail);
    }
    out
}
