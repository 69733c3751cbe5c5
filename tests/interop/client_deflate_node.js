#!/usr/bin/env node
// Interop test: the weft client's permessage-deflate (tests/interop/deflate_client, a libweft
// client) against Node `ws` servers (tests/interop/node_modules) started here on 127.0.0.1.
//
// usage: node client_deflate_node.js PATH/TO/deflate_client
//
// Asserts, per (perMessageDeflate option set x client offer) pair: the client's echo check
// passes (compressible text and random binary, 0 B .. 64 KiB; up to 16 MiB for three pairs);
// the server negotiated permessage-deflate (none for perMessageDeflate: false) with parameters
// that honour the client's offer; a room of 4 clients (every message broadcast to all) gets
// everything intact. Pairs that ws itself refuses (it answers 400 when the client asks for a
// server window smaller than its configured serverMaxWindowBits) must fail the client cleanly.
// One line per check; exit 1 if any failed. Every client run is bounded in time.
'use strict';
const { execFile } = require('child_process');
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, 'node_modules', 'ws'));

const client = process.argv[2];
if (!client) {
  console.error('usage: client_deflate_node.js CLIENT');
  process.exit(2);
}

const SERVERS = {
  'default': true,
  'nct-both-t0': { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 },
  'win9-t0': { serverMaxWindowBits: 9, clientMaxWindowBits: 9, threshold: 0 },
  'win11-10-mem1': { serverMaxWindowBits: 11, clientMaxWindowBits: 10, threshold: 16,
                     zlibDeflateOptions: { memLevel: 1 } },
  'cnct-t0': { clientNoContextTakeover: true, threshold: 0 },
  'off': false,
};
const CLIENTS = {
  'takeover': [],
  'nct-both': ['--nct', '--peer-nct'],
  'lean-mem': ['--bits', '9', '--peer-bits', '9', '--mem', '1'],
  'peer-nct-10': ['--peer-nct', '--peer-bits', '10'],
  'nct-12-t0': ['--nct', '--bits', '12', '--threshold', '0'],
};
const BIG = new Set(['default/takeover', 'nct-both-t0/nct-both', 'win9-t0/lean-mem']);

// ws declines an offer whose server_max_window_bits is below its own serverMaxWindowBits.
function refused(sname, flags) {
  const o = SERVERS[sname];
  const i = flags.indexOf('--peer-bits');
  return typeof o === 'object' && typeof o.serverMaxWindowBits === 'number' && i >= 0 &&
         o.serverMaxWindowBits > Number(flags[i + 1]);
}

function run(args) {
  return new Promise((resolve) => {
    execFile(client, args, { timeout: 120000, maxBuffer: 1 << 20 }, (err, out, errout) => {
      resolve({ status: err ? (err.code ?? 1) : 0, text: (out + errout).trim() });
    });
  });
}

function paramProblems(sname, flags, params) {
  if (!params)
    return SERVERS[sname] === false ? [] : ['deflate not negotiated'];
  if (SERVERS[sname] === false)
    return ['deflate negotiated by a server with perMessageDeflate: false'];
  const bad = [];
  if (flags.includes('--peer-nct') && !params.server_no_context_takeover)
    bad.push('server_no_context_takeover asked for but not agreed');
  const i = flags.indexOf('--peer-bits');
  if (i >= 0 && (params.server_max_window_bits ?? 15) > Number(flags[i + 1]))
    bad.push(`server window ${params.server_max_window_bits} > ${flags[i + 1]}`);
  return bad;
}

async function main() {
  let failed = 0;
  const check = (name, cond, detail) => {
    console.log((cond ? 'ok   ' : 'FAIL ') + name + (cond ? '' : ': ' + detail));
    if (!cond) failed++;
  };
  for (const [sname, pmd] of Object.entries(SERVERS)) {
    const seen = [];
    const room = new Set();
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: pmd,
                                      maxPayload: 64 << 20 });
    await new Promise((r) => wss.on('listening', r));
    wss.on('connection', (ws, req) => {
      const ext = ws._extensions && ws._extensions['permessage-deflate'];
      seen.push(ext ? ext.params : null);
      if (req.url.startsWith('/room')) {
        room.add(ws);
        ws.on('message', (m, bin) => { for (const p of room) p.send(m, { binary: bin }); });
        ws.on('close', () => room.delete(ws));
      } else {
        ws.on('message', (m, bin) => ws.send(m, { binary: bin }));
      }
    });
    const port = wss.address().port;
    for (const [cname, flags] of Object.entries(CLIENTS)) {
      seen.length = 0;
      const big = BIG.has(`${sname}/${cname}`) ? ['--max', String(16 << 20)] : [];
      const url = `ws://127.0.0.1:${port}/echo`;
      if (refused(sname, flags)) {
        const r = await run([url, ...flags]);
        check(`${sname} x ${cname} (ws refuses: clean failure)`,
              r.status === 1 && /400/.test(r.text) && seen.length === 0,
              `status ${r.status}: ${r.text}`);
        continue;
      }
      const r = await run([url, ...flags, ...big]);
      const probs = paramProblems(sname, flags, seen[0]);
      check(`${sname} x ${cname}${big.length ? ' 16MiB' : ''}`,
            r.status === 0 && probs.length === 0, `status ${r.status}: ${r.text} ${probs}`);
    }
    seen.length = 0;
    const r = await run([`ws://127.0.0.1:${port}/room`, '--room', '4']);
    check(`${sname} room x4`, r.status === 0 && seen.length === 4, `status ${r.status}: ${r.text}`);
    await new Promise((res) => { for (const c of wss.clients) c.terminate(); wss.close(res); });
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
