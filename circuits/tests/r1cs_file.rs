//! Regression for a fuzz finding (`keys` target): a constraints file may declare far more
//! variables than its rows use (603,979,780 here, the count a fuzz input set). Reading it
//! must cost what its bytes do, not what it declares; its rows evaluate on a witness as long
//! as the variables they name; and a key directory refuses it against its key's count
//! (`artifacts`, "it has N variables, the keys M").

use ark_bn254::Fr;
use pulse_circuits::r1cs::{R1cs, Which};

const MANY_VARIABLES: &[u8] = include_bytes!("../../fuzz/corpus/keys/r1cs_many_variables");

#[test]
fn a_declared_variable_count_costs_nothing_to_read() {
    let r = R1cs::from_bytes(MANY_VARIABLES).expect("a well-formed file");
    assert_eq!(r.num_variables(), 603_979_780);
    assert_eq!(r.num_constraints(), 2);
    assert_eq!(r.to_bytes(), MANY_VARIABLES);
    // The rows name variables 0..4 only: a witness of four evaluates every row.
    let z: Vec<Fr> = (0..4u64).map(Fr::from).collect();
    for i in 0..r.num_constraints() {
        for which in [Which::A, Which::B, Which::C] {
            assert!(r.evaluate_row(which, i, &z).is_some(), "row {i}");
        }
    }
}
