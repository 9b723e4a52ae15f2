// Drives the coordinator's status page in headless Chromium for
// coordinator/tests/observability.rs. Usage: node status_page.cjs URL SCREENSHOT
//
// It prints one JSON line per step on stdout, which the Rust test reads:
//   {"event":"ready", ...numbers}   the page is live and has every element; the test now
//                                   commits batches
//   {"event":"done", ...numbers}    the numbers changed as batches committed; screenshot written
//   {"event":"error","message":…}   something was missing or never changed (exit status 1)
"use strict";

const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const [url, screenshot] = process.argv.slice(2);
const CHANGE_TIMEOUT_MS = 120000;

const ELEMENTS = [
  "connection", "updated", "contract", "throughput", "latency-p50", "latency-p90",
  "latency-p99", "queue-depth", "jobs-queued", "open-batch", "workers-count", "accepted",
  "rejected", "committed-batches", "committed-txs", "sparkline", "stage-bar", "stage-legend",
  "workers", "batches", "invalid-proofs",
];

function say(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields)) + "\n");
}

async function numbers(page) {
  return page.evaluate(() => {
    const t = (id) => document.getElementById(id).textContent.trim();
    const rows = [...document.querySelectorAll("#batches tr[data-batch]")].map((tr) => ({
      batch: Number(tr.dataset.batch),
      status: tr.dataset.status,
      l1_tx: tr.querySelector(".l1-tx").textContent,
    }));
    const workers = [...document.querySelectorAll("#workers tr[data-worker]")].map((tr) => tr.dataset.worker);
    return {
      connection: t("connection"),
      throughput: t("throughput"),
      latency_p50: t("latency-p50"),
      latency_p99: t("latency-p99"),
      queue_depth: t("queue-depth"),
      accepted: t("accepted"),
      committed_batches: t("committed-batches"),
      committed_txs: t("committed-txs"),
      workers_count: t("workers-count"),
      stages: t("stage-legend"),
      polls: Number(document.body.dataset.polls || 0),
      batches: rows,
      workers,
    };
  });
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.PULSE_CHROMIUM,
    args: (process.env.PULSE_CHROMIUM_ARGS || "").split(" ").filter(Boolean),
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") problems.push("console error: " + m.text()); });
  try {
    await page.goto(url, { waitUntil: "load", timeout: 30000 });
    if ((await page.title()) !== "Pulse coordinator") throw new Error("unexpected title: " + (await page.title()));
    await page.waitForSelector("#connection.live", { timeout: 30000 });
    for (const id of ELEMENTS) {
      if ((await page.locator("#" + id).count()) !== 1) throw new Error("missing element #" + id);
    }
    const before = await numbers(page);
    say("ready", before);

    // The test is committing batches now: wait until the page shows it.
    await page.waitForFunction(
      (committedBefore) => {
        const n = (id) => Number(document.getElementById(id).textContent);
        const committedRow = [...document.querySelectorAll("#batches tr[data-status='committed']")]
          .some((tr) => /^0x[0-9a-f]{64}$/.test(tr.querySelector(".l1-tx").textContent));
        return n("committed-batches") > committedBefore
          && n("committed-txs") > 0
          && n("throughput") > 0
          && Number.isFinite(n("latency-p50"))
          && document.querySelectorAll("#workers tr[data-worker]").length > 0
          && committedRow;
      },
      Number(before.committed_batches),
      { timeout: CHANGE_TIMEOUT_MS, polling: 250 },
    );
    const after = await numbers(page);
    await page.screenshot({ path: screenshot, fullPage: true });
    if (problems.length) throw new Error(problems.join("; "));
    say("done", after);
    await browser.close();
  } catch (e) {
    let state = null;
    try { state = await numbers(page); } catch (_) { /* the page may be gone */ }
    try { await page.screenshot({ path: screenshot, fullPage: true }); } catch (_) { /* best effort */ }
    say("error", { message: String(e && e.message || e), problems, state });
    await browser.close();
    process.exitCode = 1;
  }
})();
