// The web page in a real browser: Debian's chromium driven by playwright-core.
//   - two pages join one room: presence shows both; a message typed in one appears in the other
//   - the WebSocket negotiated permessage-deflate (the `extensions` property of the page's socket)
//   - a dropped connection (same server): the page reconnects with backoff and recovers what
//     was published meanwhile from the room's history (after its last seq), exactly once
//   - a server restart: the test stops exactly the PID it started, starts weft serve again on
//     the same port, and publishes from a third client while both pages are still waiting to
//     reconnect (their first reconnect delay is 4-8 s here, ?backoff=8000, and the test checks
//     they still show "reconnecting" after publishing). The restarted server's history holds
//     only those messages (history is in memory), so recovering them proves the pages asked
//     the new server for its history; both pages then show them once.
//   - the stats view: the connection count matches what the test has open, the canvas chart
//     draws points (DOM data-points and coloured pixels), screenshots saved in the build dir
//   - a phone-sized viewport (375x740) has no horizontal scroll
// usage: node chat_test.js WEFT_BINARY ARTIFACT_DIR
// WEFT_UPDATE_SCREENSHOT=1 also copies the desktop screenshot to docs/screenshot.png.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freePort, startServer, stopServer, waitFor, run, assert } = require('./lib.js');

const weft = process.argv[2];
const artifacts = process.argv[3] || process.cwd();
if (!weft) {
  console.error('usage: node chat_test.js WEFT_BINARY ARTIFACT_DIR');
  process.exit(2);
}
let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  console.error('playwright-core is missing: run scripts/setup (npm ci in tests/browser)');
  process.exit(1);
}
const CHROMIUM = '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} is missing: run scripts/setup (Debian package chromium)`);
  process.exit(1);
}

const ROOM = 'browser-test';
// Two workers: the statistics (and presence, history) must cover the whole process, whichever
// worker a page is connected to.
const SERVER_ARGS = ['--log-level', 'warn', '--workers', '2'];
let srv, port, base, ctx, profile, alice, bob, phone;

const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));
const stateOf = (page) => page.$eval('#state', (e) => e.dataset.state);
const messageTexts = (page) => page.$$eval('#messages li .text', (els) => els.map((e) => e.textContent));
const count = (arr, t) => arr.filter((x) => x === t).length;

async function openChat(name, backoff) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log(`[${name}] page error: ${e}`));
  await page.goto(`${base}/?name=${name}&room=${ROOM}&join=1&backoff=${backoff}`);
  await waitFor(`${name} live`, async () => (await stateOf(page)) === 'live');
  return page;
}

// Sends a message through the page's form, as a person would.
async function type(page, text) {
  await page.fill('#message', text);
  await page.press('#message', 'Enter');
  await waitFor(`"${text}" acknowledged`, () =>
    page.$$eval('#messages li.mine', (els, t) =>
      els.some((e) => e.querySelector('.text').textContent === t && !e.classList.contains('pending')), text));
}

// A third client (not the page's code): a raw WebSocket in a page of the server's origin (its
// favicon.svg: no page code runs; a blank page's "null" origin would get 403, weft accepts only
// same-origin browsers by default) that joins the room and publishes each text, waiting for
// every "published" acknowledgement before closing.
async function publishAsCarol(list) {
  const page = await ctx.newPage();
  try {
    await page.goto(`${base}/favicon.svg`);
    return await page.evaluate(async ({ url, room, list }) => {
      const ws = new WebSocket(url);
      const got = [];
      await new Promise((resolve, reject) => {
        ws.onerror = () => reject(new Error('carol: socket error'));
        ws.onopen = () => ws.send(JSON.stringify({ type: 'join', room }));
        ws.onmessage = (ev) => {
          const m = JSON.parse(ev.data);
          if (m.type === 'joined')
            list.forEach((text, i) => ws.send(JSON.stringify({ type: 'publish', room, id: i, data: { text } })));
          if (m.type === 'published') got.push(m.seq);
          if (m.type === 'error') reject(new Error(`carol: ${m.reason}`));
          if (got.length === list.length) resolve();
        };
        setTimeout(() => reject(new Error('carol: timeout')), 5000);
      });
      ws.close();
      return got;
    }, { url: `ws://127.0.0.1:${port}/hub?name=carol`, room: ROOM, list });
  } finally {
    await page.close();
  }
}

const steps = [
  ['start weft serve and chromium', async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    srv = await startServer(weft, port, SERVER_ARGS);
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 820 },
      // A cold start of chromium usually takes 1-3 s, but took over 30 s once on this 2-core
      // machine while two builds ran beside the tests: the test's own 180 s bound still holds.
      timeout: 90000,
    });
    ctx.setDefaultTimeout(15000);
  }],
  ['two pages join the same room; presence shows both', async () => {
    alice = await openChat('alice', 8000);
    bob = await openChat('bob', 8000);
    for (const p of [alice, bob])
      await waitFor('presence alice+bob', async () => {
        const names = await texts(p, '#presence li');
        return names.includes('alice') && names.includes('bob') && names.length === 2;
      }, 10000);
  }],
  ['the page\'s WebSocket negotiated permessage-deflate', async () => {
    const ext = await alice.evaluate(() => window.weft.state().extensions);
    assert(/^permessage-deflate/.test(ext), `extensions: "${ext}"`);
  }],
  ['a message typed in one page appears in the other (both ways)', async () => {
    await type(alice, 'hello from alice');
    await waitFor('bob sees alice', async () => count(await messageTexts(bob), 'hello from alice') === 1);
    await type(bob, 'hi alice, bob here');
    await waitFor('alice sees bob', async () => count(await messageTexts(alice), 'hi alice, bob here') === 1);
    const who = await bob.$$eval('#messages li', (els) =>
      els.map((e) => e.querySelector('.who') && e.querySelector('.who').textContent));
    assert(who.includes('alice'), `sender name shown: ${who}`);
    const live = await bob.$eval('#messages', (e) => e.getAttribute('aria-live'));
    assert(live === 'polite', 'messages are an aria-live region');
  }],
  ['a dropped connection reconnects with backoff and recovers what it missed', async () => {
    await bob.evaluate(() => window.weft.drop());
    await waitFor('bob reconnecting', async () => (await stateOf(bob)) === 'reconnecting', 5000);
    const shown = await bob.$eval('#state', (e) => e.textContent);
    assert(/^reconnecting in \d+ s$/.test(shown), `state text: ${shown}`);
    await type(alice, 'while bob was away 1');
    await type(alice, 'while bob was away 2');
    assert((await stateOf(bob)) === 'reconnecting', 'bob still away when alice published');
    await waitFor('bob live again', async () => (await stateOf(bob)) === 'live', 20000);
    await waitFor('bob recovered both', async () => {
      const t = await messageTexts(bob);
      return count(t, 'while bob was away 1') === 1 && count(t, 'while bob was away 2') === 1;
    }, 10000);
    const t = await messageTexts(bob);
    assert(count(t, 'hello from alice') === 1, 'no duplicate after recovery');
  }],
  ['the stats view: connections match, the chart draws points', async () => {
    await waitFor('2 connections shown', async () =>
      (await alice.$eval('#s-connections', (e) => e.textContent)) === '2', 10000);
    await waitFor('chart points', async () =>
      Number(await alice.$eval('#chart', (e) => e.dataset.points || 0)) >= 4, 15000);
    const colored = await alice.evaluate(() => {
      const c = document.getElementById('chart');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const want = getComputedStyle(document.documentElement).getPropertyValue('--conn').trim();
      const r = parseInt(want.slice(1, 3), 16), g = parseInt(want.slice(3, 5), 16), b = parseInt(want.slice(5, 7), 16);
      let n = 0;
      for (let i = 0; i < d.length; i += 4)
        if (Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40 && d[i + 3] > 200) n++;
      return n;
    });
    assert(colored > 30, `connection line pixels on the canvas: ${colored}`);
    const rss = await alice.$eval('#s-rss', (e) => e.textContent);
    assert(/\d+(\.\d)? (KiB|MiB|GiB)/.test(rss), `memory shown: ${rss}`);
    const min = await alice.$eval('#s-min', (e) => e.textContent);
    assert(/^[\d.,]+$/.test(min), `messages in/s shown: ${min}`);
  }],
  ['a server restart: both pages reconnect by themselves and recover what was published meanwhile', async () => {
    const before = await alice.evaluate(() => window.weft.state().boot);
    const r = await stopServer(srv);
    assert(r && (r.code === 0 || r.sig), `first server exit: ${JSON.stringify(r)}`);
    for (const p of [alice, bob])
      await waitFor('reconnecting', async () => (await stateOf(p)) === 'reconnecting', 5000);
    srv = await startServer(weft, port, SERVER_ARGS);
    const seqs = await publishAsCarol(['during the restart 1', 'during the restart 2']);
    assert(seqs.join(',') === '1,2', `the new server numbers from 1: ${seqs}`);
    for (const p of [alice, bob])
      assert((await stateOf(p)) === 'reconnecting', 'the pages were still away when carol published');
    for (const p of [alice, bob]) {
      await waitFor('live after restart', async () => (await stateOf(p)) === 'live', 25000);
      await waitFor('recovered after restart', async () => {
        const t = await messageTexts(p);
        return count(t, 'during the restart 1') === 1 && count(t, 'during the restart 2') === 1;
      }, 10000);
      const t = await messageTexts(p);
      assert(count(t, 'hello from alice') === 1, 'messages from before the restart are kept once');
    }
    const after = await alice.evaluate(() => window.weft.state().boot);
    assert(after && after !== before, `a new server instance (boot ${before} -> ${after})`);
    await waitFor('presence after restart', async () => {
      const names = await texts(alice, '#presence li');
      return names.includes('alice') && names.includes('bob');
    }, 10000);
    await type(bob, 'back after the restart');
    await waitFor('alice sees it', async () => count(await messageTexts(alice), 'back after the restart') === 1);
  }],
  ['after the restart the stats count the two pages again; screenshot', async () => {
    await waitFor('2 connections shown', async () =>
      (await alice.$eval('#s-connections', (e) => e.textContent)) === '2', 10000);
    await waitFor('chart points', async () =>
      Number(await alice.$eval('#chart', (e) => e.dataset.points || 0)) >= 3, 10000);
    const file = path.join(artifacts, 'browser-desktop.png');
    await alice.screenshot({ path: file, fullPage: true });
    assert(fs.statSync(file).size > 10000, 'screenshot written');
    console.log(`     screenshot: ${file}`);
    if (process.env.WEFT_UPDATE_SCREENSHOT === '1') {
      const docs = path.join(__dirname, '..', '..', 'docs', 'screenshot.png');
      fs.mkdirSync(path.dirname(docs), { recursive: true });
      fs.copyFileSync(file, docs);
      console.log(`     copied to ${docs}`);
    }
  }],
  ['a phone-sized viewport renders without horizontal scroll', async () => {
    phone = await ctx.newPage();
    await phone.setViewportSize({ width: 375, height: 740 });
    await phone.goto(`${base}/?name=phone&room=${ROOM}&join=1`);
    await waitFor('phone live', async () => (await stateOf(phone)) === 'live');
    await waitFor('phone history', async () => (await messageTexts(phone)).length >= 3);
    await waitFor('3 connections shown', async () =>
      (await phone.$eval('#s-connections', (e) => e.textContent)) === '3', 10000);
    const m = await phone.evaluate(() => ({
      sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth,
      cols: getComputedStyle(document.querySelector('main')).gridTemplateColumns.split(' ').length,
    }));
    assert(m.sw <= m.cw, `horizontal scroll: scrollWidth ${m.sw} > ${m.cw}`);
    assert(m.cols === 1, `one column on a phone (${m.cols})`);
    await phone.screenshot({ path: path.join(artifacts, 'browser-phone.png'), fullPage: true });
  }],
  ['keyboard focus is visible and every input has a label', async () => {
    const unlabeled = await alice.$$eval('input', (els) =>
      els.filter((e) => !(e.labels && e.labels.length)).map((e) => e.id));
    assert(unlabeled.length === 0, `inputs without a label: ${unlabeled}`);
    await alice.focus('#name');
    const outline = await alice.$eval('#name', (e) => getComputedStyle(e).outlineStyle);
    assert(outline !== 'none', `focus outline: ${outline}`);
  }],
];

(async () => {
  let ok = false;
  try {
    ok = await run('browser.chat', steps);
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    await stopServer(srv);
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  }
  process.exit(ok ? 0 : 1);
})();
