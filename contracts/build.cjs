// Reproducible build of Pulse's L1 contracts: compiles contracts/src/*.sol with the solc-js
// pinned in contracts/package.json and writes one artifact per contract to contracts/out/.
// Any compiler error or warning fails the build. With --check, compiles into memory and
// fails if contracts/out/ is not exactly what the sources give.
// With --compile FILE, compiles one standalone source (e.g. a verifier generated from a
// verifying key by `pulse`) with the same settings and prints its artifacts as JSON.
// Usage: node contracts/build.cjs [--check | --compile FILE]
// solc-js is loaded from $PULSE_JS_DIR/node_modules (default ~/.cache/pulse/js), where
// scripts/contracts installs it.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");

const HERE = __dirname;
const SRC = path.join(HERE, "src");
const OUT = path.join(HERE, "out");
const REPO = path.dirname(HERE);

// Everything that decides the bytecode is fixed here. bytecodeHash "none" keeps the source
// text (comments, file names) out of the bytecode; only the compiler version remains in its
// CBOR trailer.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  metadata: { bytecodeHash: "none" },
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
  },
};

function fail(message, code = 1) {
  console.error(`contracts/build.cjs: ${message}`);
  process.exit(code);
}

function rel(p) {
  return path.relative(REPO, p);
}

function loadSolc() {
  const pinned = require(path.join(HERE, "package.json")).dependencies.solc;
  const jsDir =
    process.env.PULSE_JS_DIR ||
    path.join(process.env.PULSE_CACHE_DIR || path.join(os.homedir(), ".cache", "pulse"), "js");
  let solc;
  try {
    solc = require(path.join(jsDir, "node_modules", "solc"));
  } catch (e) {
    fail(
      `solc-js is not installed in ${jsDir}: run scripts/contracts build, or ` +
        `npm install --prefix "${jsDir}" solc@${pinned}`,
      2,
    );
  }
  const version = solc.version();
  if (!version.startsWith(`${pinned}+`)) {
    fail(
      `solc-js in ${jsDir} is ${version}, contracts/package.json pins ${pinned}: ` +
        `npm install --prefix "${jsDir}" solc@${pinned}`,
      2,
    );
  }
  return solc;
}

// Compiles every source and returns the artifacts as { fileName: text }.
function build(solc) {
  const files = fs
    .readdirSync(SRC)
    .filter((f) => f.endsWith(".sol"))
    .sort();
  if (files.length === 0) fail(`no .sol files in ${rel(SRC)}`);
  return compile(
    solc,
    files.map((f) => path.join(SRC, f)),
  );
}

// Compiles the given source files and returns the artifacts as { fileName: text }.
function compile(solc, paths) {
  const sources = {};
  const hashes = {};
  for (const p of paths) {
    let bytes;
    try {
      bytes = fs.readFileSync(p);
    } catch (e) {
      fail(`cannot read ${p}: ${e.message}`, 2);
    }
    const key = `src/${path.basename(p)}`;
    sources[key] = { content: bytes.toString("utf8") };
    hashes[key] = crypto.createHash("sha256").update(bytes).digest("hex");
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));

  const problems = (output.errors || []).filter((e) => e.severity !== "info");
  if (problems.length > 0) {
    for (const e of problems) console.error(e.formattedMessage || e.message);
    const errors = problems.filter((e) => e.severity === "error").length;
    fail(`${errors} error(s) and ${problems.length - errors} warning(s); warnings fail the build too`);
  }

  const compiler = `solc-js ${solc.version().replace(/\.Emscripten\.clang$/, "")}`;
  const artifacts = {};
  for (const key of Object.keys(output.contracts || {}).sort()) {
    for (const name of Object.keys(output.contracts[key]).sort()) {
      const c = output.contracts[key][name];
      const fileName = `${name}.json`;
      if (artifacts[fileName] !== undefined) fail(`two contracts are named ${name}`);
      const artifact = {
        contractName: name,
        compiler,
        sourceSha256: hashes[key],
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      };
      artifacts[fileName] = `${JSON.stringify(artifact, null, 2)}\n`;
    }
  }
  return artifacts;
}

function existingArtifacts() {
  if (!fs.existsSync(OUT)) return [];
  return fs.readdirSync(OUT).filter((f) => f.endsWith(".json"));
}

function check(artifacts) {
  const stale = [];
  for (const [f, text] of Object.entries(artifacts)) {
    const p = path.join(OUT, f);
    if (!fs.existsSync(p)) stale.push(`${rel(p)} is missing`);
    else if (fs.readFileSync(p, "utf8") !== text) stale.push(`${rel(p)} is stale`);
  }
  for (const f of existingArtifacts()) {
    if (!(f in artifacts)) stale.push(`${rel(path.join(OUT, f))} has no source contract`);
  }
  if (stale.length > 0) {
    for (const s of stale) console.error(`${s}: run scripts/contracts build`);
    process.exit(1);
  }
  console.log(`${rel(OUT)}: ${Object.keys(artifacts).length} artifact(s) up to date`);
}

function write(artifacts) {
  fs.mkdirSync(OUT, { recursive: true });
  for (const f of existingArtifacts()) {
    if (!(f in artifacts)) fs.unlinkSync(path.join(OUT, f));
  }
  for (const [f, text] of Object.entries(artifacts)) {
    fs.writeFileSync(path.join(OUT, f), text);
    const code = JSON.parse(text).deployedBytecode;
    console.log(`${rel(path.join(OUT, f))}: ${(code.length - 2) / 2} bytes deployed`);
  }
}

function main() {
  const args = process.argv.slice(2);
  if (args.length === 2 && args[0] === "--compile") {
    const artifacts = compile(loadSolc(), [path.resolve(args[1])]);
    const parsed = Object.values(artifacts).map((t) => JSON.parse(t));
    process.stdout.write(`${JSON.stringify(parsed)}\n`);
    return;
  }
  if (args.length > 1 || (args.length === 1 && args[0] !== "--check")) {
    fail("usage: node contracts/build.cjs [--check | --compile FILE]", 2);
  }
  const artifacts = build(loadSolc());
  if (args[0] === "--check") check(artifacts);
  else write(artifacts);
}

main();
