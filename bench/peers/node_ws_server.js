#!/usr/bin/env node
// node_ws_server.js — Node `ws` (+ bufferutil) peer for `make bench`, the same routes as
// `weft serve`:
//   /echo         echoes every message with its type (text/binary)
//   /ws/<room>    each message goes to every other member of <room> (/ws alone: "lobby")
//
// usage: node bench/peers/node_ws_server.js [--cert FILE --key FILE] [--deflate] [PORT]
//   (PORT 0 or none = any free port)
//   --cert, --key  serve wss://: an https.createServer with this PEM certificate and key, the
//                  WebSocketServer attached to it
//   --deflate      perMessageDeflate: { threshold: 0 }: every message compressed (ws' default
//                  threshold, 1024 bytes, would send shorter ones uncompressed); everything
//                  else ws' defaults (context takeover both ways, 15-bit windows, 10 zlib jobs
//                  at once)
// Listens on 127.0.0.1, without them plain ws:// and no compression. Prints "node ws VERSION
// (bufferutil yes|no): listening on 127.0.0.1:PORT" to stderr once ready. `ws` and
// `bufferutil` are the versions pinned in tests/interop/package.json (installed there by
// scripts/setup).
'use strict';
const path = require('path');

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
let bufferutil = false;
try {
  load('bufferutil');
  bufferutil = !process.env.WS_NO_BUFFER_UTIL;
} catch (e) { /* ws falls back to its JS masking */ }

const rooms = new Map(); // name -> Set of sockets

let port = 0;
let cert = null;
let key = null;
let deflate = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--cert' && i + 1 < argv.length) cert = argv[++i];
  else if (argv[i] === '--key' && i + 1 < argv.length) key = argv[++i];
  else if (argv[i] === '--deflate') deflate = true;
  else if (!argv[i].startsWith('-')) port = parseInt(argv[i], 10);
  else {
    process.stderr.write('usage: node_ws_server.js [--cert FILE --key FILE] [--deflate] [PORT]\n');
    process.exit(2);
  }
}
if (!cert !== !key) {
  process.stderr.write('node_ws_server.js: --cert and --key go together\n');
  process.exit(2);
}

const options = {
  perMessageDeflate: deflate ? { threshold: 0 } : false,
  maxPayload: 16 * 1024 * 1024,
  clientTracking: false,
};
let server = null;
if (cert) {
  const fs = require('fs');
  server = require('https').createServer({
    cert: fs.readFileSync(cert),
    key: fs.readFileSync(key),
  });
  options.server = server;
} else {
  options.host = '127.0.0.1';
  options.port = port;
}
const wss = new WebSocket.WebSocketServer(options);

wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  const url = (req.url || '/').split('?')[0];
  if (url === '/echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    return;
  }
  let name = null;
  if (url === '/ws') name = 'lobby';
  else if (url.startsWith('/ws/') && url.length > 4) name = url.slice(4);
  if (name === null) {
    ws.close(1008, 'unknown path');
    return;
  }
  let room = rooms.get(name);
  if (!room) {
    room = new Set();
    rooms.set(name, room);
  }
  room.add(ws);
  ws.on('message', (data, isBinary) => {
    for (const other of room) {
      if (other !== ws && other.readyState === WebSocket.OPEN) other.send(data, { binary: isBinary });
    }
  });
  ws.on('close', () => {
    room.delete(ws);
    if (room.size === 0) rooms.delete(name);
  });
});

function ready() {
  process.stderr.write(`node ws ${wsVersion} (bufferutil ${bufferutil ? 'yes' : 'no'}): ` +
                       `listening on 127.0.0.1:${(server || wss).address().port}\n`);
}
if (server) server.listen(port, '127.0.0.1', ready);
else wss.on('listening', ready);
