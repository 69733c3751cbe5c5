#!/usr/bin/env node
// Interop test: the weft client's permessage-deflate (tests/interop/deflate_client, a libweft
// client) against Node `ws` servers (tests/interop/node_modules) started here on 127.0.0.1.
//
// usage: node client_deflate_node.js PATH/TO/deflate_client
//
// Client offers: the full product of the parameters the client can put in its offer --
// client_no_context_takeover (--nct) x server_no_context_takeover (--peer-nct) x
// client_max_window_bits (--bits: bare parameter, 9, 12) x server_max_window_bits
// (--peer-bits: absent, 8, 9, 12) = 48 offers; the settings that only shape what the client
// sends (--mem, --level, --threshold) rotate over the offers. Every offer runs against every
// server option set.
// Asserts, per (perMessageDeflate option set x client offer) pair: the client's echo check
// passes (compressible text and random binary, 0 B .. 64 KiB; up to 1 MiB for one offer per
// server and 16 MiB for three pairs); the server negotiated permessage-deflate (none for
// perMessageDeflate: false) with parameters that honour the client's offer (server window no
// larger than asked, client window no larger than offered, server_no_context_takeover when
// asked); a room of 4 clients (every message broadcast to all) gets everything intact. Pairs
// that ws itself refuses (it answers 400 when the client asks for a server window smaller
// than its configured serverMaxWindowBits, or offers a client window smaller than its
// clientMaxWindowBits) must fail the client cleanly.
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
// [name, flags] for the product of every offer parameter; the local settings rotate.
function clientOffers() {
  const local = [[], ['--mem', '1'], ['--threshold', '100', '--level', '1'],
                 ['--mem', '9', '--level', '9'], ['--threshold', '0', '--mem', '2']];
  const out = [];
  for (const nct of [false, true])
    for (const pnct of [false, true])
      for (const bits of [null, 9, 12])
        for (const pbits of [null, 8, 9, 12]) {
          const flags = [...(nct ? ['--nct'] : []), ...(pnct ? ['--peer-nct'] : []),
                         ...(bits ? ['--bits', String(bits)] : []),
                         ...(pbits ? ['--peer-bits', String(pbits)] : [])];
          const extra = local[out.length % local.length];
          const name = (flags.join(' ') || '(defaults)') + (extra.length ? ' + ' : '');
          out.push([name + extra.join(' '), flags.concat(extra)]);
        }
  return out;
}
const CLIENTS = clientOffers();
// (server, offer without the local settings) pairs that echo up to 16 MiB
const BIG = new Set(['default/(defaults)', 'nct-both-t0/--nct --peer-nct',
                     'win9-t0/--bits 9 --peer-bits 9']);
for (const b of BIG)
  if (!CLIENTS.some(([c]) => c.split(' + ')[0] === b.split('/')[1])) throw new Error(b);

function flag(flags, name) {
  const i = flags.indexOf(name);
  return i >= 0 ? Number(flags[i + 1]) : null;
}

// ws declines (400) an offer whose server_max_window_bits is below its own serverMaxWindowBits,
// or whose client_max_window_bits is below its own clientMaxWindowBits.
function refused(sname, flags) {
  const o = SERVERS[sname];
  const want = flag(flags, '--peer-bits');
  const ours = flag(flags, '--bits');
  return typeof o === 'object' &&
         ((typeof o.serverMaxWindowBits === 'number' && want !== null &&
           o.serverMaxWindowBits > want) ||
          (typeof o.clientMaxWindowBits === 'number' && ours !== null &&
           o.clientMaxWindowBits > ours));
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
  const want = flag(flags, '--peer-bits');
  if (want !== null && (params.server_max_window_bits ?? 15) > want)
    bad.push(`server window ${params.server_max_window_bits} > ${want}`);
  const ours = flag(flags, '--bits');
  if (ours !== null && typeof params.client_max_window_bits === 'number' &&
      params.client_max_window_bits > ours)
    bad.push(`client window ${params.client_max_window_bits} > ${ours}`);
  return bad;
}

async function main() {
  let failed = 0;
  const check = (name, cond, detail, quietOk) => {
    if (!(cond && quietOk))
      console.log((cond ? 'ok   ' : 'FAIL ') + name + (cond ? '' : ': ' + detail));
    if (!cond) failed++;
  };
  let nserver = 0;
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
    const t0 = Date.now();
    let badPairs = 0, nrefused = 0;
    for (const [i, [cname, flags]] of CLIENTS.entries()) {
      seen.length = 0;
      // big runs compress with memLevel 8 (the last --mem wins): zlib with memLevel 1 takes
      // ~10 s for 16 MiB of random data
      const big = BIG.has(`${sname}/${cname.split(' + ')[0]}`)
        ? ['--max', String(16 << 20), '--mem', '8']
        : i === (7 * nserver) % CLIENTS.length ? ['--max', String(1 << 20), '--mem', '8'] : [];
      const name = `${sname} x ${cname}${big.length ? ' (' + big.join(' ') + ')' : ''}`;
      const url = `ws://127.0.0.1:${port}/echo`;
      let ok;
      if (refused(sname, flags)) {
        nrefused++;
        const r = await run([url, ...flags]);
        ok = r.status === 1 && /400/.test(r.text) && seen.length === 0;
        check(`${name} (ws refuses: clean failure)`, ok, `status ${r.status}: ${r.text}`, true);
      } else {
        const r = await run([url, ...flags, ...big]);
        const probs = paramProblems(sname, flags, seen[0]);
        ok = r.status === 0 && probs.length === 0 && seen.length === 1;
        check(name, ok, `status ${r.status}: ${r.text} ${probs}`, big.length === 0);
      }
      if (!ok) badPairs++;
    }
    check(`${sname}: ${CLIENTS.length} client offers, ${nrefused} refused by ws ` +
          `(${((Date.now() - t0) / 1000).toFixed(1)}s)`,
          badPairs === 0, `${badPairs} failed`);
    nserver++;
    seen.length = 0;
    const r = await run([`ws://127.0.0.1:${port}/room`, '--room', '4']);
    check(`${sname} room x4`, r.status === 0 && seen.length === 4, `status ${r.status}: ${r.text}`);
    await new Promise((res) => { for (const c of wss.clients) c.terminate(); wss.close(res); });
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
