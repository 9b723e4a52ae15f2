//! The client against a real js-ipfs node (started by pulse-testkit; `scripts/deps`
//! installs it).

use std::time::{Duration, Instant};

use pulse_ipfs::{Cid, IpfsClient, IpfsError, raw_cid_of};
use pulse_testkit::Ipfs;

/// Deterministic bytes that compress badly, so chunking is real.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

#[tokio::test]
async fn round_trips_and_misses_against_js_ipfs() {
    let node = Ipfs::start();
    let ipfs = IpfsClient::new(&node.api_url()).expect("client");

    let version = ipfs.version().await.expect("version");
    assert!(!version.version.is_empty(), "{version:?}");

    // One block: a raw-leaf CIDv1 in base32 that is the data's own SHA-256.
    let record = b"hello world\n".to_vec();
    let cid = ipfs.add(record.clone()).await.expect("add");
    assert!(cid.to_string().starts_with("bafk"), "{cid}");
    assert_eq!(cid.version(), cid::Version::V1);
    assert_eq!(
        cid,
        raw_cid_of(&record),
        "the node and the client disagree on the CID"
    );
    let back = ipfs.cat(&cid, Duration::from_secs(5)).await.expect("cat");
    assert_eq!(back, record);
    ipfs.pin_add(&cid).await.expect("pin");

    // Several blocks: a UnixFS root, read back whole.
    let big = pseudo_random(600 * 1024, 7);
    let root = ipfs.add(big.clone()).await.expect("add 600 KiB");
    assert!(root.to_string().starts_with("bafy"), "{root}");
    assert_eq!(
        ipfs.cat(&root, Duration::from_secs(10)).await.expect("cat"),
        big
    );
    let small = ipfs.clone().with_max_cat_bytes(64 * 1024);
    let err = small
        .cat(&root, Duration::from_secs(10))
        .await
        .expect_err("over the limit");
    assert!(matches!(err, IpfsError::TooLarge { .. }), "{err:?}");

    // Content nobody added: NotFound or Timeout, within the bound either way.
    let missing = raw_cid_of(b"never added to any node");
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = ipfs
        .cat(&missing, timeout)
        .await
        .expect_err("missing content");
    let took = started.elapsed();
    assert!(
        matches!(err, IpfsError::NotFound { .. } | IpfsError::Timeout { .. }),
        "{err:?}"
    );
    assert!(
        took < timeout + pulse_ipfs::DEFAULT_TIMEOUT_GRACE + Duration::from_secs(1),
        "a missing CID took {took:?}"
    );
    eprintln!("missing CID: {err} after {took:?}");
}

#[tokio::test]
async fn a_stopped_node_is_unreachable() {
    let mut node = Ipfs::start();
    let ipfs = IpfsClient::new(&node.api_url()).expect("client");
    ipfs.version().await.expect("the node is up");
    node.stop();

    let err = ipfs.version().await.expect_err("the node is down");
    assert!(matches!(err, IpfsError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&node.api_url()), "{err}");
    let some: Cid = raw_cid_of(b"x");
    let err = ipfs
        .cat(&some, Duration::from_secs(1))
        .await
        .expect_err("down");
    assert!(matches!(err, IpfsError::Unreachable { .. }), "{err:?}");
    let err = ipfs.add(b"x".to_vec()).await.expect_err("down");
    assert!(matches!(err, IpfsError::Unreachable { .. }), "{err:?}");
}
