//! Proving keys in the NATS object store, on a real nats-server: a real (small) chunk-circuit
//! key and its constraint matrices published once, fetched into a cache (miss, then hit), and
//! refused when the object under a name is not what the name says.

use std::path::Path;
use std::sync::Mutex;

use async_nats::jetstream;
use pulse_circuits::artifacts::{self, CircuitParams, Hash32, KeyArtifacts, PROVING_KEY_FILE};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_protocol::KEY_BUCKET;
use pulse_protocol::keys::{
    KeyError, VERIFIED_MARKER, fetch_proving_key, nats_digest, publish_proving_key,
};
use pulse_protocol::nats::{LayoutOptions, ensure_layout};
use pulse_testkit::Nats;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn small_key() -> KeyArtifacts {
    let params = CircuitParams::new(1, 3);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).expect("setup")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read cache dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_published_once_fetched_cached_and_checked() {
    let keys = small_key();
    let tmp = tempfile::tempdir().expect("tempdir");
    let key_dir = tmp.path().join("keys");
    keys.write(&key_dir).expect("write keys");
    let cache = tmp.path().join("cache");
    let pk_hash = keys.manifest.pk_hash.to_hex();
    let key_bytes = std::fs::read(key_dir.join(PROVING_KEY_FILE)).expect("read key");
    let no_progress = |_: u64, _: u64| {};

    let mut nats = Nats::start();
    let client = nats
        .coordinator()
        .connect("coordinator")
        .await
        .expect("connect");
    let js = jetstream::new(client);
    // Keys are fetched as a worker does, with a worker's permissions.
    let worker = nats.worker("w1").connect("w1").await.expect("connect");
    let wjs = jetstream::new(worker);

    // Before the coordinator has set up NATS.
    let err = publish_proving_key(&js, &key_dir)
        .await
        .expect_err("no store");
    assert!(matches!(err, KeyError::NoKeyStore), "{err:?}");
    let err = fetch_proving_key(&wjs, &pk_hash, &cache, &no_progress)
        .await
        .expect_err("no store");
    assert!(matches!(err, KeyError::NoKeyStore), "{err:?}");

    ensure_layout(&js, LayoutOptions::default())
        .await
        .expect("layout");

    // Not published yet: the error says what to do.
    let err = fetch_proving_key(&wjs, &pk_hash, &cache, &no_progress)
        .await
        .expect_err("not published");
    assert!(matches!(err, KeyError::NotPublished { .. }), "{err:?}");
    assert!(err.to_string().contains("--keys"), "{err}");

    // Published under its hash; the object store's digest is the same SHA-256.
    let published = publish_proving_key(&js, &key_dir).await.expect("publish");
    assert_eq!(published, pk_hash);
    let store = js.get_object_store(KEY_BUCKET).await.expect("store");
    let info = store.info(&pk_hash).await.expect("info");
    assert_eq!(info.size, key_bytes.len());
    assert_eq!(
        info.digest.as_deref(),
        Some(nats_digest(&keys.manifest.pk_hash).as_str())
    );
    let manifest_info = store
        .info(format!("{pk_hash}.manifest"))
        .await
        .expect("manifest info");

    // Publishing again changes nothing.
    assert_eq!(
        publish_proving_key(&js, &key_dir).await.expect("again"),
        pk_hash
    );
    assert_eq!(store.info(&pk_hash).await.expect("info").nuid, info.nuid);
    assert_eq!(
        store
            .info(format!("{pk_hash}.manifest"))
            .await
            .expect("info")
            .nuid,
        manifest_info.nuid
    );

    // Cache miss: downloaded, with progress up to the whole size, verified.
    let seen = Mutex::new(Vec::new());
    let record = |done: u64, total: u64| seen.lock().expect("lock").push((done, total));
    let dir = fetch_proving_key(&wjs, &pk_hash, &cache, &record)
        .await
        .expect("fetch");
    assert_eq!(dir, cache.join(&pk_hash));
    assert_eq!(
        std::fs::read(dir.join(PROVING_KEY_FILE)).expect("read"),
        key_bytes
    );
    let total = key_bytes.len() as u64;
    let seen = seen.into_inner().expect("lock");
    assert_eq!(seen.first(), Some(&(0, total)));
    assert_eq!(seen.last(), Some(&(total, total)));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(
        entries(&cache),
        std::slice::from_ref(&pk_hash),
        "no temporary left"
    );
    let manifest: artifacts::Manifest = serde_json::from_slice(
        &std::fs::read(dir.join(artifacts::MANIFEST_FILE)).expect("read manifest"),
    )
    .expect("manifest");
    assert_eq!(manifest, keys.manifest);

    // Cache hit: nothing is downloaded, even with the object gone from the store.
    store.delete(&pk_hash).await.expect("delete");
    let called = Mutex::new(false);
    let again = fetch_proving_key(&wjs, &pk_hash.to_uppercase(), &cache, &|_, _| {
        *called.lock().expect("lock") = true;
    })
    .await
    .expect("cache hit");
    assert_eq!(again, dir);
    assert!(!*called.lock().expect("lock"));

    // A cached copy that went bad (and lost its marker) is hashed, refused, and replaced.
    publish_proving_key(&js, &key_dir).await.expect("republish");
    let mut bad = key_bytes.clone();
    bad[key_bytes.len() / 2] ^= 1;
    std::fs::write(dir.join(PROVING_KEY_FILE), &bad).expect("corrupt cache");
    std::fs::remove_file(dir.join(VERIFIED_MARKER)).expect("rm marker");
    fetch_proving_key(&wjs, &pk_hash, &cache, &no_progress)
        .await
        .expect("re-download");
    assert_eq!(
        std::fs::read(dir.join(PROVING_KEY_FILE)).expect("read"),
        key_bytes
    );

    // Another content under the key's name is refused and nothing stays in the cache.
    std::fs::remove_dir_all(&dir).expect("clear cache");
    store
        .put(pk_hash.as_str(), &mut bad.as_slice())
        .await
        .expect("put corrupt object");
    let err = fetch_proving_key(&wjs, &pk_hash, &cache, &no_progress)
        .await
        .expect_err("corrupt object");
    match &err {
        KeyError::HashMismatch {
            expected, found, ..
        } => {
            assert_eq!(*expected, keys.manifest.pk_hash);
            assert_eq!(*found, Hash32::digest(&bad));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains(&pk_hash), "{err}");
    assert!(entries(&cache).is_empty(), "{:?}", entries(&cache));

    // Publishing repairs an object of the same size but other content.
    publish_proving_key(&js, &key_dir).await.expect("repair");
    fetch_proving_key(&wjs, &pk_hash, &cache, &no_progress)
        .await
        .expect("fetch after repair");

    // The constraint matrices travel with the key and are checked the same way.
    let r1cs_object = format!("{pk_hash}.r1cs");
    let r1cs_bytes =
        std::fs::read(key_dir.join(artifacts::CONSTRAINTS_FILE)).expect("read the matrices");
    let cached_r1cs = cache.join(&pk_hash).join(artifacts::CONSTRAINTS_FILE);
    assert_eq!(
        std::fs::read(&cached_r1cs).expect("cached matrices"),
        r1cs_bytes
    );
    // An entry that lost them is fetched again.
    std::fs::remove_file(&cached_r1cs).expect("rm cached matrices");
    fetch_proving_key(&wjs, &pk_hash, &cache, &no_progress)
        .await
        .expect("fetch the missing matrices");
    assert_eq!(std::fs::read(&cached_r1cs).expect("refetched"), r1cs_bytes);
    std::fs::remove_dir_all(cache.join(&pk_hash)).expect("clear cache");
    let mut bad_r1cs = r1cs_bytes.clone();
    bad_r1cs[r1cs_bytes.len() / 2] ^= 1;
    store
        .put(r1cs_object.as_str(), &mut bad_r1cs.as_slice())
        .await
        .expect("put corrupt matrices");
    let err = fetch_proving_key(&wjs, &pk_hash, &cache, &no_progress)
        .await
        .expect_err("corrupt matrices");
    match &err {
        KeyError::HashMismatch {
            pk_hash: object,
            expected,
            found,
        } => {
            assert_eq!(object, &r1cs_object);
            assert_eq!(Some(*expected), keys.manifest.constraints_hash);
            assert_eq!(*found, Hash32::digest(&bad_r1cs));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    assert!(entries(&cache).is_empty(), "{:?}", entries(&cache));
    publish_proving_key(&js, &key_dir)
        .await
        .expect("repair the matrices");
    fetch_proving_key(&wjs, &pk_hash, &cache, &no_progress)
        .await
        .expect("fetch after repairing the matrices");

    // A key directory whose key does not match its manifest is never published.
    std::fs::write(key_dir.join(PROVING_KEY_FILE), &bad).expect("corrupt key dir");
    let err = publish_proving_key(&js, &key_dir)
        .await
        .expect_err("corrupt key dir");
    assert!(matches!(err, KeyError::KeyDirMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("pulse setup"), "{err}");

    // A hash that is not one never names a file.
    let err = fetch_proving_key(&wjs, "../x", &cache, &no_progress)
        .await
        .expect_err("bad hash");
    assert!(matches!(err, KeyError::BadHash { .. }), "{err:?}");
}
