//! Each server starts on loopback, answers, and is gone (port refused, directory removed)
//! after its handle is dropped.

use std::io::{BufRead, BufReader, Read, Write};
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
fn nats_request(port: u16, subject: &str, payload: &str) -> String {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to NATS");
    stream.set_read_timeout(Some(PROBE)).expect("read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("INFO line");
    assert!(line.starts_with("INFO "), "not a NATS server: {line}");
    write!(
        stream,
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB _INBOX.t 1\r\n\
         PUB {subject} _INBOX.t {}\r\n{payload}\r\nPING\r\n",
        payload.len()
    )
    .expect("send request");
    loop {
        line.clear();
        reader.read_line(&mut line).expect("a NATS protocol line");
        if let Some(rest) = line.strip_prefix("MSG _INBOX.t 1 ") {
            let len: usize = rest.trim().parse().expect("payload length");
            let mut reply = vec![0; len + 2];
            reader.read_exact(&mut reply).expect("reply payload");
            reply.truncate(len);
            return String::from_utf8(reply).expect("UTF-8 reply");
        }
        assert!(
            !line.starts_with("-ERR"),
            "NATS refused the request: {line}"
        );
    }
}

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

#[test]
fn nats_answers_with_jetstream_and_is_gone_after_drop() {
    let started = Instant::now();
    let nats = Nats::start();
    eprintln!("nats-server ready in {:?}", started.elapsed());
    let (port, dir) = (nats.port(), nats.dir().to_owned());
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));

    let info = nats_request(port, "$JS.API.INFO", "");
    assert!(
        info.contains("io.nats.jetstream.api.v1.account_info_response"),
        "{info}"
    );
    assert!(nats.store_dir().starts_with(&dir));

    drop(nats);
    assert_gone("nats-server", port, &dir);
}

#[test]
fn nats_restart_keeps_port_and_jetstream_data() {
    let mut nats = Nats::start();
    let port = nats.port();
    let created = nats_request(
        port,
        "$JS.API.STREAM.CREATE.PULSE",
        r#"{"name":"PULSE","subjects":["pulse.>"],"storage":"file"}"#,
    );
    assert!(!created.contains("\"error\""), "{created}");
    let ack = nats_request(port, "pulse.jobs", "hello");
    assert!(ack.contains("\"seq\":1"), "{ack}");

    nats.stop();
    assert!(!nats.is_running());
    assert!(refused(port), "nats-server still listens after stop");

    let started = Instant::now();
    nats.restart();
    eprintln!("nats-server restarted in {:?}", started.elapsed());
    assert_eq!(nats.port(), port);
    let info = nats_request(port, "$JS.API.STREAM.INFO.PULSE", "");
    assert!(
        info.contains("\"messages\":1"),
        "the stream lost its message: {info}"
    );

    // A crash (SIGKILL) followed by a restart also comes back on the same port.
    nats.kill();
    assert!(refused(port));
    nats.restart();
    let info = nats_request(port, "$JS.API.STREAM.INFO.PULSE", "");
    assert!(info.contains("\"name\":\"PULSE\""), "{info}");
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
fn ipfs_answers_only_on_its_api_port_and_is_gone_after_drop() {
    let started = Instant::now();
    let ipfs = Ipfs::start();
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
