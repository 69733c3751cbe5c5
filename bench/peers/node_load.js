#!/usr/bin/env node
// node_load.js — a second, independent load generator for the echo cells of `make bench`,
// built on Node `ws` (the client side of the version pinned in tests/interop), so that the
// server-CPU-per-message figures of `weft bench` can be checked against a client that shares
// no code with weft (issue 9; bench/cross_check runs both).
//
// usage: node bench/peers/node_load.js [options] ws://HOST:PORT/echo
//   -c N             connections (default 100)
//   -w W             messages in flight per connection, pipelined (default 8)
//   -s S             payload bytes of every binary message (default 64)
//   -d SEC           measured seconds (default 3)
//   --warmup SEC     traffic before the measured window (default 1)
//   --server-pid PID server CPU (utime + stime from /proc/PID/stat) over the measured window
//   --json           one JSON object on stdout (otherwise a text summary)
//
// Closed loop: each connection keeps W messages in flight; every echo received is counted
// and answered with the next message. No compression (perMessageDeflate off). Every echo is
// checked for its length. The measured window starts after every connection is open and the
// warm-up has passed; the generator's own CPU (process.cpuUsage) is reported over the same
// window, so a generator at ~100 % of its core is visible (it then sets the rate, and only
// the server's CPU per message compares servers).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const pinned = path.join(__dirname, '..', '..', 'tests', 'interop', 'node_modules');
function load(name) {
  try {
    return require(path.join(pinned, name));
  } catch (e) {
    return require(name);
  }
}
const WebSocket = load('ws');
let wsVersion = '?';
try {
  wsVersion = load('ws/package.json').version;
} catch (e) { /* unknown */ }

const opt = { c: 100, w: 8, s: 64, d: 3, warmup: 1, pid: 0, json: false, url: '' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const next = () => {
    if (i + 1 >= argv.length) die(`option ${a} needs a value`);
    return argv[++i];
  };
  if (a === '-c') opt.c = parseInt(next(), 10);
  else if (a === '-w') opt.w = parseInt(next(), 10);
  else if (a === '-s') opt.s = parseInt(next(), 10);
  else if (a === '-d') opt.d = parseFloat(next());
  else if (a === '--warmup') opt.warmup = parseFloat(next());
  else if (a === '--server-pid') opt.pid = parseInt(next(), 10);
  else if (a === '--json') opt.json = true;
  else if (a === '-h' || a === '--help') {
    process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 21)
      .map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
    process.exit(0);
  } else if (a.startsWith('ws://')) opt.url = a;
  else die(`unknown argument '${a}'`);
}
if (!opt.url) die('a ws:// URL is required');
if (!(opt.c > 0 && opt.w > 0 && opt.s >= 0 && opt.d > 0 && opt.warmup >= 0)) die('bad option value');

function die(msg) {
  process.stderr.write(`node_load: ${msg}\n`);
  process.exit(2);
}

let clkTck = 100;
try {
  clkTck = parseInt(execFileSync('getconf', ['CLK_TCK']).toString(), 10) || 100;
} catch (e) { /* keep 100 */ }

// utime + stime of a process in seconds (fields 14 and 15 of /proc/PID/stat).
function procCpu(pid) {
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (parseInt(f[11], 10) + parseInt(f[12], 10)) / clkTck;
}
function procRssKib(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? parseInt(m[1], 10) : null;
}

const payload = Buffer.alloc(opt.s, 0x61);
const errors = { connect: 0, closed: 0, bad_message: 0 };
let received = 0;
let opened = 0;
let finished = false;
const conns = [];

function openOne() {
  const ws = new WebSocket(opt.url, { perMessageDeflate: false });
  ws.binaryType = 'nodebuffer';
  ws.on('open', () => {
    opened++;
    for (let i = 0; i < opt.w; i++) ws.send(payload);
    if (opened === opt.c) start();
  });
  ws.on('message', (data) => {
    if (data.length !== opt.s) errors.bad_message++;
    received++;
    if (!finished) ws.send(payload);
  });
  ws.on('error', () => {
    if (ws.readyState !== WebSocket.OPEN) errors.connect++;
  });
  ws.on('close', () => {
    if (!finished) errors.closed++;
  });
  conns.push(ws);
}

function snapshot() {
  return {
    t: process.hrtime.bigint(),
    n: received,
    cpu: process.cpuUsage(),
    srv: opt.pid ? procCpu(opt.pid) : null,
  };
}

function start() {
  setTimeout(() => {
    const a = snapshot();
    setTimeout(() => {
      const b = snapshot();
      finished = true;
      report(a, b);
    }, opt.d * 1000);
  }, opt.warmup * 1000);
}

function report(a, b) {
  const secs = Number(b.t - a.t) / 1e9;
  const msgs = b.n - a.n;
  const cliCpu = ((b.cpu.user - a.cpu.user) + (b.cpu.system - a.cpu.system)) / 1e6;
  let server = null;
  if (opt.pid) {
    const srvCpu = b.srv - a.srv;
    server = {
      pid: opt.pid,
      cpu_pct: 100 * srvCpu / secs,
      cpu_us_per_msg: msgs ? 1e6 * srvCpu / msgs : null,
      rss_kib: procRssKib(opt.pid),
    };
  }
  const errTotal = errors.connect + errors.closed + errors.bad_message;
  const out = {
    generator: `node ws ${wsVersion} (${process.version})`,
    mode: 'echo',
    url: opt.url,
    connections: opt.c,
    opened,
    size: opt.s,
    window: opt.w,
    warmup_s: opt.warmup,
    duration_s: secs,
    messages: msgs,
    msgs_per_s: msgs / secs,
    client_cpu_pct: 100 * cliCpu / secs,
    generator_bound: 100 * cliCpu / secs > 90,
    errors: Object.assign({ total: errTotal }, errors),
    server,
  };
  if (opt.json) {
    process.stdout.write(JSON.stringify(out) + '\n');
  } else {
    process.stdout.write(`${out.generator}: ${opt.c} conns x ${opt.w} in flight x ${opt.s} B, ` +
      `${secs.toFixed(2)} s: ${out.msgs_per_s.toFixed(0)} msgs/s, generator CPU ` +
      `${out.client_cpu_pct.toFixed(0)} %${out.generator_bound ? ' (generator-bound)' : ''}` +
      (server ? `, server CPU ${server.cpu_pct.toFixed(0)} % = ` +
        `${server.cpu_us_per_msg === null ? '-' : server.cpu_us_per_msg.toFixed(3)} us/msg` : '') +
      `, errors ${errTotal}\n`);
  }
  for (const ws of conns) ws.terminate();
  process.exit(errTotal && !msgs ? 1 : 0);
}

// Open the connections at most 256 handshakes at a time.
let launched = 0;
function ramp() {
  while (launched < opt.c && launched - opened - errors.connect < 256) {
    openOne();
    launched++;
  }
  if (launched < opt.c) setTimeout(ramp, 5);
}
ramp();
setTimeout(() => {
  if (opened < opt.c) {
    process.stderr.write(`node_load: only ${opened} of ${opt.c} connections opened in 30 s\n`);
    process.exit(1);
  }
}, 30000).unref();
