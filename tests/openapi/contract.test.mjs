// SPDX-License-Identifier: MIT
// The OpenAPI description against the real server: every answer of txstats-server to a set of
// requests that reaches every operation and most statuses must be declared in server/openapi.json
// (status, content type, required headers) and its body must match the declared schema (ajv,
// JSON Schema 2020-12 as OpenAPI 3.1 uses). Every operation of the description must be reached,
// and every status it declares (but those listed in `unreachable`, with the reason), and GET
// /openapi.json must serve the file itself. Requests that fetch cannot send (bad framing, other
// HTTP versions, 70 header fields) go over a raw socket.
// usage: node contract.test.mjs PATH-TO-txstats-server PATH-TO-openapi.json
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [server, specPath] = process.argv.slice(2);
if (!server || !specPath) {
  console.error("usage: node contract.test.mjs PATH-TO-txstats-server PATH-TO-openapi.json");
  process.exit(2);
}
const spec = JSON.parse(readFileSync(specPath, "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(spec, "openapi.json");

let passed = 0, failed = 0;
function check(ok, what) {
  if (ok) passed++; else { failed++; console.log("FAIL " + what); }
}

const esc = (k) => k.replace(/~/g, "~0").replace(/\//g, "~1");
const at = (ptr) => ptr.slice(2).split("/").reduce((o, k) => o?.[k.replace(/~1/g, "/").replace(/~0/g, "~")], spec);
// Follow $refs from a JSON pointer into the description: [the object, its final pointer].
function deref(ptr) {
  let obj = at(ptr);
  while (obj && obj.$ref) obj = at((ptr = obj.$ref));
  return [obj, ptr];
}
// Validate against the schema at a pointer of the description, so its $refs resolve.
const valid = (ptr, value) => ajv.validate({ $ref: "openapi.json" + ptr }, value);

// One request over a fresh connection; for streams, only the head and the first bytes.
function send(port, method, path, { headers = {}, body, firstChunk = false } = {}) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d) => {
        data += d;
        if (firstChunk) { req.destroy(); resolve({ status: res.statusCode, headers: res.headers, body: data }); }
      });
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Raw bytes over a fresh connection, read until the server closes it (every request here says
// Connection: close) or `wait` ms: the status, the header fields (lower-case names) and the rest.
function raw(port, bytes, { wait = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0), over = false;
    const done = () => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      sock.destroy();
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return reject(new Error("no answer to " + JSON.stringify(bytes.slice(0, 80))));
      const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":"), k = l.slice(0, i).toLowerCase(), v = l.slice(i + 1).trim();
        headers[k] = headers[k] === undefined ? v : headers[k] + ", " + v;
      }
      resolve({ status: Number(lines[0].split(" ")[1]), headers, body: buf.subarray(end + 4).toString("utf8") });
    };
    const timer = setTimeout(done, wait);
    sock.on("data", (d) => (buf = Buffer.concat([buf, d])));
    sock.on("end", () => { sock.end(); done(); });
    sock.on("error", done); // a reset after the answer
    sock.write(bytes);
  });
}
// A request head: the request line, Host, `fields`, Connection: close.
const head = (method, path, fields = [], version = "HTTP/1.1") =>
  `${method} ${path} ${version}\r\nHost: 127.0.0.1\r\n${fields.map((f) => f + "\r\n").join("")}Connection: close\r\n\r\n`;

const version = execFileSync(server, ["--version"], { encoding: "utf8" }).trim().split(" ")[1];
check(spec.info.version === version, `info.version ${spec.info.version} is the server's ${version}`);

const reached = new Set(), answered = new Set();
// Check one answer against the operation the path template names.
function conform(template, method, r, what) {
  const m = method.toLowerCase();
  const op = spec.paths[template]?.[m];
  const label = `${what}: ${method} ${template} -> ${r.status}`;
  let at;
  if (op) at = `#/paths/${esc(template)}/${m}/responses/${r.status}`;
  // A method a path does not take: the shared 405 answer; one no path takes: the shared 501.
  else if (spec.paths[template] && r.status === 405) at = "#/components/responses/MethodNotAllowed";
  else if (r.status === 501) at = "#/components/responses/NotImplemented";
  else return check(false, label + ": no such operation in the description");
  if (op) reached.add(m + " " + template), answered.add(`${m} ${template} ${r.status}`);
  const [decl, ptr] = deref(at);
  if (!decl) return check(false, label + ": status not declared");
  for (const name of Object.keys(decl.headers || {})) {
    const v = r.headers[name.toLowerCase()];
    const [hdecl, hptr] = deref(`${ptr}/headers/${esc(name)}`);
    if (hdecl.required) check(v !== undefined, `${label}: header ${name} required but not sent`);
    if (v !== undefined) check(valid(hptr + "/schema", v), `${label}: header ${name}=${v} does not match`);
  }
  if (m === "head") return check(r.body === "", `${label}: content in an answer to HEAD`);
  const type = (r.headers["content-type"] || "").toLowerCase();
  if (!decl.content) return check(r.body === "" && !type, `${label}: a body or type where none is declared`);
  const media = Object.keys(decl.content).find((t) => t.toLowerCase() === type);
  if (!media) return check(false, `${label}: content type '${type}' not declared`);
  if (!media.startsWith("application/json")) return check(r.body.length > 0, `${label}: empty body`);
  let body;
  try { body = JSON.parse(r.body); } catch { return check(false, `${label}: not JSON: ${r.body.slice(0, 80)}`); }
  const ok = valid(`${ptr}/content/${esc(media)}/schema`, body);
  check(ok, `${label}: ${ajv.errorsText(ajv.errors)}: ${r.body.slice(0, 200)}`);
}

const dir = mkdtempSync(join(tmpdir(), "txstats-openapi-"));
const token = "contract-test-token";
const proc = spawn(server, ["--listen", "127.0.0.1:0", "--port-file", join(dir, "port"),
  "--data-dir", join(dir, "data"), "--log-level", "warn", "--max-body-bytes", "1024",
  "--max-streams", "1", "--window-ms", "60000,1h"], { env: { ...process.env, TXSTATS_ADMIN_TOKEN: token }, stdio: "inherit" });
try {
  for (let i = 0; i < 200 && !(existsSync(join(dir, "port")) && readFileSync(join(dir, "port"), "utf8").trim()); i++)
    await new Promise((r) => setTimeout(r, 50));
  const port = Number(readFileSync(join(dir, "port"), "utf8"));
  const go = async (template, method, path, opts, what = "") =>
    conform(template, method, await send(port, method, path ?? template, opts), what || path || template);
  const now = () => new Date().toISOString();
  const json = { "Content-Type": "application/json" };

  await go("/transactions", "POST", null, { headers: json, body: `{"amount":"12.3343","timestamp":"${now()}"}` });
  await go("/transactions", "POST", null, { headers: json, body: `{"amount":0.1,"timestamp":${Date.now()}}` });
  await go("/transactions", "POST", null, { body: `{"amount":"1","timestamp":"2018-07-17T09:59:51.312Z"}` }, "expired");
  await go("/transactions", "POST", null, { body: "not json" }, "not JSON");
  await go("/transactions", "POST", null, { body: `{"amount":"x","timestamp":"${now()}"}` }, "bad amount");
  await go("/transactions", "POST", null, { body: "{" + " ".repeat(2000) + "}" }, "too large");
  await go("/transactions", "POST", "/transactions?x=1", { body: "{}" }, "query on POST");
  const keyed = { ...json, "Idempotency-Key": `"contract-${Date.now()}"` };
  const keyedBody = `{"amount":"3","timestamp":"${now()}"}`;
  await go("/transactions", "POST", null, { headers: keyed, body: keyedBody }, "first keyed");
  const replay = await send(port, "POST", "/transactions", { headers: keyed, body: keyedBody });
  check(replay.status === 201 && replay.headers["idempotent-replayed"] === "true", "a keyed retry is replayed");
  conform("/transactions", "POST", replay, "keyed retry");
  await go("/transactions", "POST", null, { headers: keyed, body: `{"amount":"4","timestamp":"${now()}"}` }, "key conflict");
  await go("/transactions", "POST", null, { headers: { "Idempotency-Key": "bad key" }, body: keyedBody }, "bad key");
  // Keys (issue 20): the key member, ?key=, the top keys.
  await go("/transactions", "POST", null, { headers: json, body: `{"amount":"7","timestamp":"${now()}","key":"card-1"}` }, "with a key");
  await go("/transactions", "POST", null, { body: `{"amount":"7","timestamp":"${now()}","key":""}` }, "an empty key");
  await go("/transactions", "POST", null, { body: `{"amount":"7","timestamp":"${now()}","key":"caf\u00e9 \ud83d\udcb3"}` }, "a UTF-8 key");
  for (const p of ["/statistics", "/transactions/statistics"]) {
    await go(p, "GET", p + "?key=card-1", {}, "a key");
    await go(p, "GET", p + "?key=caf%C3%A9%20%F0%9F%92%B3", {}, "a UTF-8 key");
    await go(p, "GET", p + "?key=nobody", {}, "an unknown key");
    await go(p, "GET", p + "?key=", {}, "an empty key");
    await go(p, "GET", p + "?key=%FF", {}, "a key that is not UTF-8");
    await go(p, "HEAD", p + "?key=card-1", {}, "HEAD with a key");
    await go(p, "HEAD", p + "?key=", {}, "HEAD with an empty key");
  }
  await go("/statistics/top", "GET");
  await go("/statistics/top", "GET", "/statistics/top?by=count&limit=1");
  await go("/statistics/top", "GET", "/statistics/top?by=avg", {}, "bad by");
  await go("/statistics/top", "GET", "/statistics/top?limit=1001", {}, "bad limit");
  await go("/statistics/top", "HEAD", "/statistics/top?limit=0", {}, "HEAD bad limit");
  await go("/statistics/distribution", "GET");
  await go("/statistics/distribution", "GET", "/statistics/distribution?q=0,0.5,0.999,1");
  await go("/statistics/distribution", "GET", "/statistics/distribution?q=2", {}, "bad q");
  const nd = { "Content-Type": "application/x-ndjson" };
  const line = (amount) => `{"amount":"${amount}","timestamp":"${now()}"}`;
  await go("/transactions/batch", "POST", null, { headers: nd, body: `${line("1")}\n${line("x")}\n{\n${line("2")}` });
  await go("/transactions/batch", "POST", null, { body: `{"amount":"1","timestamp":"${now()}","key":"card-2"}\n{"amount":"1","timestamp":"${now()}","key":7}` }, "lines with keys");
  await go("/transactions/batch", "POST", null, { body: "\n\n" }, "no JSON line");
  await go("/transactions/batch", "POST", "/transactions/batch?x=1", { body: line("1") }, "query on batch");
  await go("/transactions/batch", "GET", null, {}, "GET on batch");
  await go("/transactions", "GET");
  await go("/transactions", "GET", "/transactions?limit=1");
  await go("/transactions", "GET", "/transactions?limit=99999999999999999999999", {}, "overflowing limit");
  await go("/transactions", "GET", "/transactions?limit=abc");
  await go("/transactions", "GET", "/transactions?foo=1");
  for (const p of ["/statistics", "/transactions/statistics"]) {
    await go(p, "GET");
    await go(p, "GET", p + "?account=A", {}, "unknown parameter");
  }
  await go("/statistics/stream", "HEAD"); // before any stream holds the one --max-streams allows
  await go("/statistics/stream", "GET", null, { firstChunk: true });
  const held = send(port, "GET", "/statistics/stream", { firstChunk: true });
  await new Promise((r) => setTimeout(r, 300));
  await go("/statistics/stream", "GET", null, {}, "past --max-streams");
  await go("/statistics/stream", "HEAD", null, {}, "HEAD past --max-streams");
  await held;
  await new Promise((r) => setTimeout(r, 1200)); // at least one point of history
  await go("/statistics/history", "GET");
  // Windows (--window-ms 60000,1h): GET /statistics/windows, ?window= on every statistics route.
  await go("/statistics/windows", "GET");
  await go("/statistics/windows", "GET", "/statistics/windows?window=1h", {}, "a query on the windows");
  for (const [p, more] of [["/statistics", ""], ["/transactions/statistics", "key=card-1&"],
    ["/statistics/top", "by=count&"], ["/statistics/distribution", "q=0.5&"], ["/transactions", "limit=1&"],
    ["/statistics/history", ""]]) {
    await go(p, "GET", `${p}?${more}window=1h`, {}, "window 1h");
    await go(p, "GET", `${p}?${more}window=60000`, {}, "the default window in ms");
    await go(p, "GET", `${p}?${more}window=2h`, {}, "a window the server does not keep");
    await go(p, "HEAD", `${p}?window=5x`, {}, "HEAD with a bad window");
  }
  await go("/statistics/stream", "GET", "/statistics/stream?window=2h", {}, "a window the server does not keep");
  await go("/statistics/stream", "GET", "/statistics/stream?window=1h", { firstChunk: true }, "window 1h");
  await go("/healthz", "GET");
  await go("/metrics", "GET");
  await go("/", "GET");
  await go("/", "GET", "/?x", {}, "query on the dashboard");
  const served = await send(port, "GET", "/openapi.json");
  conform("/openapi.json", "GET", served, "/openapi.json");
  check(isDeepStrictEqual(JSON.parse(served.body), spec), "GET /openapi.json serves openapi.json");
  await go("/transactions", "DELETE", null, {}, "no token");
  await go("/transactions", "DELETE", null, { headers: { Authorization: "Bearer wrong-token" } }, "wrong token");
  await go("/transactions", "DELETE", null, { headers: { Authorization: "Bearer " + token } });

  // HEAD and OPTIONS on every path that takes them; the methods a path does not take.
  for (const [path, item] of Object.entries(spec.paths)) {
    if (item.head) await go(path, "HEAD");
    await go(path, "OPTIONS");
    const opt = await send(port, "OPTIONS", path);
    const allow = ["get", "head", "post", "delete", "options"].filter((m) => item[m]).map((m) => m.toUpperCase());
    check(opt.headers.allow === allow.join(", "), `OPTIONS ${path}: Allow ${opt.headers.allow} is ${allow.join(", ")}`);
    await go(path, "PUT", null, {}, "wrong method");
    await go(path, "PATCH", null, {}, "wrong method");
    if (!item.head) await go(path, "HEAD", null, {}, "HEAD where no GET");
    await go(path, "TRACE", null, {}, "a method not implemented");
  }
  await go("/statistics", "TRACE", null, {}, "TRACE");
  conform("/statistics", "get", await raw(port, head("get", "/statistics")), "lower-case get");
  for (const p of ["/statistics/history", "/transactions/statistics", "/statistics/stream", "/healthz",
    "/metrics", "/openapi.json", "/"])
    await go(p, "HEAD", p + "?x=1", {}, "HEAD with a query");
  await go("/statistics/distribution", "HEAD", "/statistics/distribution?q=2", {}, "HEAD bad q");
  await go("/transactions", "HEAD", "/transactions?limit=abc", {}, "HEAD bad limit");

  // Refused before routing, on every operation: each over a raw socket.
  const fields70 = Array.from({ length: 70 }, (_, i) => `X-F${i}: a`);
  for (const [path, item] of Object.entries(spec.paths))
    for (const m of Object.keys(item)) {
      const M = m.toUpperCase(), rawgo = async (bytes, what) => conform(path, M, await raw(port, bytes), what);
      await rawgo(head(M, path, ["Host: other"]), "two Host fields");
      await rawgo(head(M, path, ["Content-Encoding: gzip", "Content-Length: 1"]) + "x", "Content-Encoding: gzip");
      await rawgo(head(M, path, ["Expect: foo"]), "Expect: foo");
      await rawgo(head(M, path, fields70), "70 header fields");
      await rawgo(head(M, path, ["Transfer-Encoding: gzip, chunked"]), "Transfer-Encoding: gzip, chunked");
      await rawgo(head(M, path, [], "HTTP/2.0"), "HTTP/2.0");
    }
  conform("/statistics", "GET", await raw(port, head("GET", "/statistics", ["X-Big: " + "a".repeat(17000)])),
    "a head over 16 KiB");
  for (const p of ["/transactions", "/transactions/batch"])
    conform(p, "POST", await raw(port, head("POST", p, ["Content-Length: 999999999999"])), "declared huge");
  conform("/transactions/batch", "POST", await raw(port, head("POST", "/transactions/batch",
    ["Idempotency-Key: k", "Content-Length: 2"]) + "{}"), "Idempotency-Key on a batch");

  // 408: a body that stops; a second server with a short --request-timeout-ms.
  const dir408 = join(dir, "t408");
  const proc408 = spawn(server, ["--listen", "127.0.0.1:0", "--port-file", join(dir408, "port"),
    "--data-dir", join(dir408, "data"), "--log-level", "error", "--request-timeout-ms", "500"],
  { env: { ...process.env, TXSTATS_ADMIN_TOKEN: token }, stdio: "inherit" });
  try {
    for (let i = 0; i < 200 && !(existsSync(join(dir408, "port")) && readFileSync(join(dir408, "port"), "utf8").trim()); i++)
      await new Promise((r) => setTimeout(r, 50));
    const port408 = Number(readFileSync(join(dir408, "port"), "utf8"));
    for (const p of ["/transactions", "/transactions/batch"])
      conform(p, "POST", await raw(port408, head("POST", p, ["Content-Length: 40"]) + '{"amount"'), "a body that stops");
  } finally {
    proc408.kill("SIGTERM");
    await new Promise((r) => proc408.on("exit", r));
  }

  // Anything else: 404 with the error shape the description names.
  const nf = await send(port, "GET", "/nowhere");
  check(nf.status === 404 && valid("#/components/schemas/Error", JSON.parse(nf.body)),
    "404 answers with the Error schema");
  for (const [path, item] of Object.entries(spec.paths))
    for (const m of Object.keys(item))
      check(reached.has(m + " " + path), `the tests never reached ${m.toUpperCase()} ${path}`);
  // Every declared status, but those no cheap request produces.
  const unreachable = {
    "503": "a journal, disk or Kafka that refuses, or out of memory (tests/test_ops.c, test_oom.c); "
      + "only --max-streams is produced here",
  };
  for (const [path, item] of Object.entries(spec.paths))
    for (const [m, op] of Object.entries(item))
      for (const st of Object.keys(op.responses))
        if (!answered.has(`${m} ${path} ${st}`) && !unreachable[st] && st !== "405")
          check(false, `the tests never got ${st} from ${m.toUpperCase()} ${path}`);
} catch (e) {
  failed++;
  console.log("FAIL " + e.stack);
} finally {
  proc.kill("SIGTERM");
  await new Promise((r) => proc.on("exit", r));
  rmSync(dir, { recursive: true, force: true });
}
console.log(`contract: ${passed} checks passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
