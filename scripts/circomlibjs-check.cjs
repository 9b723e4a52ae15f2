// Check vectors made by Pulse (`pulse crypto make-vectors`) with circomlibjs, the peer
// implementation: Poseidon hashes must match, Pulse's EdDSA-Poseidon public keys and
// signatures must be the ones circomlibjs derives and makes, and circomlibjs must accept
// exactly the signatures marked valid. Transaction vectors (`--kind tx`) are checked as a
// wallet signs: the deployment id from the chain id and contract (keccak256 with the ethers
// that circomlibjs depends on), the 6-input message, and the signature over it. Ends with
// `N passed, M failed`.
// Usage: CIRCOMLIBJS_DIR=<dir with node_modules> node scripts/circomlibjs-check.cjs FILE...
"use strict";
const fs = require("fs");
const path = require("path");

const dir = process.env.CIRCOMLIBJS_DIR;
if (!dir) {
  console.error("set CIRCOMLIBJS_DIR to the folder where circomlibjs is installed");
  process.exit(2);
}
const circomlibjs = require(path.join(dir, "node_modules", "circomlibjs"));
// ethers v5 is a dependency of circomlibjs: keccak256 and the ABI encoding of the deployment.
const { ethers } = require(path.join(dir, "node_modules", "ethers"));

// The BN254 scalar field order.
const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;

// What a wallet computes to sign a Pulse transaction for a deployment (pulse-circuits tx docs).
function deploymentId(chainId, contract) {
  const encoded = ethers.utils.defaultAbiCoder.encode(["uint256", "address"], [chainId, contract]);
  return BigInt(ethers.utils.keccak256(encoded)) % R;
}

async function main() {
  const poseidon = await circomlibjs.buildPoseidon();
  const eddsa = await circomlibjs.buildEddsa();
  const F = eddsa.babyJub.F;
  const str = (x) => F.toObject(x).toString();
  let passed = 0;
  let failed = 0;
  const fail = (file, i, why) => {
    failed += 1;
    console.log(`FAIL ${file}: vector ${i}: ${why}`);
  };
  for (const file of process.argv.slice(2)) {
    const doc = JSON.parse(fs.readFileSync(file, "utf8"));
    doc.vectors.forEach((v, i) => {
      if (v.deployment_id !== undefined) {
        const d = deploymentId(v.chain_id, v.contract);
        if (d.toString() !== v.deployment_id) {
          return fail(file, i, `deployment id: circomlibjs ${d}, pulse ${v.deployment_id}`);
        }
        const header = BigInt(v.kind) + 8n * BigInt(v.signer) + (1n << 67n) * BigInt(v.nonce);
        const message = (id) => poseidon.F.toObject(poseidon([header, ...v.payload.map(BigInt), id]));
        const m = message(d);
        if (m.toString() !== v.message) {
          return fail(file, i, `message: circomlibjs ${m}, pulse ${v.message}`);
        }
        const prv = Buffer.from(v.private_key_hex, "hex");
        const sig = eddsa.signPoseidon(prv, F.e(m));
        if (str(sig.R8[0]) !== v.signature.r8[0] || str(sig.R8[1]) !== v.signature.r8[1] ||
            sig.S.toString() !== v.signature.s) {
          return fail(file, i, "circomlibjs signs the message differently");
        }
        // The same signature is no good on another deployment.
        if (eddsa.verifyPoseidon(F.e(message((d + 1n) % R)), sig, eddsa.prv2pub(prv))) {
          return fail(file, i, "the signature verifies for another deployment id");
        }
        passed += 1;
        return;
      }
      if (v.inputs) {
        const h = poseidon.F.toObject(poseidon(v.inputs.map(BigInt))).toString();
        if (h !== v.hash) return fail(file, i, `poseidon: circomlibjs ${h}, pulse ${v.hash}`);
        passed += 1;
        return;
      }
      const prv = Buffer.from(v.private_key_hex, "hex");
      const A = [F.e(BigInt(v.public_key[0])), F.e(BigInt(v.public_key[1]))];
      const sig = {
        R8: [F.e(BigInt(v.signature.r8[0])), F.e(BigInt(v.signature.r8[1]))],
        S: BigInt(v.signature.s),
      };
      const msg = F.e(BigInt(v.message));
      const ok = eddsa.verifyPoseidon(msg, sig, A);
      if (ok !== v.valid) return fail(file, i, `circomlibjs says ${ok}, vector says ${v.valid}`);
      const pub = eddsa.prv2pub(prv);
      if (str(pub[0]) !== v.public_key[0] || str(pub[1]) !== v.public_key[1]) {
        return fail(file, i, "circomlibjs derives another public key");
      }
      if (v.valid) {
        const mine = eddsa.signPoseidon(prv, msg);
        if (str(mine.R8[0]) !== v.signature.r8[0] || mine.S.toString() !== v.signature.s) {
          return fail(file, i, "circomlibjs makes another signature");
        }
      }
      passed += 1;
    });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
