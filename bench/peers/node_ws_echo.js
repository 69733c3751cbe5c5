#!/usr/bin/env node
// node_ws_echo.js — Node `ws` echo server, the peer weft's echo throughput is compared with.
//
// usage: node bench/peers/node_ws_echo.js [PORT]      (0 or none = any free port)
// Listens on 127.0.0.1, echoes every message with its type (text/binary), no compression.
// Prints "listening on 127.0.0.1:PORT" to stderr once ready, with the ws version and whether
// the native bufferutil addon is in use. `ws` and `bufferutil` are the versions pinned in
// tests/interop/package.json (installed there by scripts/setup); NODE_PATH may point
// elsewhere.
'use strict';
const path = require('path');

const pinned = path.join(__dirname, '..', '..', 'tests', 'interop', 'node_modules');
function load(name) {
  try {
    return require(name);
  } catch (e) {
    return require(path.join(pinned, name));
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

const port = parseInt(process.argv[2] || '0', 10);
const wss = new WebSocket.WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  clientTracking: true,
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => {
  process.stderr.write(`node ws ${wsVersion} (bufferutil ${bufferutil ? 'yes' : 'no'}): ` +
                       `listening on 127.0.0.1:${wss.address().port}\n`);
});
function stop() {
  for (const ws of wss.clients) ws.close(1001);
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
