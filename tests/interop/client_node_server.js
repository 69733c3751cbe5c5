#!/usr/bin/env node
// Interop test: the weft client (through `weft connect`) against a Node `ws` server started
// by this script on 127.0.0.1.
//
// usage: node client_node_server.js PATH/TO/weft
//
// Scenarios (one line each; exit 1 if any failed):
//   echo        lines come back in order; exit 0; the server saw close code 1000
//   fragmented  the server sends one message as 3 frames (fin false, false, true): printed whole
//   1mib        a 1 MiB line is echoed intact
//   ping        the server pings: the client's pong reaches it (then "pong ok" is printed)
//   keepalive   --ping-interval 0.2: the server receives pings from the client
//   close       the server closes with 4001 "custom": weft connect reports it, exits 1
// Every `weft connect` is bounded in time and killed by its PID if it overstays.
'use strict';

const { spawn } = require('child_process');
let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  console.log(`FAIL setup: ${e.message.split('\n')[0]} (run scripts/setup)`);
  process.exit(1);
}

const weft = process.argv[2];
if (!weft) {
  console.log('usage: node client_node_server.js PATH/TO/weft');
  process.exit(2);
}
const STEP = 20000;
const closes = [];
const pingsFromClient = { n: 0 };

const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, maxPayload: 64 << 20 });
wss.on('connection', (ws, req) => {
  ws.on('close', (code) => closes.push(code));
  ws.on('ping', () => { pingsFromClient.n++; });
  const path = req.url;
  if (path === '/echo') {
    ws.on('message', (m, isBinary) => ws.send(m, { binary: isBinary }));
  } else if (path === '/frag') {
    ws.on('message', (m) => {
      const s = m.toString();
      ws.send(s.slice(0, 3), { fin: false });
      ws.send(s.slice(3, 6), { fin: false });
      ws.send(s.slice(6), { fin: true });
    });
  } else if (path === '/ping') {
    ws.on('pong', (data) => { if (data.toString() === 'hi') ws.send('pong ok'); });
    ws.ping('hi');
  } else if (path === '/close4001') {
    ws.close(4001, 'custom');
  }
});

// Runs weft connect; writes `data`, keeps stdin open until `until` is on stdout (or holdMs
// passed), then closes stdin. Resolves {status, out, err}.
function run(url, data, { until = null, holdMs = 0, extra = [] } = {}) {
  return new Promise((resolve) => {
    const p = spawn(weft, ['connect', '--quiet', ...extra, url]);
    let out = Buffer.alloc(0);
    let err = '';
    let stdinClosed = false;
    const closeIn = () => { if (!stdinClosed) { stdinClosed = true; p.stdin.end(); } };
    const timer = setTimeout(() => p.kill('SIGKILL'), STEP);
    p.stdout.on('data', (d) => {
      out = Buffer.concat([out, d]);
      if (until && out.includes(until)) closeIn();
    });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (status) => { clearTimeout(timer); resolve({ status, out, err }); });
    p.stdin.on('error', () => {});
    if (data.length) p.stdin.write(data);
    if (!until) {
      if (holdMs) setTimeout(closeIn, holdMs); else closeIn();
    }
  });
}

async function main() {
  await new Promise((r) => wss.once('listening', r));
  const base = `ws://127.0.0.1:${wss.address().port}`;
  let failed = 0;
  const check = (name, cond, detail) => {
    console.log(cond ? `ok   ${name}` : `FAIL ${name}: ${detail}`);
    if (!cond) failed++;
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  let r = await run(base + '/echo', 'alpha\nbeta\n', { until: 'beta\n' });
  await sleep(100);
  check('echo', r.status === 0 && r.out.toString() === 'alpha\nbeta\n' && closes.at(-1) === 1000,
        `status ${r.status} out ${JSON.stringify(r.out.toString())} err ${r.err} closes ${closes}`);

  r = await run(base + '/frag', 'abcdefghij\n', { until: '\n' });
  check('fragmented', r.status === 0 && r.out.toString() === 'abcdefghij\n',
        `status ${r.status} out ${JSON.stringify(r.out.toString())} err ${r.err}`);

  const big = 'y'.repeat(1 << 20);
  r = await run(base + '/echo', big + '\n', { until: '\n' });
  check('1mib', r.status === 0 && r.out.toString() === big + '\n',
        `status ${r.status} len ${r.out.length} err ${r.err}`);

  r = await run(base + '/ping', '', { until: 'pong ok' });
  check('ping', r.status === 0 && r.out.toString() === 'pong ok\n',
        `status ${r.status} out ${JSON.stringify(r.out.toString())} err ${r.err}`);

  pingsFromClient.n = 0;
  r = await run(base + '/echo', '', { holdMs: 1000, extra: ['--ping-interval', '0.2'] });
  check('keepalive', r.status === 0 && pingsFromClient.n >= 2,
        `status ${r.status} pings ${pingsFromClient.n} err ${r.err}`);

  r = await run(base + '/close4001', '', { until: 'never' });
  check('close', r.status === 1 && r.err.includes('4001') && r.err.includes('custom'),
        `status ${r.status} err ${r.err}`);

  wss.close();
  return failed ? 1 : 0;
}

const hard = setTimeout(() => { console.log('FAIL time limit'); process.exit(1); }, 100000);
main().then((code) => { clearTimeout(hard); process.exit(code); });
