#!/usr/bin/env node
// Interop test: Node `ws` (pinned in package-lock.json) as a wss:// client of
// `weft serve --tls-cert --tls-key`.
//
// usage: node tls_node.js PATH/TO/weft
//
// Certificates are made in a temporary directory by tests/integration/tls_certs.sh (the openssl
// command); the client trusts only the test CA (`ca:` option) and checks the name "localhost".
// Scenarios: ALPN http/1.1 and the served serial, echo of every length class, rooms, a client
// trusting another CA refused. Only the server this script started is signalled (by PID).
'use strict';

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');

let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  console.log(`FAIL setup: ${e.message.split('\n')[0]} (run scripts/setup)`);
  process.exit(1);
}

const HARD_TIMEOUT = 100000;
const STEP_TIMEOUT = 15000;
const SIZES = [0, 1, 125, 126, 16384, 65535, 65536, 1 << 20];

class Failure extends Error {}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => {
    t = setTimeout(() => rej(new Failure(`timeout: ${what}`)), ms);
  })]).finally(() => clearTimeout(t));
}

// Starts `weft serve` with TLS; resolves with {proc, port, lines}.
function startServer(weft, cert, key) {
  const proc = spawn(weft, ['serve', '--host', '127.0.0.1', '--port', '0', '--log-format',
    'text', '--shutdown-timeout', '3', '--tls-cert', cert, '--tls-key', key],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  const srv = { proc, port: null, lines: [] };
  srv.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const rl = readline.createInterface({ input: proc.stderr });
  srv.ready = new Promise((resolve) => {
    rl.on('line', (line) => {
      srv.lines.push(line);
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m && srv.port === null) {
        srv.port = Number(m[1]);
        resolve();
      }
    });
    rl.on('close', resolve);
  });
  return srv;
}

function open(url, opts) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 0, ...opts });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  }), STEP_TIMEOUT, `open ${url}`);
}

function next(ws) {
  return withTimeout(new Promise((resolve, reject) => {
    const onClose = () => reject(new Failure('closed while waiting for a message'));
    ws.once('message', (data, isBinary) => {
      ws.off('close', onClose);
      resolve({ data, isBinary });
    });
    ws.once('close', onClose);
  }), STEP_TIMEOUT, 'message');
}

async function main() {
  const weft = process.argv[2];
  if (!weft) {
    console.log('usage: node tls_node.js PATH/TO/weft');
    process.exit(2);
  }
  const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-tls-node-'));
  let srv = null;
  const hard = setTimeout(() => {
    console.log('FAIL hard timeout');
    if (srv) srv.proc.kill('SIGKILL');
    process.exit(1);
  }, HARD_TIMEOUT);
  let failed = 0;
  const run = async (name, fn) => {
    try {
      await fn();
      console.log(`ok   ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.message}`);
    }
  };
  try {
    execFileSync('sh', [path.join(__dirname, '..', 'integration', 'tls_certs.sh'), certs]);
    const ca = fs.readFileSync(path.join(certs, 'ca.pem'));
    srv = startServer(weft, path.join(certs, 'server.pem'), path.join(certs, 'server.key'));
    await withTimeout(srv.ready, STEP_TIMEOUT, 'server start');
    if (srv.port === null) throw new Failure(`server did not start:\n${srv.lines.join('\n')}`);
    const base = `wss://localhost:${srv.port}`;

    await run('tls alpn http/1.1 and serial', async () => {
      const ws = await open(`${base}/echo`, { ca, ALPNProtocols: ['http/1.1'] });
      const alpn = ws._socket.alpnProtocol;
      const serial = ws._socket.getPeerCertificate().serialNumber;
      ws.terminate();
      if (alpn !== 'http/1.1' || serial !== '03E9') throw new Failure(`alpn ${alpn} serial ${serial}`);
    });
    await run('tls echo sizes', async () => {
      const ws = await open(`${base}/echo`, { ca });
      for (const n of SIZES) {
        const text = 'é'.repeat(n >> 1) + 'a'.repeat(n & 1);
        ws.send(text);
        let m = await next(ws);
        if (m.isBinary || m.data.toString() !== text) throw new Failure(`text ${n}`);
        const bin = require('crypto').randomBytes(n);
        ws.send(bin);
        m = await next(ws);
        if (!m.isBinary || !Buffer.from(m.data).equals(bin)) throw new Failure(`binary ${n}`);
      }
      ws.close(1000);
    });
    await run('tls rooms', async () => {
      const a = await open(`${base}/ws/noderoom`, { ca });
      const b = await open(`${base}/ws/noderoom`, { ca });
      await new Promise((r) => setTimeout(r, 200));
      const got = next(b);
      a.send('hi from node');
      const m = await got;
      a.terminate();
      b.terminate();
      if (m.data.toString() !== 'hi from node') throw new Failure(`got ${m.data}`);
    });
    await run('tls untrusted CA refused by the client', async () => {
      const other = fs.readFileSync(path.join(certs, 'selfsigned.pem'));
      let ws;
      try {
        ws = await open(`${base}/echo`, { ca: other });
      } catch (e) {
        if (/certificate/i.test(e.message)) return;
        throw new Failure(`unexpected error ${e.message}`);
      }
      ws.terminate();
      throw new Failure('connected');
    });
    await run('tls clean exit', async () => {
      srv.proc.kill('SIGTERM');
      const code = await withTimeout(srv.exited, 8000, 'exit');
      if (code !== 0) throw new Failure(`exit ${code}:\n${srv.lines.join('\n')}`);
    });
  } catch (e) {
    failed++;
    console.log(`FAIL setup: ${e.message}`);
  } finally {
    if (srv && srv.proc.exitCode === null) srv.proc.kill('SIGKILL');
    fs.rmSync(certs, { recursive: true, force: true });
    clearTimeout(hard);
  }
  console.log(failed ? `${failed} failed` : 'all passed');
  process.exit(failed ? 1 : 0);
}

main();
