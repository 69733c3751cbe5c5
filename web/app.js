/*
 * weft web page: a chat room and live server statistics over one WebSocket to /hub.
 *
 * Chat: "join" a room, then "history" for what the room kept (on the first join: everything
 * kept; after a reconnect to the same server: everything after the last seq seen; after a
 * server restart, which starts the sequence again: everything kept by the new server),
 * page after page ("more"/"next"; on "backpressure" the page asks again after a pause).
 * The server's identity is the "instance" of its stats snapshots. Presence is asked for on
 * join, whenever the connection count of the stats stream changes, and every 5 s.
 * Statistics: {"type":"subscribe_stats"} makes the server push a snapshot every second.
 * Reconnects: exponential backoff with jitter (0.5 s doubling up to 15 s, times 0.5..1).
 *
 * URL parameters (for tests and demos): name, room, join=1 (join at once),
 * backoff=MS (the first reconnect delay, default 500).
 */
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const HISTORY_POINTS = 300; // 5 minutes of 1 s samples
  const BACKOFF_BASE = Math.max(100, Number(params.get('backoff')) || 500);
  const BACKOFF_MAX = Math.max(15000, BACKOFF_BASE * 2);

  const ui = {
    state: $('state'), join: $('join'), name: $('name'), room: $('room'),
    joinBtn: $('join-btn'), presence: $('presence'), presenceCount: $('presence-count'),
    messages: $('messages'), send: $('send'), message: $('message'), sendBtn: $('send-btn'),
    chart: $('chart'),
  };

  const st = {
    ws: null,
    name: '',
    room: '',
    wanted: false,      // the user asked to be connected
    attempt: 0,
    retryAt: 0,
    retryTimer: 0,
    countdown: 0,
    boot: null,         // "instance" of the server we are connected to
    lastBoot: null,     // "instance" of the server the last seq belongs to
    lastSeq: 0,         // highest seq seen in the room (of lastBoot)
    seen: new Set(),    // "boot:seq" of rendered messages
    historyPending: false,
    buffered: [],
    nextId: 1,
    pending: new Map(), // request id -> <li> of an own message not yet acknowledged
    lastConnections: -1,
    presenceTimer: 0,
    series: [],         // {t, min, mout, conn}
    extensions: '',
  };

  // ------------------------------------------------------------------ connection state

  function setState(state, text) {
    ui.state.dataset.state = state;
    ui.state.textContent = text;
  }

  function showCountdown() {
    const s = Math.max(0, Math.ceil((st.retryAt - Date.now()) / 1000));
    setState('reconnecting', `reconnecting in ${s} s`);
  }

  function scheduleReconnect() {
    const exp = Math.min(BACKOFF_MAX, BACKOFF_BASE * 2 ** st.attempt);
    const delay = Math.round(exp * (0.5 + Math.random() * 0.5));
    st.attempt++;
    st.retryAt = Date.now() + delay;
    showCountdown();
    clearInterval(st.countdown);
    st.countdown = setInterval(showCountdown, 250);
    clearTimeout(st.retryTimer);
    st.retryTimer = setTimeout(() => {
      clearInterval(st.countdown);
      connect();
    }, delay);
  }

  function connect() {
    if (!st.wanted) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/hub?name=${encodeURIComponent(st.name)}`;
    setState('connecting', st.attempt ? `connecting (attempt ${st.attempt + 1})` : 'connecting');
    let ws;
    try {
      ws = new WebSocket(url, ['weft.hub']);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    st.ws = ws;
    ws.onopen = () => {
      st.attempt = 0;
      st.extensions = ws.extensions;
      document.body.dataset.extensions = ws.extensions;
      setState('live', 'live');
      send({ type: 'subscribe_stats' });
      send({ type: 'join', room: st.room });
      ui.message.disabled = false;
      ui.sendBtn.disabled = false;
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      handle(m);
    };
    ws.onclose = () => {
      if (st.ws !== ws) return;
      st.ws = null;
      ui.message.disabled = true;
      ui.sendBtn.disabled = true;
      clearInterval(st.presenceTimer);
      for (const li of st.pending.values()) li.classList.add('failed');
      st.pending.clear();
      if (st.wanted) scheduleReconnect();
      else setState('closed', 'not connected');
    };
  }

  function send(obj) {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) {
      st.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  // ------------------------------------------------------------------ protocol

  function handle(m) {
    switch (m.type) {
      case 'stats': onStats(m); break;
      case 'joined': onJoined(m); break;
      case 'history': onHistory(m); break;
      case 'message':
        if (m.room !== st.room) break;
        if (st.historyPending) st.buffered.push(m);
        else addMessage(m);
        break;
      case 'published': onPublished(m); break;
      case 'presence': onPresence(m); break;
      case 'error': onError(m); break;
      default: break;
    }
  }

  function onJoined(m) {
    if (m.room !== st.room) return;
    const sameServer = st.lastBoot !== null && st.lastBoot === st.boot;
    let since = 0;
    if (sameServer && st.lastSeq <= m.seq) since = st.lastSeq;
    else if (st.lastBoot !== null && st.boot !== null && st.lastBoot !== st.boot)
      note('the server restarted: showing what it kept since');
    st.lastBoot = st.boot;
    if (!sameServer) st.lastSeq = 0;
    requestHistory(since);
    askPresence();
    clearInterval(st.presenceTimer);
    st.presenceTimer = setInterval(askPresence, 5000);
  }

  function requestHistory(since) {
    st.historyPending = true;
    send({ type: 'history', room: st.room, since });
  }

  function onHistory(m) {
    if (m.room !== st.room) return;
    for (const d of m.messages || []) addMessage(d);
    if (m.more) { // one page of several: ask for the next
      send({ type: 'history', room: st.room, since: m.next });
      return;
    }
    st.historyPending = false;
    const live = st.buffered;
    st.buffered = [];
    for (const d of live) addMessage(d);
  }

  function onError(m) {
    if (m.code === 'backpressure' && st.historyPending) {
      // the server had no room for a page yet: ask again after what was shown
      setTimeout(() => send({ type: 'history', room: st.room, since: st.lastSeq }), 500);
      return;
    }
    if (m.code === 'history_gap' && st.historyPending) {
      // "kept: F..L": ask again from the oldest kept message
      const k = /kept: (\d+)\.\.(\d+)/.exec(m.reason || '');
      const first = k ? Number(k[1]) : 1;
      note('some messages were no longer kept by the server');
      send({ type: 'history', room: st.room, since: Math.max(0, first - 1) });
      return;
    }
    if (m.id !== undefined && st.pending.has(m.id)) {
      st.pending.get(m.id).classList.add('failed');
      st.pending.delete(m.id);
    }
    note(`server: ${m.reason || m.code}`);
  }

  function onPublished(m) {
    const li = st.pending.get(m.id);
    if (!li) return;
    st.pending.delete(m.id);
    li.classList.remove('pending');
    li.dataset.seq = String(m.seq);
    st.seen.add(`${st.boot}:${m.seq}`);
    if (m.seq > st.lastSeq) st.lastSeq = m.seq;
  }

  function askPresence() {
    send({ type: 'presence', room: st.room });
  }

  function onPresence(m) {
    if (m.room !== st.room) return;
    ui.presence.replaceChildren();
    const names = (m.members || []).slice().sort((a, b) => a.localeCompare(b));
    for (const n of names) {
      const li = document.createElement('li');
      li.textContent = n;
      if (n === st.name) li.classList.add('me');
      ui.presence.append(li);
    }
    ui.presenceCount.textContent = String(m.count);
  }

  // ------------------------------------------------------------------ messages

  function fmtTime(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function messageItem(from, text, ts, mine) {
    const li = document.createElement('li');
    if (mine) li.classList.add('mine');
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = from;
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    const when = document.createElement('time');
    when.className = 'when';
    when.dateTime = new Date(ts).toISOString();
    when.textContent = fmtTime(ts);
    li.append(who, body, when);
    return li;
  }

  function append(li) {
    const box = ui.messages;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.append(li);
    while (box.children.length > 500) box.firstElementChild.remove();
    if (atEnd) box.scrollTop = box.scrollHeight;
  }

  function addMessage(m) {
    const key = `${st.boot}:${m.seq}`;
    if (st.seen.has(key)) return;
    st.seen.add(key);
    if (m.seq > st.lastSeq) st.lastSeq = m.seq;
    const d = m.data;
    const text = d && typeof d === 'object' && typeof d.text === 'string' ? d.text
      : typeof d === 'string' ? d : JSON.stringify(d);
    const li = messageItem(m.from, text, m.ts || Date.now(), m.from === st.name);
    li.dataset.seq = String(m.seq);
    append(li);
  }

  function note(text) {
    const li = document.createElement('li');
    li.className = 'note';
    li.textContent = text;
    append(li);
  }

  // ------------------------------------------------------------------ statistics

  function fmtNum(v) {
    if (v >= 100) return Math.round(v).toLocaleString();
    return (Math.round(v * 10) / 10).toLocaleString();
  }

  function fmtBytes(v) {
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return `${i ? v.toFixed(1) : Math.round(v)} ${u[i]}`;
  }

  function onStats(m) {
    if (m.instance !== undefined) st.boot = m.instance;
    const r = m.rate || {};
    $('s-connections').textContent = String(m.connections);
    $('s-min').textContent = fmtNum(r.messages_in || 0);
    $('s-mout').textContent = fmtNum(r.messages_out || 0);
    $('s-bin').textContent = `${fmtBytes(r.bytes_in || 0)}/s`;
    $('s-bout').textContent = `${fmtBytes(r.bytes_out || 0)}/s`;
    $('s-drops').textContent = String((m.totals && m.totals.dropped) || 0);
    $('s-rss').textContent = fmtBytes(m.rss_bytes || 0);
    $('s-rooms').textContent = String(m.rooms);
    if (m.interval_ms > 0) { // the first snapshot has no rates yet
      st.series.push({ t: m.ts, min: r.messages_in || 0, mout: r.messages_out || 0,
                       conn: m.connections });
      if (st.series.length > HISTORY_POINTS) st.series.shift();
      draw();
    }
    if (m.connections !== st.lastConnections) {
      st.lastConnections = m.connections;
      if (st.ws && !st.historyPending) askPresence();
    }
  }

  function niceMax(v) {
    if (v <= 5) return 5;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const k of [1, 2, 5, 10]) if (k * p >= v) return k * p;
    return 10 * p;
  }

  function draw() {
    const c = ui.chart;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, Math.round(c.clientWidth * dpr));
    const h = Math.max(120, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    const g = c.getContext('2d');
    const css = getComputedStyle(document.documentElement);
    const color = (n) => css.getPropertyValue(n).trim();
    g.clearRect(0, 0, w, h);
    const pad = { l: 44 * dpr, r: 10 * dpr, t: 10 * dpr, b: 22 * dpr };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;
    const pts = st.series;
    let top = 0;
    for (const p of pts) top = Math.max(top, p.min, p.mout, p.conn);
    top = niceMax(top);
    // grid and labels
    g.font = `${11 * dpr}px system-ui, sans-serif`;
    g.fillStyle = color('--muted');
    g.strokeStyle = color('--line');
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + ph - (ph * i) / 4;
      g.beginPath();
      g.moveTo(pad.l, Math.round(y) + 0.5);
      g.lineTo(pad.l + pw, Math.round(y) + 0.5);
      g.stroke();
      g.fillText(fmtNum((top * i) / 4), pad.l - 6 * dpr, y);
    }
    g.textAlign = 'left';
    g.textBaseline = 'alphabetic';
    // the time axis spans the last minute at first and grows to 5 minutes
    const span = Math.min(HISTORY_POINTS, Math.max(60, pts.length));
    g.fillText(span >= 120 ? `−${Math.round(span / 60)} min` : `−${span} s`, pad.l, h - 6 * dpr);
    g.textAlign = 'right';
    g.fillText('now', pad.l + pw, h - 6 * dpr);
    const x = (i) => pad.l + pw - ((pts.length - 1 - i) * pw) / (span - 1);
    const y = (v) => pad.t + ph - (v / top) * ph;
    const line = (key, col) => {
      g.strokeStyle = col;
      g.fillStyle = col;
      g.lineWidth = 2 * dpr;
      g.lineJoin = 'round';
      g.beginPath();
      pts.forEach((p, i) => (i ? g.lineTo(x(i), y(p[key])) : g.moveTo(x(i), y(p[key]))));
      g.stroke();
      const last = pts[pts.length - 1];
      g.beginPath();
      g.arc(x(pts.length - 1), y(last[key]), 3 * dpr, 0, 2 * Math.PI);
      g.fill();
    };
    if (pts.length) {
      line('conn', color('--conn'));
      line('mout', color('--out'));
      line('min', color('--in'));
      const last = pts[pts.length - 1];
      c.setAttribute('aria-label', `Chart of the last ${pts.length} seconds: now ` +
        `${fmtNum(last.min)} messages in per second, ${fmtNum(last.mout)} out, ` +
        `${last.conn} connections`);
    }
    c.dataset.points = String(pts.length);
  }

  // ------------------------------------------------------------------ the forms

  function start(name, room) {
    st.wanted = false;
    if (st.ws) { const old = st.ws; st.ws = null; old.close(1000, 'switching room'); }
    clearTimeout(st.retryTimer);
    clearInterval(st.countdown);
    st.name = name;
    st.room = room;
    st.lastBoot = null;
    st.lastSeq = 0;
    st.seen.clear();
    st.buffered = [];
    st.historyPending = false;
    ui.messages.replaceChildren();
    ui.presence.replaceChildren();
    ui.presenceCount.textContent = '0';
    st.wanted = true;
    st.attempt = 0;
    try { localStorage.setItem('weft.name', name); localStorage.setItem('weft.room', room); }
    catch (e) { /* storage may be disabled */ }
    ui.message.placeholder = `Message #${room}`;
    connect();
  }

  ui.join.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!ui.join.reportValidity()) return;
    start(ui.name.value.trim(), ui.room.value.trim());
    ui.joinBtn.textContent = 'Rejoin';
    ui.message.focus();
  });

  ui.send.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = ui.message.value;
    if (!text.trim()) return;
    const id = st.nextId++;
    if (!send({ type: 'publish', room: st.room, data: { text }, id })) return;
    const li = messageItem(st.name, text, Date.now(), true);
    li.classList.add('pending');
    st.pending.set(id, li);
    append(li);
    ui.message.value = '';
  });

  window.addEventListener('resize', () => { if (st.series.length) draw(); });

  // Test and debugging hooks: drop the connection as a network failure would.
  window.weft = {
    drop() { if (st.ws) st.ws.close(4000, 'dropped by the page'); },
    state: () => ({ state: ui.state.dataset.state, lastSeq: st.lastSeq, boot: st.boot,
                    extensions: st.extensions, points: st.series.length }),
  };

  let saved = {};
  try { saved = { name: localStorage.getItem('weft.name'), room: localStorage.getItem('weft.room') }; }
  catch (e) { /* ignore */ }
  ui.name.value = params.get('name') || saved.name || '';
  ui.room.value = params.get('room') || saved.room || 'lobby';
  if (params.get('join') === '1' && ui.name.value) ui.join.requestSubmit();
  draw();
})();
