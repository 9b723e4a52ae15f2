// Check vectors made by Pulse (`pulse crypto make-vectors`) with circomlibjs, the peer
// implementation: Poseidon hashes must match, Pulse's EdDSA-Poseidon public keys and
// signatures must be the ones circomlibjs derives and makes, and circomlibjs must accept
// exactly the signatures marked valid. Ends with `N passed, M failed`.
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
