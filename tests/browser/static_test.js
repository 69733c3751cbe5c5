// The static file server of `weft serve` (src/hub/web.c), with raw requests so that paths
// reach the server exactly as written: content types, caching headers and 304, HEAD, 404,
// path traversal (literal and percent-encoded "..", hidden files, symlinks leaving the web
// root), 426 for a plain GET of a WebSocket path, and a bad --web-root.
// usage: node static_test.js WEFT_BINARY
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freePort, startServer, stopServer, runFailing, rawRequest, run, assert } =
  require('./lib.js');

const weft = process.argv[2];
if (!weft) {
  console.error('usage: node static_test.js WEFT_BINARY');
  process.exit(2);
}

let srv, srv2, port, port2, tmp;

function refused(r, what) {
  assert(r.status === 404 || r.status === 400, `${what}: status ${r.status}, want 404 (or 400)`);
  const body = r.body.toString();
  assert(!/cmake_minimum_required|root:x:0:0|SECRET-OUTSIDE/.test(body),
    `${what}: leaked a file outside the web root`);
}

const steps = [
  ['start weft serve on a free port', async () => {
    port = await freePort();
    srv = await startServer(weft, port, ['--log-level', 'warn']);
  }],
  ['GET / is the page: text/html, ETag, Last-Modified, Cache-Control, CSP', async () => {
    const r = await rawRequest(port, 'GET', '/');
    assert(r.status === 200, `status ${r.status}`);
    assert(r.headers['content-type'] === 'text/html; charset=utf-8', r.headers['content-type']);
    assert(/^"[0-9a-f]+-[0-9a-f]+"$/.test(r.headers.etag || ''), `etag ${r.headers.etag}`);
    assert(/GMT$/.test(r.headers['last-modified'] || ''), 'last-modified');
    assert(r.headers['cache-control'] === 'no-cache', `cache-control ${r.headers['cache-control']}`);
    assert((r.headers['content-security-policy'] || '').includes("default-src 'self'"), 'csp');
    assert(r.headers['x-content-type-options'] === 'nosniff', 'nosniff');
    assert(r.body.toString().includes('<canvas id="chart"'), 'body is index.html');
    assert(Number(r.headers['content-length']) === r.body.length, 'content-length');
  }],
  ['content types per extension', async () => {
    const want = {
      '/index.html': 'text/html; charset=utf-8',
      '/app.js': 'text/javascript; charset=utf-8',
      '/style.css': 'text/css; charset=utf-8',
      '/favicon.svg': 'image/svg+xml',
    };
    for (const [p, t] of Object.entries(want)) {
      const r = await rawRequest(port, 'GET', p);
      assert(r.status === 200 && r.headers['content-type'] === t,
        `${p}: ${r.status} ${r.headers['content-type']}`);
    }
  }],
  ['If-None-Match / If-Modified-Since revalidate with 304; a stale ETag gets 200', async () => {
    const a = await rawRequest(port, 'GET', '/app.js');
    const b = await rawRequest(port, 'GET', '/app.js', { 'If-None-Match': a.headers.etag });
    assert(b.status === 304 && b.body.length === 0 && b.headers.etag === a.headers.etag,
      `304 by etag: ${b.status}`);
    const c = await rawRequest(port, 'GET', '/app.js',
      { 'If-Modified-Since': a.headers['last-modified'] });
    assert(c.status === 304, `304 by date: ${c.status}`);
    const d = await rawRequest(port, 'GET', '/app.js', { 'If-None-Match': '"0-0"' });
    assert(d.status === 200 && d.body.length > 0, `stale etag: ${d.status}`);
  }],
  ['HEAD has the headers and no body', async () => {
    const r = await rawRequest(port, 'HEAD', '/style.css');
    assert(r.status === 200 && r.body.length === 0 && Number(r.headers['content-length']) > 0,
      `HEAD: ${r.status} ${r.body.length}`);
  }],
  ['anything else is 404', async () => {
    for (const p of ['/nope.html', '/app.js/x', '/web/app.js', '/index.html%00.js']) {
      const r = await rawRequest(port, 'GET', p);
      refused(r, p);
    }
    const r = await rawRequest(port, 'POST', '/');
    assert(r.status === 404 || r.status === 405, `POST /: ${r.status}`);
  }],
  ['path traversal is refused (literal, encoded, double-encoded, backslash, hidden)', async () => {
    for (const p of ['/../CMakeLists.txt', '/%2e%2e/CMakeLists.txt', '/%2E%2E/%2e%2e/etc/passwd',
      '/..%2fCMakeLists.txt', '/%2e%2e%2fCMakeLists.txt', '/web/../../CMakeLists.txt',
      '/./../CMakeLists.txt', '/..\\CMakeLists.txt', '/%5c..%5cCMakeLists.txt',
      '/%252e%252e/CMakeLists.txt', '//etc/passwd', '/.git/config', '/%2e/index.html']) {
      const r = await rawRequest(port, 'GET', p);
      refused(r, p);
    }
  }],
  ['a plain GET of a WebSocket path gets 426', async () => {
    for (const p of ['/hub', '/echo', '/ws', '/ws/lobby']) {
      const r = await rawRequest(port, 'GET', p);
      assert(r.status === 426, `${p}: ${r.status}`);
    }
  }],
  ['--web-root DIR: served; symlinks inside are followed, symlinks escaping it are 404', async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-webroot-'));
    const root = path.join(tmp, 'root');
    const outside = path.join(tmp, 'outside');
    fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(root, 'index.html'), '<p>custom root</p>\n');
    fs.writeFileSync(path.join(root, 'sub', 'index.html'), '<p>sub</p>\n');
    fs.writeFileSync(path.join(root, 'data.json'), '{"ok":true}\n');
    fs.writeFileSync(path.join(root, 'blob.unknownext'), 'x');
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'SECRET-OUTSIDE\n');
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'leak.txt'));
    fs.symlinkSync(outside, path.join(root, 'outdir'));
    fs.symlinkSync('/etc', path.join(root, 'etc'));
    fs.symlinkSync('index.html', path.join(root, 'alias.html'));
    port2 = await freePort();
    srv2 = await startServer(weft, port2, ['--log-level', 'warn', '--web-root', root]);
    let r = await rawRequest(port2, 'GET', '/');
    assert(r.status === 200 && r.body.toString().includes('custom root'), `/: ${r.status}`);
    r = await rawRequest(port2, 'GET', '/sub');
    assert(r.status === 200 && r.body.toString().includes('sub'), `/sub: ${r.status}`);
    r = await rawRequest(port2, 'GET', '/sub/');
    assert(r.status === 200 && r.body.toString().includes('sub'), `/sub/: ${r.status}`);
    r = await rawRequest(port2, 'GET', '/data.json');
    assert(r.status === 200 && r.headers['content-type'] === 'application/json', 'json type');
    r = await rawRequest(port2, 'GET', '/blob.unknownext');
    assert(r.headers['content-type'] === 'application/octet-stream', 'default type');
    r = await rawRequest(port2, 'GET', '/alias.html');
    assert(r.status === 200 && r.body.toString().includes('custom root'), 'inner symlink');
    for (const p of ['/leak.txt', '/outdir/secret.txt', '/etc/passwd', '/outdir/',
      '/%2e%2e/outside/secret.txt']) {
      refused(await rawRequest(port2, 'GET', p), p);
    }
  }],
  ['--web-root that is not a directory: weft serve refuses to start', async () => {
    const r = await runFailing(weft, ['serve', '--host', '127.0.0.1', '--port', '0',
      '--web-root', path.join(tmp, 'does-not-exist')]);
    assert(r.code !== 0 && /web-root/.test(r.log), `exit ${r.code}: ${r.log}`);
  }],
];

(async () => {
  let ok = false;
  try {
    ok = await run('browser.static', steps);
  } finally {
    await stopServer(srv);
    await stopServer(srv2);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(ok ? 0 : 1);
})();
