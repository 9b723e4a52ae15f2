//! The client against Kubo-shaped answers from a small HTTP server on `127.0.0.1:0`: the
//! answers real Kubo gives (sizes as strings, errors as `{"Message":…}` with HTTP 500),
//! and the ones a broken or hostile node might give.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pulse_ipfs::{Cid, IpfsClient, IpfsError, raw_cid_of};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the fake node saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    body: Vec<u8>,
}

impl Seen {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    fn has_param(&self, pair: &str) -> bool {
        self.target
            .split_once('?')
            .is_some_and(|(_, query)| query.split('&').any(|p| p == pair))
    }
}

/// What the fake node does with a request.
enum Reply {
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Keeps the connection open and never answers.
    Hang,
}

fn ok(body: impl Into<Vec<u8>>) -> Reply {
    Reply::Answer {
        status: 200,
        headers: Vec::new(),
        body: body.into(),
    }
}

fn kubo_error(status: u16, message: &str) -> Reply {
    let body = serde_json::json!({ "Message": message, "Code": 0, "Type": "error" });
    Reply::Answer {
        status,
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    }
}

/// A one-route-fits-all HTTP/1.1 server that answers every request with `reply`.
struct FakeNode {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeNode {
    async fn start(reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reply = Arc::new(reply);
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (reply, log) = (Arc::clone(&reply), Arc::clone(&log));
                tokio::spawn(async move { serve(stream, &*reply, &log).await });
            }
        });
        FakeNode { url, seen }
    }

    fn client(&self) -> IpfsClient {
        IpfsClient::new(&self.url).expect("client")
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    reply: &(dyn Fn(&Seen) -> Reply + Send + Sync),
    log: &Mutex<Vec<Seen>>,
) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split_whitespace();
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let mut length = 0;
    let mut chunked = false;
    for line in lines {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
    }
    let mut body = raw[head_end + 4..].to_vec();
    loop {
        let done = if chunked {
            body.ends_with(b"0\r\n\r\n")
        } else {
            body.len() >= length
        };
        if done {
            break;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    let seen = Seen {
        method,
        target,
        body,
    };
    let answer = reply(&seen);
    log.lock().expect("lock").push(seen);
    match answer {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Reply::Answer {
            status,
            headers,
            body,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str("\r\n");
            let _ = stream.write_all(out.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
        }
    }
}

fn add_answer(cid: &Cid, size: &str) -> Vec<u8> {
    format!("{{\"Name\":\"data\",\"Hash\":\"{cid}\",\"Size\":{size}}}\n").into_bytes()
}

const DATA: &[u8] = b"hello pulse\n";

#[tokio::test]
async fn add_reads_kubos_string_size_and_sends_kubo_options() {
    let cid = raw_cid_of(DATA);
    let answer = add_answer(&cid, "\"12\"");
    let node = FakeNode::start(move |_| ok(answer.clone())).await;

    let added = node.client().add(DATA).await.expect("add");
    assert_eq!(added, cid);
    assert!(added.to_string().starts_with("bafk"), "{added}");

    let requests = node.requests();
    let [request] = requests.as_slice() else {
        panic!("one request, got {requests:?}")
    };
    assert_eq!(request.method, "POST");
    assert_eq!(request.path(), "/api/v0/add");
    for param in [
        "cid-version=1",
        "cid-base=base32",
        "pin=true",
        "raw-leaves=true",
    ] {
        assert!(
            request.has_param(param),
            "{param} missing from {}",
            request.target
        );
    }
    let body = String::from_utf8_lossy(&request.body);
    assert!(body.contains("filename=\"data\""), "{body}");
    assert!(body.contains("hello pulse"), "{body}");
}

#[tokio::test]
async fn add_reads_js_ipfs_number_size() {
    let cid = raw_cid_of(DATA);
    let answer = add_answer(&cid, "12");
    let node = FakeNode::start(move |_| ok(answer.clone())).await;
    assert_eq!(node.client().add(DATA).await.expect("add"), cid);
}

#[tokio::test]
async fn add_refuses_a_cid_that_is_not_the_datas() {
    let answer = add_answer(&raw_cid_of(b"something else"), "\"12\"");
    let node = FakeNode::start(move |_| ok(answer.clone())).await;
    let err = node.client().add(DATA).await.expect_err("wrong CID");
    assert!(matches!(err, IpfsError::ContentMismatch { .. }), "{err:?}");
}

#[tokio::test]
async fn add_refuses_answers_it_cannot_read() {
    let cid = raw_cid_of(DATA);
    for body in [
        b"{\"Name\":\"data\"}".to_vec(),
        b"{\"Hash\":\"not-a-cid\",\"Size\":\"12\"}".to_vec(),
        add_answer(&cid, "\"twelve\""),
        add_answer(&cid, "\"3\""),
        b"<html>".to_vec(),
    ] {
        let node = FakeNode::start(move |_| ok(body.clone())).await;
        let err = node
            .client()
            .add(DATA)
            .await
            .expect_err("unreadable answer");
        let IpfsError::BadAnswer { endpoint, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*endpoint, "/api/v0/add");
        assert!(err.to_string().contains("/api/v0/add"), "{err}");
    }
}

#[tokio::test]
async fn cat_returns_checked_content_and_gives_the_node_a_timeout() {
    let cid = raw_cid_of(DATA);
    let node = FakeNode::start(|_| Reply::Answer {
        status: 200,
        headers: vec![("X-Content-Length", "12".into())],
        body: DATA.to_vec(),
    })
    .await;
    let content = node
        .client()
        .cat(&cid, Duration::from_millis(1500))
        .await
        .expect("cat");
    assert_eq!(content, DATA);

    let request = node.requests().pop().expect("a request");
    assert_eq!(request.method, "POST");
    assert_eq!(request.path(), "/api/v0/cat");
    assert!(
        request.has_param(&format!("arg={cid}")),
        "{}",
        request.target
    );
    assert!(request.has_param("timeout=1500ms"), "{}", request.target);
}

#[tokio::test]
async fn cat_refuses_content_that_does_not_hash_to_the_cid() {
    let node = FakeNode::start(|_| ok(b"hello pulse!".to_vec())).await;
    let err = node
        .client()
        .cat(&raw_cid_of(DATA), Duration::from_secs(1))
        .await
        .expect_err("tampered content");
    assert!(matches!(err, IpfsError::ContentMismatch { .. }), "{err:?}");
}

#[tokio::test]
async fn cat_bounds_what_it_reads() {
    let cid = raw_cid_of(&[7; 1000]);
    // Announced too large: refused before the body is read.
    let node = FakeNode::start(|_| Reply::Answer {
        status: 200,
        headers: vec![("X-Content-Length", "1000000000000".into())],
        body: vec![7; 1000],
    })
    .await;
    let err = node
        .client()
        .with_max_cat_bytes(100)
        .cat(&cid, Duration::from_secs(1))
        .await;
    assert!(
        matches!(err, Err(IpfsError::TooLarge { limit: 100, .. })),
        "{err:?}"
    );

    // Not announced: refused once the body passes the limit.
    let node = FakeNode::start(|_| ok(vec![7; 1000])).await;
    let client = node.client().with_max_cat_bytes(100);
    let err = client.cat(&cid, Duration::from_secs(1)).await;
    assert!(
        matches!(err, Err(IpfsError::TooLarge { limit: 100, .. })),
        "{err:?}"
    );
    // The same content within the limit is fine.
    let client = node.client().with_max_cat_bytes(1000);
    assert_eq!(
        client.cat(&cid, Duration::from_secs(1)).await.expect("cat"),
        vec![7; 1000]
    );
}

#[tokio::test]
async fn cat_notices_an_answer_cut_short() {
    // Kubo announces the file's length and reports a failure mid-stream only in a
    // trailer; a short body is the visible sign. A dag-pb CID cannot be hash-checked.
    let dag_pb: Cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
        .parse()
        .expect("a dag-pb CID");
    let node = FakeNode::start(|_| Reply::Answer {
        status: 200,
        headers: vec![("X-Content-Length", "100".into())],
        body: DATA.to_vec(),
    })
    .await;
    let err = node
        .client()
        .cat(&dag_pb, Duration::from_secs(1))
        .await
        .expect_err("short");
    assert!(
        matches!(
            err,
            IpfsError::BadAnswer {
                endpoint: "/api/v0/cat",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn kubo_errors_become_errors_a_caller_can_act_on() {
    let cid = raw_cid_of(DATA);
    let not_found = format!("block was not found locally (offline): ipld: could not find {cid}");
    let node = FakeNode::start(move |_| kubo_error(500, &not_found)).await;
    let err = node
        .client()
        .cat(&cid, Duration::from_secs(1))
        .await
        .expect_err("missing");
    assert!(
        matches!(&err, IpfsError::NotFound { cid: c, .. } if *c == cid.to_string()),
        "{err:?}"
    );

    let node = FakeNode::start(|_| kubo_error(500, "context deadline exceeded")).await;
    let err = node
        .client()
        .cat(&cid, Duration::from_secs(1))
        .await
        .expect_err("timeout");
    assert!(
        matches!(
            err,
            IpfsError::Timeout {
                endpoint: "/api/v0/cat",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());

    let node =
        FakeNode::start(|_| kubo_error(400, "invalid path \"x\": illegal base32 data")).await;
    let err = node.client().pin_add(&cid).await.expect_err("refused");
    let IpfsError::Api {
        endpoint,
        status,
        message,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*endpoint, *status), ("/api/v0/pin/add", 400));
    assert!(message.starts_with("invalid path"), "{message}");

    let node = FakeNode::start(|_| Reply::Answer {
        status: 405,
        headers: Vec::new(),
        body: b"405 - Method Not Allowed".to_vec(),
    })
    .await;
    let err = node.client().version().await.expect_err("refused");
    assert!(matches!(err, IpfsError::Api { status: 405, .. }), "{err:?}");
}

#[tokio::test]
async fn a_node_that_never_answers_times_out_within_the_bound() {
    let node = FakeNode::start(|_| Reply::Hang).await;
    let client = node.client().with_timeout_grace(Duration::from_millis(100));
    let started = Instant::now();
    let err = client
        .cat(&raw_cid_of(DATA), Duration::from_millis(200))
        .await
        .expect_err("no answer");
    assert!(
        matches!(
            err,
            IpfsError::Timeout {
                endpoint: "/api/v0/cat",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    let client = client.with_timeout(Duration::from_millis(200));
    let err = client.version().await.expect_err("no answer");
    assert!(matches!(err, IpfsError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn a_port_where_nothing_listens_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let err = IpfsClient::new(&url)
        .expect("client")
        .version()
        .await
        .expect_err("nobody");
    assert!(matches!(err, IpfsError::Unreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    let message = err.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("must be running"), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn version_reads_kubos_answer() {
    let node = FakeNode::start(|_| {
        ok(r#"{"Version":"0.29.0","Commit":"3f0947b","Repo":"15","System":"amd64/linux","Golang":"go1.22.4"}"#)
    })
    .await;
    let version = node.client().version().await.expect("version");
    assert_eq!(version.version, "0.29.0");
    assert_eq!(version.repo.as_deref(), Some("15"));
    assert_eq!(node.requests()[0].path(), "/api/v0/version");
}

#[tokio::test]
async fn pin_add_checks_that_the_cid_was_pinned() {
    let cid = raw_cid_of(DATA);
    let pins = format!("{{\"Pins\":[\"{cid}\"]}}");
    let node = FakeNode::start(move |_| ok(pins.clone())).await;
    node.client().pin_add(&cid).await.expect("pinned");
    let request = node.requests().pop().expect("a request");
    assert_eq!(request.path(), "/api/v0/pin/add");
    assert!(
        request.has_param(&format!("arg={cid}")),
        "{}",
        request.target
    );
    assert!(request.has_param("recursive=true"), "{}", request.target);
    assert!(request.target.contains("timeout="), "{}", request.target);

    let node = FakeNode::start(|_| ok(r#"{"Pins":[]}"#)).await;
    let err = node.client().pin_add(&cid).await.expect_err("not pinned");
    assert!(
        matches!(
            err,
            IpfsError::BadAnswer {
                endpoint: "/api/v0/pin/add",
                ..
            }
        ),
        "{err:?}"
    );
}
