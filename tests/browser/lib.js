// Helpers of the browser tests: start/stop `weft serve` (exactly the PIDs started here), free
// ports, raw HTTP requests (literal paths, no client-side normalisation), bounded waits.
'use strict';
const { spawn } = require('node:child_process');
const net = require('node:net');

// A free TCP port on 127.0.0.1 (bound, read, released).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts `weft serve --host 127.0.0.1 --port P [extra]` and resolves once it logs
// "listening on". Rejects if it exits first or within timeoutMs.
function startServer(weft, port, extra = [], timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    const args = ['serve', '--host', '127.0.0.1', '--port', String(port), '--log-format', 'text',
      ...extra];
    const child = spawn(weft, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill('SIGKILL');
      reject(new Error(`weft serve did not start within ${timeoutMs} ms:\n${log}`));
    }, timeoutMs);
    child.stderr.on('data', (d) => {
      log += d.toString();
      if (!done && log.includes('listening on')) {
        done = true;
        clearTimeout(timer);
        resolve({ child, pid: child.pid, log: () => log });
      }
    });
    child.on('exit', (code, sig) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(Object.assign(new Error(`weft serve exited (${code ?? sig}) before listening:\n${log}`),
        { code, log }));
    });
  });
}

// Runs `weft serve` expecting it to fail; resolves {code, log}.
function runFailing(weft, args, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const child = spawn(weft, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d) => { log += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('did not exit')); },
      timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, log }); });
  });
}

// Stops exactly that server: SIGTERM (graceful, close 1001), SIGKILL after timeoutMs.
function stopServer(srv, timeoutMs = 10000) {
  return new Promise((resolve) => {
    if (!srv || srv.child.exitCode !== null || srv.child.signalCode !== null) {
      resolve();
      return;
    }
    const timer = setTimeout(() => srv.child.kill('SIGKILL'), timeoutMs);
    srv.child.once('exit', (code, sig) => { clearTimeout(timer); resolve({ code, sig }); });
    process.kill(srv.pid, 'SIGTERM');
  });
}

// Sends a raw HTTP/1.1 request (the target exactly as given) and parses the response.
function rawRequest(port, method, target, headers = {}, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`timeout: ${target}`)); },
      timeoutMs);
    sock.on('connect', () => {
      let head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`;
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
      sock.write(`${head}Connection: close\r\n\r\n`);
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('end', () => {
      clearTimeout(timer);
      sock.destroy();
      const buf = Buffer.concat(chunks);
      const sep = buf.indexOf('\r\n\r\n');
      const head = buf.subarray(0, sep < 0 ? buf.length : sep).toString('latin1');
      const lines = head.split('\r\n');
      const status = Number((lines[0] || '').split(' ')[1]);
      const h = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status, headers: h, body: sep < 0 ? Buffer.alloc(0) : buf.subarray(sep + 4) });
    });
  });
}

// Polls fn() until it returns a truthy value or timeoutMs passes (then throws with what).
async function waitFor(what, fn, timeoutMs = 15000, stepMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

// A minimal runner: named steps, each logged, the first failure exits 1.
async function run(name, steps) {
  const t0 = Date.now();
  let failed = false;
  for (const [title, fn] of steps) {
    const t = Date.now();
    try {
      await fn();
      console.log(`ok   ${title} (${Date.now() - t} ms)`);
    } catch (e) {
      console.log(`FAIL ${title}: ${e && e.stack ? e.stack : e}`);
      failed = true;
      break;
    }
  }
  console.log(`${name}: ${failed ? 'FAILED' : 'passed'} in ${Date.now() - t0} ms`);
  return !failed;
}

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

module.exports = { freePort, startServer, stopServer, runFailing, rawRequest, waitFor, run, assert };
