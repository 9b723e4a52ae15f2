//! The kernel program: the files under `kernels/`, assembled into one source text that both
//! NVRTC and an OpenCL compiler accept.
//!
//! The kernels are written once. Templates (`field.cl`, `curve.cl`, `msm_curve.cl`,
//! `selftest.cl`) are instantiated by replacing their placeholder prefixes (`FIELD_`,
//! `BASE_`, `POINT_`) with a field's or a group's name, and the field constants are
//! generated from arkworks' own (`MODULUS`, the Montgomery form of one), so no 256-bit
//! constant is typed by hand.

use ark_bn254::{Fq, Fr};
use ark_ff::{BigInt, Field, PrimeField};
use sha2::{Digest, Sha256};

const DIALECT: &str = include_str!("../kernels/dialect.h");
const FIELD: &str = include_str!("../kernels/field.cl");
const FQ2: &str = include_str!("../kernels/fq2.cl");
const CURVE: &str = include_str!("../kernels/curve.cl");
const MSM: &str = include_str!("../kernels/msm.cl");
const MSM_CURVE: &str = include_str!("../kernels/msm_curve.cl");
const NTT: &str = include_str!("../kernels/ntt.cl");
const SELFTEST: &str = include_str!("../kernels/selftest.cl");

/// Every kernel the host launches, for build checks.
pub const KERNELS: &[&str] = &[
    "msm_digits",
    "msm_digits_glv",
    "msm_count",
    "msm_scan_blocks",
    "msm_scan_tops",
    "msm_scan_add",
    "msm_scatter",
    "g1_sum_list",
    "g1_sum_partials",
    "g1_bucket_reduce",
    "g1_window_step",
    "g2_sum_list",
    "g2_sum_partials",
    "g2_bucket_reduce",
    "g2_window_step",
    "fr_bit_reverse",
    "fr_ntt_stage",
    "fr_ntt_radix8",
    "fr_ntt_local",
    "fr_powers",
    "fr_mul_each",
    "fr_scale",
    "fr_quotient",
    "fq_selftest",
    "fr_selftest",
    "fq2_selftest",
];

/// The whole program, as one source text.
pub fn program() -> String {
    let mut s = String::with_capacity(64 * 1024);
    s.push_str(DIALECT);
    s.push_str(&field_constants("fq", Fq::MODULUS, Fq::ONE.0));
    s.push_str(&field_constants("fr", Fr::MODULUS, Fr::ONE.0));
    s.push_str(&FIELD.replace("FIELD_", "fq_"));
    s.push_str(&FIELD.replace("FIELD_", "fr_"));
    s.push_str(FQ2);
    s.push_str(&CURVE.replace("POINT_", "g1_").replace("BASE_", "fq_"));
    s.push_str(&CURVE.replace("POINT_", "g2_").replace("BASE_", "fq2_"));
    s.push_str(&glv_constants());
    s.push_str(MSM);
    s.push_str(&MSM_CURVE.replace("POINT_", "g1_"));
    s.push_str(&MSM_CURVE.replace("POINT_", "g2_"));
    s.push_str(&format!(
        "\n#define NTT_LOCAL_LOG {}\n",
        crate::ntt::LOCAL_LOG
    ));
    s.push_str(NTT);
    for field in ["fq_", "fr_", "fq2_"] {
        s.push_str(&SELFTEST.replace("FIELD_", field));
    }
    s
}

/// A short hash of the program text: the key kernel caches are stored under.
pub fn program_hash(source: &str) -> String {
    hex::encode(&Sha256::digest(source.as_bytes())[..12])
}

fn limbs32(x: BigInt<4>) -> [u32; 8] {
    let mut out = [0u32; 8];
    for (i, limb) in x.0.iter().enumerate() {
        out[2 * i] = *limb as u32;
        out[2 * i + 1] = (*limb >> 32) as u32;
    }
    out
}

/// `-p⁻¹ mod 2³²` by Newton's iteration (each step doubles the correct low bits).
fn neg_inv32(p0: u32) -> u32 {
    let mut inv: u32 = 1;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(p0.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

fn field_constants(name: &str, modulus: BigInt<4>, one: BigInt<4>) -> String {
    let p = limbs32(modulus);
    format!(
        "\n/* {name}: generated from arkworks' constants */\n\
         CONSTANT uint {name}_P[LIMBS] = {{{}}};\n\
         CONSTANT uint {name}_R[LIMBS] = {{{}}};\n\
         #define {name}_INV 0x{:08x}u\n",
        list(&p),
        list(&limbs32(one)),
        neg_inv32(p[0]),
    )
}

fn list(x: &[u32]) -> String {
    x.iter()
        .map(|l| format!("0x{l:08x}u"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The GLV split's integers and the two β in Montgomery form (`msm.cl`, `src/glv.rs`).
fn glv_constants() -> String {
    let c = crate::glv::constants();
    let l = crate::glv::limbs32;
    let mut s = String::from("\n/* GLV: generated from arkworks' constants (src/glv.rs) */\n");
    for (name, x, n) in [
        ("GLV_G1", &c.g1, 5),
        ("GLV_G2", &c.g2, 3),
        ("GLV_N11", &c.n11, 4),
        ("GLV_N12", &c.n12, 2),
        ("GLV_N21", &c.n21, 2),
        ("GLV_N22", &c.n22, 4),
    ] {
        s.push_str(&format!(
            "CONSTANT uint {name}[{n}] = {{{}}};\n",
            list(&l(x, n))
        ));
    }
    for (name, beta) in [("GLV_BETA_G1", c.beta_g1), ("GLV_BETA_G2", c.beta_g2)] {
        s.push_str(&format!(
            "CONSTANT uint {name}[LIMBS] = {{{}}};\n",
            list(&limbs32(beta.0))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neg_inv_is_the_montgomery_constant() {
        for p in [Fq::MODULUS, Fr::MODULUS] {
            let p0 = limbs32(p)[0];
            assert_eq!(
                p0.wrapping_mul(neg_inv32(p0)),
                u32::MAX,
                "p·inv ≡ -1 mod 2³²"
            );
        }
    }

    #[test]
    fn every_placeholder_is_replaced_and_every_kernel_is_there() {
        let s = program();
        for placeholder in ["FIELD_", "POINT_", "BASE_"] {
            assert!(
                !s.contains(placeholder),
                "{placeholder} left in the program"
            );
        }
        for k in KERNELS {
            assert!(
                s.contains(&format!("void {k}(")),
                "kernel {k} missing from the program"
            );
        }
    }
}
