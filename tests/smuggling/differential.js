// SPDX-License-Identifier: MIT
// Differential test of request framing (issue 26): seeded generated request streams with mutated
// framing (header name case, OWS, duplicates, lists, folds, bare CR/LF, field counts, chunk sizes)
// are parsed by Node's llhttp (strict, as Node's http server uses it) and sent to txstats-server.
// Each generated request is a POST /transactions of a distinct amount. A disagreement is a request
// the server ran that llhttp did not see: an answer other than a final refusal at a position
// llhttp did not reach, or a stored amount whose body llhttp did not parse at that position.
// usage: node differential.js SERVER_BIN [STREAMS=10000] [SEED=26] [CONCURRENCY=8]
'use strict';
const { HTTPParser } = process.binding('http_parser');
const { methods } = require('_http_common');
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const [bin, streamsArg, seedArg, concArg] = process.argv.slice(2);
const STREAMS = Number(streamsArg || 10000);
const SEED = Number(seedArg || 26);
const CONC = Number(concArg || 8);

// mulberry32: a small seeded generator, so that a failing stream can be replayed.
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { f: next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}

// llhttp: the requests (method, url, body) it completes before an error or the end.
function llhttp(buf) {
  const p = new HTTPParser();
  const reqs = [];
  let cur = null;
  p[HTTPParser.kOnHeaders] = () => {};
  p[HTTPParser.kOnHeadersComplete] = (vmaj, vmin, headers, method, url) => {
    cur = { method: methods[method], url, body: [] };
  };
  p[HTTPParser.kOnBody] = (b) => cur.body.push(Buffer.from(b));
  p[HTTPParser.kOnMessageComplete] = () => {
    cur.body = Buffer.concat(cur.body).toString('latin1');
    reqs.push(cur);
    cur = null;
  };
  p[HTTPParser.kOnExecute] = () => {};
  p.initialize(HTTPParser.REQUEST, {}, 0, 0);
  const r = p.execute(buf);
  return { reqs, err: r instanceof Error ? r.code : null };
}

const randCase = (r, s) => [...s].map((ch) => (r.f() < 0.5 ? ch.toUpperCase() : ch.toLowerCase())).join('');

// One request: a head (list of field lines) and a body framing, then the mutations.
function genRequest(r, amount, ts) {
  const body = `{"amount":"${amount}","timestamp":"${ts}"}`;
  const chunked = r.f() < 0.4;
  const fields = [['Host', 't']];
  if (chunked) fields.push(['Transfer-Encoding', 'chunked']);
  else fields.push(['Content-Length', String(body.length)]);
  let payload = body;
  if (chunked) payload = chunk(r, body);
  mutateFields(r, fields, body);
  if (r.f() < 0.1) fields.push(['Connection', r.pick(['close', 'keep-alive'])]);
  const lines = fields.map(([n, v]) => `${n}: ${v}`);
  if (lines.length && r.f() < 0.15) {
    const i = r.int(lines.length);
    const [n, v] = fields[i];
    lines[i] = `${n}${r.pick([':', ' :', '\t:', ':'])}${r.pick(['', '  ', '\t', ' '])}${v}${r.pick(['', ' ', '\t'])}`;
  }
  let head = `POST /transactions HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
  head = mutateLines(r, head);
  return { bytes: head + payload, body, amount };
}

// The chunked body: random splits, sizes in either case, sometimes wrong or decorated.
function chunk(r, body) {
  let out = '';
  let i = 0;
  const bad = r.f() < 0.3 ? r.int(4) : -1; // which chunk, if any, is damaged
  for (let k = 0; i < body.length; k++) {
    const n = 1 + r.int(body.length - i);
    let size = n.toString(16);
    let eol = '\r\n';
    if (k === bad) {
      const m = r.int(9);
      if (m === 0) size = (n + 1).toString(16);
      else if (m === 1) size = Math.max(0, n - 1).toString(16);
      else if (m === 2) size = size.toUpperCase().padStart(4, '0');
      else if (m === 3) size += ';x=1';
      else if (m === 4) size = '0x' + size;
      else if (m === 5) size += ' ';
      else if (m === 6) eol = '\n';
      else if (m === 7) eol = '\r';
      else size = size.toUpperCase();
    }
    out += `${size}${eol}${body.slice(i, i + n)}\r\n`;
    i += n;
  }
  return out + (r.f() < 0.8 ? '0\r\n\r\n' : r.pick(['0\n\n', '0\r\nX: y\r\n\r\n', '00\r\n\r\n', '0\r\n\n']));
}

// Field mutations: case, duplicates, lists, conflicting framing, Host, field counts, folds.
function mutateFields(r, fields, body) {
  const len = body.length;
  const ops = [
    () => fields.forEach((f) => (f[0] = randCase(r, f[0]))),
    () => fields.push(['Content-Length', r.pick([String(len), '0', String(len + 5), `${len}, ${len}`])]),
    () => fields.push(['Transfer-Encoding', r.pick(['chunked', 'identity', 'gzip', 'chunked, chunked'])]),
    () => fields.splice(1, 0, ['Transfer-Encoding', r.pick(['chunked', 'identity', 'gzip, chunked', 'identity, chunked', 'chunked,identity', ''])]),
    () => fields.forEach((f) => { if (/^content-length$/i.test(f[0])) f[1] = r.pick([`+${f[1]}`, `${f[1]}abc`, `0${f[1]}`, `${f[1]} 1`, '-5', '', `0x${Number(f[1]).toString(16)}`]); }),
    () => fields.forEach((f) => { if (/^transfer-encoding$/i.test(f[0])) f[1] = r.pick(['CHUNKED', ' chunked', 'chunked ', 'xchunked', 'chunked;q=1', 'Chunked']); }),
    () => (r.f() < 0.5 ? fields.shift() : fields.push(['Host', 'u'])),
    () => { const k = r.pick([10, 61, 62, 63, 64, 100]); for (let i = 0; i < k; i++) fields.splice(r.int(fields.length + 1), 0, [`X-F${i}`, String(i)]); },
    () => fields.splice(r.int(fields.length + 1), 0, ['X-Fold', `a\r\n${r.pick([' ', '\t', '  '])}b`]),
    () => { const f = r.pick(fields); f[1] = `${f[1]}\r\n ${r.pick(['x', 'Content-Length: 0', 'Transfer-Encoding: chunked'])}`; },
    () => fields.splice(r.int(fields.length + 1), 0, [r.pick(['X(a)', '', 'X a', 'X\u0080']), 'v']),
  ];
  const n = r.f() < 0.4 ? 0 : 1 + r.int(2);
  for (let i = 0; i < n; i++) r.pick(ops)();
}

// Line-level mutations of the head: bare LF, bare CR, doubled spaces in the request line.
function mutateLines(r, head) {
  const m = r.f();
  if (m < 0.03) return head.replace(/\r\n/g, (x) => (r.f() < 0.3 ? '\n' : x));
  if (m < 0.07) return head.replace(/\r\n/, r.pick(['\r', '\n', '\r\r\n']));
  if (m < 0.08) return head.replace(' /', '  /');
  if (m < 0.09) return r.pick(['\r\n', '\n', '\r\n\r\n']) + head;
  return head;
}

// A stream: 1 to 3 requests, each a distinct amount in cents.
function genStream(r, index, ts) {
  const n = 1 + r.int(3);
  const reqs = [];
  for (let j = 0; j < n; j++) reqs.push(genRequest(r, ((index * 4 + j + 1) / 100).toFixed(2), ts));
  return { reqs, bytes: Buffer.from(reqs.map((q) => q.bytes).join(''), 'latin1') };
}

// The server's answers on the wire: statuses in order (every answer has Content-Length or is
// chunked; the server closes after its last).
function statuses(buf) {
  const out = [];
  let s = buf.toString('latin1');
  for (;;) {
    const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n/.exec(s);
    if (!m) return out;
    const end = s.indexOf('\r\n\r\n');
    if (end < 0) return out;
    const head = s.slice(0, end);
    out.push(Number(m[1]));
    const cl = /\r\nContent-Length: (\d+)/i.exec(head);
    s = s.slice(end + 4 + (cl && m[1] !== '100' ? Number(cl[1]) : 0));
  }
}

function exchange(port, bytes) {
  return new Promise((resolve) => {
    const chunks = [];
    const sock = net.connect(port, '127.0.0.1', () => sock.end(bytes));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {});
    sock.on('close', () => resolve(Buffer.concat(chunks)));
    sock.setTimeout(5000, () => sock.destroy());
  });
}

function get(port, p) {
  return new Promise((resolve, reject) => {
    require('http').get({ host: '127.0.0.1', port, path: p }, (res) => {
      const b = [];
      res.on('data', (d) => b.push(d));
      res.on('end', () => resolve(Buffer.concat(b).toString()));
    }).on('error', reject);
  });
}

async function startServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txstats-diff-'));
  const srv = spawn(bin, ['--listen', '127.0.0.1:0', '--port-file', `${dir}/port`, '--data-dir',
    `${dir}/data`, '--window-ms', '3600000', '--request-timeout-ms', '2000', '--log-level', 'error',
    '--threads', '32'], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 200 && !fs.existsSync(`${dir}/port`); i++) await new Promise((r) => setTimeout(r, 25));
  process.on('exit', () => srv.kill('SIGKILL'));
  return { srv, dir, port: Number(fs.readFileSync(`${dir}/port`, 'utf8')) };
}

const REFUSALS = new Set([400, 408, 411, 413, 417, 431, 501, 505]);

// civetweb 1.15 ends a chunked body at the zero-size chunk and only then reads the CRLF that ends
// the trailer section; when that is missing ("0\r\n\n") the body still counts as read, the
// request runs, and civetweb then closes the connection (its keep-alive needs the CRLF), so no
// later request runs. The handler cannot see the difference (mg_read returns 0 for both). llhttp
// refuses the request. Counted apart ("lastChunkNoCrlf"), not a smuggled request.
function lastChunkNoCrlf(st, i, answers) {
  const q = st.reqs[i];
  return q && i === answers.length - 1 && /\r\n0\r\n(?!\r\n)/.test(q.bytes) && !/\r\n0\r\n\r\n$/.test(q.bytes);
}

// Per stream: the answers that cannot be refusals must be at positions llhttp parsed, with the
// same body.
function checkStream(st, ll, answers, bad, stats) {
  const last = answers.length - 1;
  for (let i = 0; i < answers.length; i++) {
    const refusal = i === last && REFUSALS.has(answers[i]);
    const unseen = !refusal && i >= ll.reqs.length;
    const otherBody = answers[i] === 201 && (i >= ll.reqs.length || ll.reqs[i].body !== st.reqs[i].body);
    if ((unseen || otherBody) && lastChunkNoCrlf(st, i, answers)) {
      stats.lastChunkNoCrlf++;
      st.reqs[i].known = true;
    } else if (unseen || otherBody) {
      bad.push({ kind: unseen ? 'answered a request llhttp did not see' : 'stored a body llhttp did not parse there', i, answers, ll: ll.err, bytes: st.bytes.toString('latin1') });
    }
  }
}

async function main() {
  const r = rng(SEED);
  const ts = new Date(Date.now() - 1000).toISOString();
  const { srv, dir, port } = await startServer();
  const bad = [];
  const seen = new Map(); // amount -> body llhttp parsed for it
  const known = new Set(); // amounts of lastChunkNoCrlf requests
  const stats = { lastChunkNoCrlf: 0, streams: 0, requests: 0, llhttpParsed: 0, llhttpErrors: 0, answered: 0, stored: 0, refused: 0 };
  let next = 0;
  const t0 = Date.now();
  async function worker() {
    while (next < STREAMS) {
      const index = next++;
      const st = genStream(r, index, ts);
      const ll = llhttp(st.bytes);
      ll.reqs.forEach((q) => { const m = /"amount":"([\d.]+)"/.exec(q.body); if (m) seen.set(m[1], q.body); });
      const t1 = Date.now();
      const answers = statuses(await exchange(port, st.bytes));
      if (process.env.DIFF_DEBUG) console.log(Date.now() - t1, ll.err, ll.reqs.length, answers.join(','), JSON.stringify(st.bytes.toString('latin1').slice(0, 300)));
      checkStream(st, ll, answers, bad, stats);
      st.reqs.forEach((q) => { if (q.known) known.add(q.amount); });
      stats.streams++;
      stats.requests += st.reqs.length;
      stats.llhttpParsed += ll.reqs.length;
      stats.llhttpErrors += ll.err ? 1 : 0;
      stats.answered += answers.length;
      stats.refused += answers.filter((s) => REFUSALS.has(s)).length;
    }
  }
  await Promise.all(Array.from({ length: CONC }, worker));
  const text = await get(port, '/transactions');
  let listing;
  try {
    listing = JSON.parse(text);
  } catch (e) {
    srv.kill('SIGKILL');
    throw new Error(`listing: ${text.slice(0, 200)}`);
  }
  for (const t of listing.transactions) {
    stats.stored++;
    const a = Number(t.amount).toFixed(2);
    if (!seen.has(a) && !known.has(a)) bad.push({ kind: 'stored an amount llhttp never parsed', amount: a });
  }
  srv.kill('SIGTERM');
  await new Promise((res) => srv.on('exit', res));
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify({ seed: SEED, ...stats, seconds: (Date.now() - t0) / 1000, disagreements: bad.length }));
  for (const b of bad.slice(0, Number(process.env.DIFF_SHOW || 10))) console.log(JSON.stringify(b));
  process.exit(bad.length ? 1 : 0);
}

process.removeAllListeners('warning');
main().catch((e) => { console.error(e); process.exit(2); });
