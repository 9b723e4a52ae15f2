//! Split proving from a key file: shards read only their ranges, their sums add up to the
//! whole MSMs, the assembled proof is ark-groth16's for the same randomisers, and the byte
//! forms of scalars and sums refuse what is not theirs.

use ark_bn254::{Bn254, Fr};
use ark_ec::AffineRepr;
use ark_ff::UniformRand;
use ark_groth16::{Groth16, prepare_verifying_key};
use pulse_circuits::artifacts::{self, CircuitParams, PROVING_KEY_FILE};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_prover::split::{
    KeyHeader, SUMS_BYTES, ShardProver, ShardRanges, ShardScalars, decode_sums, encode_sums,
};
use pulse_prover::{CpuBackend, MsmSums, QapWitness};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

#[test]
fn shards_read_from_the_key_file_assemble_ark_groth16s_proof() {
    let mut r = ChaCha20Rng::seed_from_u64(40);
    let params = CircuitParams::new(1, 4);
    let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut r).expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    keys.write(dir.path()).expect("write");
    let path = dir.path().join(PROVING_KEY_FILE);

    let header = KeyHeader::read(&path).expect("header");
    assert_eq!(header.vk, keys.pk.vk);
    assert_eq!(header.beta_g1, keys.pk.beta_g1);
    assert_eq!(header.delta_g1, keys.pk.delta_g1);
    assert_eq!(header.lens.assignment, keys.pk.a_query.len());
    assert_eq!(header.lens.l, keys.pk.l_query.len());
    assert_eq!(header.lens.h, keys.pk.h_query.len());

    let circuit = ChunkCircuit::blank(params);
    let inputs = circuit.witness.public_inputs();
    let r1cs = keys.constraints.clone().expect("matrices");
    let witness =
        QapWitness::with_constraints(&CpuBackend::new(), circuit.clone(), &r1cs, header.lens.h)
            .expect("witness")
            .0;
    let (rr, ss) = (Fr::rand(&mut r), Fr::rand(&mut r));
    let ark = Groth16::<Bn254>::create_proof_with_reduction(circuit, &keys.pk, rr, ss)
        .expect("ark proof");

    for shards in [1usize, 2, 3, 7] {
        let plan = ShardRanges::plan(header.lens, shards);
        assert_eq!(plan.len(), shards);
        let bytes: u64 = plan.iter().map(ShardRanges::base_bytes).sum();
        assert_eq!(
            bytes,
            header.lens.base_bytes(),
            "the plan covers every base once"
        );
        let mut total = MsmSums::default();
        for ranges in plan {
            let prover =
                ShardProver::load(CpuBackend::new(), &path, &header, ranges.clone()).expect("load");
            let scalars = ShardScalars::of(&witness, &ranges).expect("scalars");
            // Through the byte forms, as between machines.
            let sent = ShardScalars::decode(&scalars.encode()).expect("decode");
            assert_eq!(sent, scalars);
            assert_eq!(scalars.encode().len(), ShardScalars::encoded_len(&ranges));
            let sums = prover.sums(&sent).expect("sums");
            let back = decode_sums(&encode_sums(&sums)).expect("sums decode");
            assert_eq!(back, sums);
            total += &back;
        }
        let proof = header.assemble(&total, rr, ss);
        assert_eq!(proof, ark, "{shards} shards");
        let pvk = prepare_verifying_key(&header.vk);
        assert!(Groth16::<Bn254>::verify_proof(&pvk, &proof, &inputs).expect("verifier"));
    }
}

#[test]
fn a_shard_refuses_scalars_for_other_ranges_and_ranges_outside_the_key() {
    let mut r = ChaCha20Rng::seed_from_u64(41);
    let params = CircuitParams::new(1, 3);
    let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut r).expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    keys.write(dir.path()).expect("write");
    let path = dir.path().join(PROVING_KEY_FILE);
    let header = KeyHeader::read(&path).expect("header");
    let plan = ShardRanges::plan(header.lens, 2);
    let prover =
        ShardProver::load(CpuBackend::new(), &path, &header, plan[0].clone()).expect("load");
    let witness = QapWitness::with_constraints(
        &CpuBackend::new(),
        ChunkCircuit::blank(params),
        keys.constraints.as_ref().expect("matrices"),
        header.lens.h,
    )
    .expect("witness")
    .0;
    let other = ShardScalars::of(&witness, &plan[1]).expect("scalars");
    let err = prover
        .sums(&other)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("this shard holds"), "{err}");

    let mut outside = plan[1].clone();
    outside.h.end = header.lens.h + 1;
    let err = ShardProver::load(CpuBackend::new(), &path, &header, outside)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("not within the key's"), "{err}");

    // A key file cut short, or with bytes appended, is not split.
    let cut = dir.path().join("cut.key");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).expect("write");
    assert!(KeyHeader::read(&cut).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    std::fs::write(&cut, &longer).expect("write");
    let err = KeyHeader::read(&cut)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("bytes follow the last query"), "{err}");
}

#[test]
fn byte_forms_refuse_what_is_not_theirs() {
    let mut r = ChaCha20Rng::seed_from_u64(42);
    let ranges = ShardRanges {
        assignment: 3..5,
        l: 0..1,
        h: 7..9,
    };
    let scalars = ShardScalars {
        ranges: ranges.clone(),
        assignment: vec![Fr::rand(&mut r), -Fr::from(1u64)],
        l: vec![Fr::from(0u64)],
        h: vec![Fr::rand(&mut r), Fr::rand(&mut r)],
    };
    let bytes = scalars.encode();
    assert_eq!(ShardScalars::decode(&bytes).expect("decodes"), scalars);
    let malformed = |b: &[u8]| match ShardScalars::decode(b) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted"),
    };
    assert!(malformed(&bytes[..bytes.len() - 1]).contains("bytes of scalars"));
    assert!(malformed(b"short").contains("magic"));
    let mut big = bytes.clone();
    // The modulus's top byte is 0x30: 0xff there is above it.
    let last = big.len() - 1;
    big[last] = 0xff;
    assert!(malformed(&big).contains("scalar 4 is not below"));
    let mut backwards = bytes.clone();
    backwards[8..16].copy_from_slice(&9u64.to_le_bytes());
    assert!(malformed(&backwards).contains("starts past its end"));

    let g1 = ark_bn254::G1Affine::generator().into_group();
    let sums = MsmSums {
        a: g1,
        b_g1: g1 + g1,
        b_g2: ark_bn254::G2Affine::generator().into_group(),
        l: g1 * Fr::from(5u64),
        h: ark_bn254::G1Projective::default(),
    };
    let bytes = encode_sums(&sums);
    assert_eq!(bytes.len(), SUMS_BYTES);
    assert_eq!(decode_sums(&bytes).expect("decodes"), sums);
    assert!(decode_sums(&bytes[1..]).is_err());
    // An x coordinate above the base field's modulus is not a point.
    let mut off = bytes.clone();
    off[..31].fill(0xff);
    off[31] = 0x3f;
    assert!(
        decode_sums(&off)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("a G1 sum")
    );
}

/// Found by the `shard` fuzz target: ranges near `usize::MAX` in the header of shard
/// scalars overflowed the count of scalars they hold. They are now counted saturating and
/// refused as not matching the bytes that follow; the input is a seed of the target
/// (`fuzz/corpus/shard/regression-range-overflow`).
#[test]
fn ranges_too_large_to_count_are_refused_not_overflowed() {
    let mut bytes = b"PLSSHRD1".to_vec();
    for end in [0u64, 3, 1 << 62, u64::MAX, 0, 1 << 62] {
        bytes.extend_from_slice(&end.to_le_bytes());
    }
    bytes.extend_from_slice(&[0u8; 96]);
    let err = ShardScalars::decode(&bytes)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("bytes of scalars for ranges"), "{err}");
    let huge = ShardRanges {
        assignment: 0..usize::MAX,
        l: 0..usize::MAX,
        h: 0..usize::MAX,
    };
    assert_eq!(huge.base_bytes(), u64::MAX);
    assert_eq!(huge.scalar_count(), usize::MAX);
    assert_eq!(ShardScalars::encoded_len(&huge), usize::MAX);
}
