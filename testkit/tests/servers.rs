//! Each server starts on loopback, answers, and is gone (port refused, directory removed)
//! after its handle is dropped.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pulse_testkit::{
    ANVIL_CHAIN_ID, Anvil, DEV_ACCOUNTS, Ipfs, Nats, Prometheus, Tool, free_port, http_request,
    promtool_path,
};

const PROBE: Duration = Duration::from_secs(5);

fn refused(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
}

fn assert_gone(name: &str, port: u16, dir: &Path) {
    assert!(
        refused(port),
        "{name} still accepts connections on {port} after drop"
    );
    assert!(
        !dir.exists(),
        "{name}'s directory {} survived the drop",
        dir.display()
    );
}

fn json_rpc(port: u16, method: &str, params: &str) -> String {
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
    let answer = http_request(
        port,
        "POST",
        "/",
        Some(("application/json", body.as_bytes())),
        PROBE,
    )
    .expect("anvil answers JSON-RPC");
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.text()
}

/// A request over the raw NATS protocol: publish `payload` to `subject` and return the
/// first reply.

#[test]
fn every_tool_is_installed() {
    for tool in Tool::ALL {
        let path = tool.find().unwrap_or_else(|e| panic!("{e}"));
        assert!(path.is_file(), "{}", path.display());
    }
    assert!(
        pulse_testkit::js_dir()
            .join("node_modules/circomlibjs")
            .is_dir()
    );
}

#[test]
fn free_port_can_be_bound() {
    let port = free_port();
    assert_ne!(port, 0);
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the port is free");
}

/// A request over an authenticated TLS connection as `endpoint`'s user.
fn nats_request(endpoint: &pulse_testkit::NatsEndpoint, subject: &str, payload: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = endpoint.connect("testkit test").await.expect("connect");
        let reply = client
            .request(subject.to_owned(), payload.to_owned().into())
            .await
            .expect("request");
        String::from_utf8(reply.payload.to_vec()).expect("UTF-8 reply")
    })
}

/// The first line a plain TCP client reads: the server's `INFO`.
fn info_line(port: u16) -> String {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to NATS");
    stream.set_read_timeout(Some(PROBE)).expect("read timeout");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("INFO line");
    line
}

#[test]
fn nats_answers_with_jetstream_over_tls_only_to_users_and_is_gone_after_drop() {
    let started = Instant::now();
    let nats = Nats::start();
    eprintln!("nats-server ready in {:?}", started.elapsed());
    let (port, dir) = (nats.port(), nats.dir().to_owned());
    assert_eq!(nats.url(), format!("tls://127.0.0.1:{port}"));
    let info = info_line(port);
    assert!(
        info.contains("\"tls_required\":true") && info.contains("\"auth_required\":true"),
        "{info}"
    );

    let info = nats_request(&nats.coordinator(), "$JS.API.INFO", "");
    assert!(
        info.contains("io.nats.jetstream.api.v1.account_info_response"),
        "{info}"
    );
    assert!(nats.store_dir().starts_with(&dir));

    drop(nats);
    assert_gone("nats-server", port, &dir);
}

#[test]
fn nats_restart_keeps_port_users_and_jetstream_data() {
    let mut nats = Nats::start();
    let port = nats.port();
    let coordinator = nats.coordinator();
    let created = nats_request(
        &coordinator,
        "$JS.API.STREAM.CREATE.PULSE_T",
        r#"{"name":"PULSE_T","subjects":["pulse.jobs.t"],"storage":"file"}"#,
    );
    assert!(!created.contains("\"error\""), "{created}");
    let ack = nats_request(&coordinator, "pulse.jobs.t", "hello");
    assert!(ack.contains("\"seq\":1"), "{ack}");

    nats.stop();
    assert!(!nats.is_running());
    assert!(refused(port), "nats-server still listens after stop");

    let started = Instant::now();
    nats.restart();
    eprintln!("nats-server restarted in {:?}", started.elapsed());
    assert_eq!(nats.port(), port);
    let info = nats_request(&coordinator, "$JS.API.STREAM.INFO.PULSE_T", "");
    assert!(
        info.contains("\"messages\":1"),
        "the stream lost its message: {info}"
    );

    // A crash (SIGKILL) followed by a restart also comes back on the same port.
    nats.kill();
    assert!(refused(port));
    nats.restart();
    let info = nats_request(&coordinator, "$JS.API.STREAM.INFO.PULSE_T", "");
    assert!(info.contains("\"name\":\"PULSE_T\""), "{info}");
}

#[test]
fn anvil_answers_with_the_dev_accounts_and_is_gone_after_drop() {
    let started = Instant::now();
    let anvil = Anvil::start();
    eprintln!("anvil ready in {:?}", started.elapsed());
    let (port, dir) = (anvil.port(), anvil.dir().to_owned());
    assert_eq!(anvil.url(), format!("http://127.0.0.1:{port}"));

    let chain_id = json_rpc(port, "eth_chainId", "[]");
    assert!(
        chain_id.contains(&format!("\"0x{ANVIL_CHAIN_ID:x}\"")),
        "{chain_id}"
    );

    let accounts = json_rpc(port, "eth_accounts", "[]").to_lowercase();
    let log = std::fs::read_to_string(anvil.log_path()).expect("anvil's log");
    for account in DEV_ACCOUNTS {
        assert!(
            accounts.contains(&account.address.to_lowercase()),
            "{accounts}"
        );
        assert!(
            log.contains(account.private_key),
            "anvil did not print {account:?}"
        );
    }

    drop(anvil);
    assert_gone("anvil", port, &dir);
}

#[test]
fn anvil_start_with_passes_its_arguments() {
    let anvil = Anvil::start_with(&["--chain-id", "1337", "--no-mining"]);
    let chain_id = json_rpc(anvil.port(), "eth_chainId", "[]");
    assert!(chain_id.contains("\"0x539\""), "{chain_id}");
}

#[test]
fn ipfs_answers_only_on_its_api_port_keeps_its_data_across_a_restart_and_is_gone_after_drop() {
    let started = Instant::now();
    let mut ipfs = Ipfs::start();
    eprintln!("js-ipfs ready in {:?}", started.elapsed());
    let (port, dir) = (ipfs.port(), ipfs.dir().to_owned());
    assert_eq!(ipfs.api_url(), format!("http://127.0.0.1:{port}"));
    assert!(ipfs.repo_path().join("config").is_file());

    let version = http_request(port, "POST", "/api/v0/version", None, PROBE).expect("version");
    assert_eq!(version.status, 200);
    assert!(version.text().contains("\"Version\""), "{}", version.text());

    // The daemon may answer before its start-up lines reach the log file: wait for them.
    let listening = format!("HTTP API listening on /ip4/127.0.0.1/tcp/{port}");
    let mut log = String::new();
    for _ in 0..100 {
        log = std::fs::read_to_string(ipfs.log_path()).expect("js-ipfs's log");
        if log.contains(&listening) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(log.contains(&listening), "{log}");
    assert!(
        !log.contains("Gateway (read only) listening"),
        "a gateway listens: {log}"
    );
    assert!(
        !log.contains("gRPC listening"),
        "a gRPC endpoint listens: {log}"
    );

    // Added, killed, restarted: same port, the content still there.
    let body = b"--pulse\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\nkept across a restart\r\n--pulse--\r\n";
    let added = http_request(
        port,
        "POST",
        "/api/v0/add?pin=true",
        Some(("multipart/form-data; boundary=pulse", body)),
        PROBE,
    )
    .expect("add");
    assert_eq!(added.status, 200, "{}", added.text());
    let text = added.text();
    let hash = text
        .split("\"Hash\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no hash in {text}"))
        .to_owned();
    ipfs.restart();
    assert_eq!(ipfs.port(), port);
    let cat = http_request(
        port,
        "POST",
        &format!("/api/v0/cat?arg={hash}"),
        None,
        PROBE,
    )
    .expect("cat after the restart");
    assert_eq!(cat.status, 200, "{}", cat.text());
    assert_eq!(cat.text(), "kept across a restart");

    drop(ipfs);
    assert_gone("js-ipfs", port, &dir);
}

#[test]
fn prometheus_scrapes_and_is_gone_after_drop() {
    let target = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: nobody\n    \
         static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
    );
    let started = Instant::now();
    let prometheus = Prometheus::start(&config);
    eprintln!("prometheus ready in {:?}", started.elapsed());
    let (port, dir) = (prometheus.port(), prometheus.dir().to_owned());
    assert_eq!(prometheus.url(), format!("http://127.0.0.1:{port}"));

    let checked = Command::new(promtool_path())
        .args(["check", "config"])
        .arg(prometheus.config_path())
        .output()
        .expect("run promtool");
    assert!(checked.status.success(), "{checked:?}");

    // The scrape of a port where nothing listens shows up as up == 0.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = http_request(port, "GET", "/api/v1/query?query=up", None, PROBE)
            .expect("query answers");
        assert_eq!(answer.status, 200, "{}", answer.text());
        let text = answer.text();
        if text.contains("\"job\":\"nobody\"") {
            assert!(text.contains("\"0\"]"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scrape result in 20 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    drop(prometheus);
    assert_gone("prometheus", port, &dir);
}
