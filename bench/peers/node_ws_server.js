#!/usr/bin/env node
// node_ws_server.js — Node `ws` (+ bufferutil) peer for `make bench`, the same routes as
// `weft serve`:
//   /echo         echoes every message with its type (text/binary)
//   /ws/<room>    each message goes to every other member of <room> (/ws alone: "lobby")
//
// usage: node bench/peers/node_ws_server.js [PORT]      (0 or none = any free port)
// Listens on 127.0.0.1, no compression. Prints "node ws VERSION (bufferutil yes|no): listening
// on 127.0.0.1:PORT" to stderr once ready. `ws` and `bufferutil` are the versions pinned in
// tests/interop/package.json (installed there by scripts/setup).
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

const port = parseInt(process.argv[2] || '0', 10);
const wss = new WebSocket.WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  clientTracking: false,
});

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

wss.on('listening', () => {
  process.stderr.write(`node ws ${wsVersion} (bufferutil ${bufferutil ? 'yes' : 'no'}): ` +
                       `listening on 127.0.0.1:${wss.address().port}\n`);
});
