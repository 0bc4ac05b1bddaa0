// SPDX-License-Identifier: MIT
// The dashboard in a real browser: Debian's Chromium, driven by playwright-core.
// Starts txstats-server on a free loopback port, loads the page, posts a transaction through the
// form, and sees the numbers change within 2 s; also checks an error message and the clear button
// with an admin token, and the window selector (two windows: 1m, 1h). Screenshots go to OUT_DIR
// (desktop and phone sizes).
// usage: node dashboard.test.mjs PATH-TO-txstats-server OUT_DIR
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [server, outDir] = process.argv.slice(2);
if (!server || !outDir) {
  console.error("usage: node dashboard.test.mjs PATH-TO-txstats-server OUT_DIR");
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "txstats-browser-"));
const portFile = join(dir, "port");
const token = "browser-test-token";
const proc = spawn(server, ["--listen", "127.0.0.1:0", "--port-file", portFile,
  "--data-dir", join(dir, "data"), "--log-level", "warn", "--window-ms", "60000,1h"],
  { env: { ...process.env, TXSTATS_ADMIN_TOKEN: token }, stdio: ["ignore", "inherit", "inherit"] });

let passed = 0, failed = 0;
function check(ok, what) {
  if (ok) { passed++; console.log("ok   " + what); } else { failed++; console.log("FAIL " + what); }
}

async function waitFor(fn, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let browser;
try {
  await waitFor(() => existsSync(portFile) && readFileSync(portFile, "utf8").trim(), 10000, "the server");
  const base = "http://127.0.0.1:" + readFileSync(portFile, "utf8").trim();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage"],
  });
  // History: transactions posted before the page opens, and a few seconds of samples.
  for (const amount of ["5.55", "-5.55"]) { // their sum is 0: the sums checked below stay round
    const r = await fetch(base + "/transactions", { method: "POST",
      body: JSON.stringify({ amount, timestamp: new Date().toISOString() }) });
    check(r.status === 201, `POST ${amount} before the page opens: ${r.status}`);
  }
  await new Promise((r) => setTimeout(r, 3500));
  const page = await browser.newPage({ viewport: { width: 1200, height: 820 } });
  page.on("dialog", (d) => d.accept(token)); // the clear button asks for the admin token
  const opened = Date.now();
  await page.goto(base + "/");
  check((await page.title()).includes("libtxstats"), "the page loads");
  const chart = () => page.evaluate(() => ({ ...document.getElementById("chart").dataset }));
  const seeded = await waitFor(async () => { const d = await chart(); return Number(d.points) >= 3 && d; },
    1000, "the history on the chart");
  check(Date.now() - opened < 1500, `the chart shows ${seeded.points} points of history at once`);
  const labels = seeded.labels.split(",");
  check(labels.length === 6 && labels[5] === "now" && labels.slice(0, 5).every((l) => /^\d\d:\d\d:\d\d$/.test(l)),
    "the time axis is labelled: " + seeded.labels);
  const amounts = () => page.evaluate(() => Array.from(document.querySelectorAll("#recent td.amount"), (td) => td.textContent));
  const recent = await waitFor(async () => { const a = await amounts(); return a.length && a; }, 1000, "the recent transactions");
  check(recent.join() === "-5.55,5.55", "the most recent transactions, newest first: " + recent.join());
  await waitFor(async () => (await page.textContent("#state")) === "live", 5000, "the stream");
  check(true, "the statistics stream connects");
  const before = Number(await page.textContent("#count"));

  // Post through the form; the numbers change within 2 s.
  await page.fill("#amount", "12.34");
  const t0 = Date.now();
  await page.click("#submit");
  await waitFor(async () => (await page.textContent("#post-status")).startsWith("201"), 2000, "201");
  await waitFor(async () => Number(await page.textContent("#count")) === before + 1, 2000, "count");
  check(Date.now() - t0 <= 2000, `the count went ${before} -> ${before + 1} within 2 s (${Date.now() - t0} ms)`);
  await page.fill("#amount", "7.66");
  await page.click("#submit");
  await waitFor(async () => (await page.textContent("#sum")) === "20.00", 2000, "sum 20.00");
  check((await page.textContent("#avg")) === "5.00", "sum 20.00 and avg 5.00 (4 transactions) shown");

  // A bad amount shows the server's reason.
  await page.fill("#amount", "NaN");
  await page.click("#submit");
  const err = await waitFor(async () => {
    const s = await page.textContent("#post-status");
    return s.startsWith("422") ? s : "";
  }, 2000, "the 422");
  check(err.includes("not a decimal number"), "an error message is shown: " + err);

  await page.fill("#amount", "3.5");
  await page.click("#submit");
  await waitFor(async () => (await page.textContent("#count")) === String(before + 3), 2000, "third");
  await page.waitForTimeout(2500); // a few points on the chart
  // The distribution panel: quantiles and a histogram of the window's four amounts (5.55, -5.55,
  // 12.34, 7.66): the median (nearest rank, the 2nd of 4) is 5.55 within the 0.1 % bound.
  await waitFor(async () => (await page.textContent("#q99")) === "12.34", 3000, "p99 12.34");
  const q50 = Number(await page.textContent("#q50"));
  check(Math.abs(q50 - 5.55) <= 5.55 * 0.001 + 0.005, `median ${q50} (5.55) and p99 12.34 shown`);
  const hist = await page.getAttribute("#hist", "data-bars");
  check(Number(hist) >= 2, `the histogram of the amounts is drawn (${hist} bars)`);
  await page.screenshot({ path: join(outDir, "dashboard.png"), fullPage: true });
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  await phone.goto(base + "/");
  await waitFor(async () => (await phone.textContent("#count")) === String(before + 3), 3000, "phone");
  await phone.screenshot({ path: join(outDir, "dashboard-phone.png"), fullPage: true });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  check(!overflow, "no horizontal scrolling on a phone");

  // Keys: posted through the form (the key field), shown in the top keys by sum and by count.
  await page.fill("#key", "card <b>1</b>"); // text, never HTML
  await page.fill("#amount", "0.00");
  await page.click("#submit");
  await waitFor(async () => (await page.textContent("#post-status")).startsWith("201"), 2000, "201 keyed");
  for (const [key, amount] of [["card-2", "2.50"], ["card-2", "-2.50"], ["card <b>1</b>", "0"]]) {
    const r = await fetch(base + "/transactions", { method: "POST",
      body: JSON.stringify({ amount, timestamp: new Date().toISOString(), key }) });
    check(r.status === 201, `POST with key ${key}: ${r.status}`);
  }
  const tops = async (id) => page.getAttribute("#" + id, "data-keys");
  await waitFor(async () => (await tops("top-count")) === "card <b>1</b>\ncard-2", 3000, "the top keys by count");
  check((await tops("top-sum")) === "card <b>1</b>\ncard-2", "the top keys by sum and by count (ties in byte order)");
  check(await page.evaluate(() => !document.querySelector("#top b")), "a key is shown as text");
  await page.fill("#key", "");

  // Windows: the selector lists --window-ms; a transaction ten minutes old counts in 1h only,
  // and every panel follows the selection.
  const options = await page.evaluate(() => Array.from(document.querySelectorAll("#window option"), (o) => o.value).join());
  check(options === "1m,1h" && (await page.inputValue("#window")) === "1m",
    "the window selector lists the windows, the default selected: " + options);
  const old = await fetch(base + "/transactions", { method: "POST",
    body: JSON.stringify({ amount: "100", timestamp: Date.now() - 600000, key: "old-card" }) });
  check(old.status === 201, "POST ten minutes old: " + old.status);
  const in1m = (await (await fetch(base + "/statistics")).json()).count;
  await waitFor(async () => Number(await page.textContent("#count")) === in1m, 3000, "the 1m count");
  await page.selectOption("#window", "1h");
  await waitFor(async () => Number(await page.textContent("#count")) === in1m + 1, 3000, "the 1h count");
  await waitFor(async () => (await page.textContent("#q99")) === "100.00", 3000, "the 1h p99");
  await waitFor(async () => (await tops("top-sum")).startsWith("old-card\n"), 3000, "the 1h top keys");
  check(true, "1h selected: count, quantiles and top keys of the 1h window");
  await page.selectOption("#window", "1m");
  await waitFor(async () => Number(await page.textContent("#count")) === in1m, 3000, "the 1m count");
  await waitFor(async () => !(await tops("top-sum")).includes("old-card"), 3000, "the 1m top keys");
  check(true, "1m selected again: its own count and top keys");

  // Clear: 401 first, the page asks for the token, then 204.
  await page.click("#clear");
  await waitFor(async () => (await page.textContent("#clear-status")) === "cleared", 3000, "clear");
  await waitFor(async () => (await page.textContent("#count")) === "0", 3000, "count 0");
  check(true, "clear with the admin token empties the window");
} catch (e) {
  failed++;
  console.log("FAIL " + e.message);
} finally {
  if (browser) await browser.close();
  const exited = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
  proc.kill("SIGTERM");
  const code = await exited; // the shutdown checkpoint finishes before the directory goes
  check(code === 0, "the server stopped cleanly (exit " + code + ")");
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
