// The Rill console: a single page over the console's JSON API (/api/...).
// Hash routes: #/ overview, #/topics, #/topic/NAME, #/groups, #/create.
'use strict';

// Rows the live tail keeps on the page; older ones are dropped.
const MAX_TAIL_ROWS = 200;
// Pause between two polls of the live tail (the API waits up to 300 ms for a
// record itself), and between two refreshes of the charts and the header.
const TAIL_POLL_MS = 200;
const CHART_REFRESH_MS = 3000;
const HEALTH_REFRESH_MS = 5000;

const main = document.getElementById('main');
const errorBox = document.getElementById('error');
// Bumped on every route change: loops of an older page stop.
let generation = 0;

function esc(s) {
  return String(s === null || s === undefined ? '' : s)
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

async function api(path, options) {
  const resp = await fetch(path, options);
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const err = new Error((body && body.error) || ('HTTP ' + resp.status));
    err.status = resp.status;
    throw err;
  }
  return body;
}

function post(path, value) {
  return api(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value) });
}

function list(xs) { return (xs || []).join(', '); }
function num(n) { return n === null || n === undefined ? 'n/a' : Number(n).toLocaleString('en'); }
function fmtMs(v) {
  if (v === null || v === undefined || v === '') return 'n/a';
  const ms = Number(v);
  if (ms < 0) return 'forever';
  if (ms % 86400000 === 0) return (ms / 86400000) + ' d';
  if (ms % 3600000 === 0) return (ms / 3600000) + ' h';
  if (ms % 60000 === 0) return (ms / 60000) + ' min';
  return ms + ' ms';
}
function fmtBytes(v) {
  if (v === null || v === undefined || v === '') return 'n/a';
  const n = Number(v);
  if (n < 0) return 'unlimited';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, x = n;
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
  return (i ? x.toFixed(1) : x) + ' ' + units[i];
}
function sizeCell(v, configured) {
  if (v !== null && v !== undefined) return '<span title="' + esc(num(v)) + ' bytes">' + esc(fmtBytes(v)) + '</span>';
  return '<span class="muted" title="' + (configured ? 'no metrics endpoint reports it' : 'metrics are not configured (rill console --metrics)') + '">n/a</span>';
}
const NO_METRICS = '<p class="muted" id="no-metrics">Metrics are not configured: sizes and SPU health come from the SPUs\' metrics endpoints ' +
  '(<code>rill console --metrics HOST:PORT</code>).</p>';
function topicLink(name) { return '<a href="#/topic/' + encodeURIComponent(name) + '">' + esc(name) + '</a>'; }

async function refreshHealth() {
  const badge = document.getElementById('health');
  try {
    const c = await api('/api/cluster');
    badge.textContent = c.healthy ? 'cluster up · ' + c.spus.length + ' SPU' + (c.spus.length === 1 ? '' : 's') : 'cluster unreachable';
    badge.className = 'badge ' + (c.healthy ? 'ok' : 'bad');
    return c;
  } catch (e) {
    badge.textContent = 'console unreachable';
    badge.className = 'badge bad';
    return null;
  }
}

// ---- pages ----

async function overview() {
  const c = await api('/api/cluster');
  let html = '<h1>Cluster</h1>';
  if (!c.healthy) {
    html += '<div class="error">The cluster at ' + esc(c.bootstrap) + ' does not answer: ' + esc(c.error) + '</div>';
    main.innerHTML = html;
    return;
  }
  const topics = await api('/api/topics');
  const groups = await api('/api/groups');
  const partitions = topics.topics.reduce((n, t) => n + t.partitions.length, 0);
  html += '<div class="cards">' +
    card('Health', c.healthy ? 'answers' : 'down') +
    card('SPUs', c.spus.length) +
    card('Controller', c.controller === null || c.controller === undefined ? 'none' : 'SPU ' + c.controller) +
    card('Topics', topics.topics.length) +
    card('Partitions', partitions) +
    card('Consumer groups', groups.groups.length) +
    card('Leaderless', c.leaderless.length) +
    card('Under-replicated', c.under_replicated.length) + '</div>';
  html += '<h2>SPUs</h2><table><thead><tr><th>Id</th><th>Address</th><th>Role</th></tr></thead><tbody>' +
    c.spus.map(s => '<tr><td>' + s.id + '</td><td>' + esc(s.addr) + '</td><td>' + (s.id === c.controller ? 'controller' : 'member') + '</td></tr>').join('') +
    '</tbody></table>';
  const trouble = c.leaderless.map(p => [p, 'no leader']).concat(c.under_replicated.map(p => [p, 'under-replicated']));
  if (trouble.length) {
    html += '<h2>Partitions needing attention</h2><table><thead><tr><th>Topic</th><th>Partition</th><th>Problem</th></tr></thead><tbody>' +
      trouble.map(([p, what]) => '<tr><td>' + topicLink(p.topic) + '</td><td>' + p.partition + '</td><td>' + what + '</td></tr>').join('') + '</tbody></table>';
  }
  if (c.metrics_configured) {
    html += '<h2>SPU metrics endpoints</h2><table id="spu-metrics"><thead><tr><th>Endpoint</th><th>Ready</th><th class="num">RSS</th>' +
      '<th class="num">Open connections</th><th class="num">Under-replicated</th></tr></thead><tbody>' +
      c.metrics.map(m => '<tr><td>' + esc(m.addr) + '</td><td>' + (m.ready === null ? '<span class="muted">no answer</span>' : m.ready ? 'ready' : 'not ready') +
        (m.error ? ' <span class="muted">(' + esc(m.error) + ')</span>' : '') + '</td>' +
        '<td class="num">' + esc(fmtBytes(m.rss_bytes)) + '</td><td class="num">' + esc(num(m.connections_open)) + '</td>' +
        '<td class="num">' + esc(num(m.under_replicated)) + '</td></tr>').join('') + '</tbody></table>';
  } else {
    html += NO_METRICS;
  }
  html += '<p class="muted">Bootstrap SPU: ' + esc(c.bootstrap) + '</p>';
  main.innerHTML = html;
}

function card(k, v) { return '<div class="card"><div class="k">' + esc(k) + '</div><div class="v">' + esc(v) + '</div></div>'; }

async function topicsPage() {
  const t = await api('/api/topics');
  let html = '<h1>Topics</h1>';
  if (!t.topics.length) html += '<p class="muted">No topics yet. <a href="#/create">Create one.</a></p>';
  else {
    html += '<table id="topics"><thead><tr><th>Topic</th><th class="num">Partitions</th><th>Leaders</th><th>Replicas</th><th>ISR</th>' +
      '<th class="num">Log start</th><th class="num">Log end</th><th class="num">Records</th><th>Size</th><th>Retention</th></tr></thead><tbody>';
    for (const x of t.topics) {
      const ps = x.partitions;
      html += '<tr data-topic="' + esc(x.name) + '"><td>' + topicLink(x.name) + '</td><td class="num">' + ps.length + '</td>' +
        '<td>' + esc(ps.map(p => p.leader === null ? '–' : p.leader).join(' ')) + '</td>' +
        '<td>' + esc(ps.map(p => '[' + list(p.replicas) + ']').join(' ')) + '</td>' +
        '<td>' + esc(ps.map(p => '[' + list(p.isr) + ']').join(' ')) + '</td>' +
        '<td class="num">' + esc(ps.map(p => num(p.log_start)).join(' ')) + '</td>' +
        '<td class="num">' + esc(ps.map(p => num(p.log_end)).join(' ')) + '</td>' +
        '<td class="num">' + num(x.records) + '</td>' +
        '<td>' + sizeCell(x.size_bytes, t.metrics_configured) + '</td>' +
        '<td>' + esc(fmtMs(x.retention_ms)) + (x.retention_bytes && Number(x.retention_bytes) >= 0 ? ' / ' + esc(fmtBytes(x.retention_bytes)) : '') + '</td></tr>';
    }
    html += '</tbody></table>';
  }
  if (!t.metrics_configured) html += NO_METRICS;
  main.innerHTML = html;
}

async function topicPage(name, gen) {
  const t = await api('/api/topics/' + encodeURIComponent(name));
  let html = '<h1>Topic ' + esc(t.name) + '</h1>' +
    '<div class="cards">' + card('Partitions', t.partitions.length) + card('Records', num(t.records)) +
    card('Retention', fmtMs(t.retention_ms)) + '<div class="card" id="topic-size" data-bytes="' + esc(t.size_bytes === null ? '' : t.size_bytes) + '"><div class="k">Size</div><div class="v">' +
    sizeCell(t.size_bytes, t.metrics_configured) + '</div></div></div>' + (t.metrics_configured ? '' : NO_METRICS) +
    '<div class="row"><div class="chart"><div class="title">Produced, records/s (last 15 min)</div><div id="chart-produce"></div></div>' +
    '<div class="chart"><div class="title">Consumed (committed by groups), records/s (last 15 min)</div><div id="chart-consume"></div></div></div>' +
    '<h2>Partitions</h2><table><thead><tr><th>Partition</th><th>Leader</th><th>Replicas</th><th>ISR</th><th class="num">Log start</th><th class="num">Log end</th><th class="num">Size</th></tr></thead><tbody>' +
    t.partitions.map(p => '<tr><td>' + p.partition + '</td><td>' + (p.leader === null ? 'none' : p.leader) + '</td><td>' + list(p.replicas) +
      '</td><td>' + list(p.isr) + '</td><td class="num">' + num(p.log_start) + '</td><td class="num">' + num(p.log_end) + '</td><td class="num">' + sizeCell(p.size_bytes, t.metrics_configured) + '</td></tr>').join('') +
    '</tbody></table>' +
    '<div class="row"><div><h2>Produce a test record</h2><form id="produce-form">' +
    '<label for="p-key">Key (empty: none)</label><input id="p-key" name="key">' +
    '<label for="p-value">Value</label><textarea id="p-value" name="value"></textarea>' +
    '<label for="p-headers">Headers, one <code>name=value</code> a line</label><textarea id="p-headers" name="headers"></textarea>' +
    '<button type="submit">Produce</button><div id="produce-result"></div></form></div></div>' +
    '<h2>Live tail <select id="tail-view" style="width:auto"><option value="text">text</option><option value="json">JSON</option><option value="hex">hex</option></select></h2>' +
    '<table class="tail"><thead><tr><th>Partition</th><th class="num">Offset</th><th>Time</th><th>Key</th><th>Value</th><th>Headers</th></tr></thead><tbody id="tail"></tbody></table>';
  main.innerHTML = html;
  document.getElementById('produce-form').addEventListener('submit', ev => { ev.preventDefault(); produce(name); });
  const view = document.getElementById('tail-view');
  const records = [];
  view.addEventListener('change', () => renderTail(records, view.value, 0));
  chartLoop(name, gen);
  tailLoop(name, gen, records, view);
}

async function produce(name) {
  const result = document.getElementById('produce-result');
  const headers = document.getElementById('p-headers').value.split('\n').map(l => l.trim()).filter(l => l).map(l => {
    const i = l.indexOf('=');
    return i < 0 ? { name: l, value: '' } : { name: l.slice(0, i), value: l.slice(i + 1) };
  });
  try {
    const r = await post('/api/topics/' + encodeURIComponent(name) + '/records', {
      key: document.getElementById('p-key').value,
      value: document.getElementById('p-value').value,
      headers: headers,
    });
    showError('');
    result.innerHTML = '<div class="notice">Stored at partition ' + r.partition + ', offset ' + r.offset + '.</div>';
  } catch (e) {
    result.innerHTML = '';
    showError('Could not produce: ' + e.message);
  }
}

function shownValue(v, mode) {
  if (v === null || v === undefined) return '<span class="muted">null</span>';
  let text;
  if (mode === 'hex') text = v.hex.replace(/(..)/g, '$1 ').trim();
  else if (mode === 'json') {
    try { text = JSON.stringify(JSON.parse(v.text), null, 2); } catch (e) { text = v.text; }
  } else text = v.utf8 ? v.text : v.hex.replace(/(..)/g, '$1 ').trim();
  return '<pre>' + esc(text) + (v.truncated ? '\n… (' + v.len + ' bytes in all)' : '') + '</pre>';
}

function renderTail(records, mode, fresh) {
  const body = document.getElementById('tail');
  if (!body) return;
  body.innerHTML = records.map((r, i) => '<tr class="' + (i < fresh ? 'fresh' : '') + '" data-offset="' + r.offset + '"><td>' + r.partition +
    '</td><td class="num">' + r.offset + '</td><td>' + esc(new Date(r.timestamp).toISOString().replace('T', ' ').replace('Z', '')) +
    '</td><td>' + shownValue(r.key, mode) + '</td><td>' + shownValue(r.value, mode) + '</td><td>' +
    r.headers.map(h => '<span class="hdr">' + esc(h.name) + '=' + esc(h.value ? h.value.text : 'null') + '</span>').join('') +
    '</td></tr>').join('') || '<tr><td colspan="6" class="muted">No records yet: produce one and it shows here.</td></tr>';
}

async function tailLoop(name, gen, records, view) {
  let from = '';
  let first = true;
  while (gen === generation) {
    try {
      const r = await api('/api/topics/' + encodeURIComponent(name) + '/records' + (from ? '?from=' + encodeURIComponent(from) : ''));
      if (gen !== generation) return;
      from = r.next;
      const fresh = r.records.slice().sort((a, b) => b.timestamp - a.timestamp || b.offset - a.offset);
      records.unshift(...fresh);
      records.length = Math.min(records.length, MAX_TAIL_ROWS);
      // Records that arrived while the page was open are highlighted.
      if (fresh.length || !document.querySelector('#tail tr')) renderTail(records, view.value, first ? 0 : fresh.length);
      first = false;
    } catch (e) {
      if (gen !== generation) return;
      showError('Live tail: ' + e.message);
      await sleep(1000);
    }
    await sleep(TAIL_POLL_MS);
  }
}

function sleep(ms) { return new Promise(res => setTimeout(res, ms)); }

async function chartLoop(name, gen) {
  while (gen === generation) {
    try {
      const r = await api('/api/topics/' + encodeURIComponent(name) + '/rates');
      if (gen !== generation) return;
      const now = Date.now();
      drawChart('chart-produce', r.rates.map(x => [x[0], x[1]]), now, r.window_ms, '#2458d6', r.interval_ms);
      drawChart('chart-consume', r.rates.map(x => [x[0], x[2]]), now, r.window_ms, '#1a7f37', r.interval_ms);
    } catch (e) {
      if (gen !== generation) return;
      showError('Rates: ' + e.message);
    }
    await sleep(CHART_REFRESH_MS);
  }
}

// A line chart in SVG: points [time ms, value] over the last windowMs.
function drawChart(id, points, now, windowMs, color, intervalMs) {
  const el = document.getElementById(id);
  if (!el) return;
  const W = 600, H = 160, L = 48, R = 8, T = 8, B = 22;
  const start = now - windowMs;
  const pts = points.filter(p => p[0] >= start);
  const max = Math.max(1, ...pts.map(p => p[1]));
  const x = t => L + (t - start) / windowMs * (W - L - R);
  const y = v => T + (1 - v / max) * (H - T - B);
  let svg = '<svg viewBox="0 0 ' + W + ' ' + H + '" preserveAspectRatio="none" role="img">';
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4, yy = y(v);
    svg += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + yy + '" y2="' + yy + '" stroke="#e3e6ec"/>' +
      '<text x="' + (L - 4) + '" y="' + (yy + 4) + '" font-size="10" text-anchor="end" fill="#667085">' + (v >= 100 ? Math.round(v) : v.toFixed(1)) + '</text>';
  }
  for (let m = 15; m >= 0; m -= 5) {
    const xx = x(now - m * 60000);
    svg += '<text x="' + xx + '" y="' + (H - 6) + '" font-size="10" text-anchor="middle" fill="#667085">' + (m ? '-' + m + ' min' : 'now') + '</text>';
  }
  if (pts.length) {
    const line = pts.map(p => x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1)).join(' ');
    const area = x(pts[0][0]).toFixed(1) + ',' + y(0) + ' ' + line + ' ' + x(pts[pts.length - 1][0]).toFixed(1) + ',' + y(0);
    svg += '<polygon points="' + area + '" fill="' + color + '" fill-opacity="0.12"/>' +
      '<polyline points="' + line + '" fill="none" stroke="' + color + '" stroke-width="1.5"/>';
  } else {
    svg += '<text x="' + (W / 2) + '" y="' + (H / 2) + '" text-anchor="middle" font-size="12" fill="#667085">collecting samples (every ' + Math.round(intervalMs / 1000) + ' s)…</text>';
  }
  el.innerHTML = svg + '</svg>';
}

async function groupsPage() {
  const g = await api('/api/groups');
  let html = '<h1>Consumer groups</h1>';
  if (!g.groups.length) html += '<p class="muted">No consumer groups.</p>';
  for (const x of g.groups) {
    const lag = x.partitions.reduce((n, p) => n + (p.lag || 0), 0);
    html += '<h2 data-group="' + esc(x.group) + '">' + esc(x.group) + ' <span class="muted">' + esc(x.state) +
      (x.protocol ? ' · ' + esc(x.protocol) : '') + ' · ' + x.members.length + ' member(s) · total lag ' + num(lag) + '</span></h2>';
    if (x.members.length) {
      html += '<table><thead><tr><th>Member</th><th>Client</th><th>Host</th><th>Assignment</th></tr></thead><tbody>' +
        x.members.map(m => '<tr><td>' + esc(m.member_id) + '</td><td>' + esc(m.client_id) + '</td><td>' + esc(m.client_host) + '</td><td>' +
          esc(Object.entries(m.assignment || {}).map(([t, ps]) => t + ' [' + ps.join(', ') + ']').join('; ')) + '</td></tr>').join('') + '</tbody></table>';
    }
    html += '<table style="margin-top:6px"><thead><tr><th>Topic</th><th>Partition</th><th class="num">Committed</th><th class="num">Log end</th><th class="num">Lag</th><th>Member</th></tr></thead><tbody>' +
      x.partitions.map(p => '<tr><td>' + topicLink(p.topic) + '</td><td>' + p.partition + '</td><td class="num">' + num(p.committed) +
        '</td><td class="num">' + num(p.log_end) + '</td><td class="num">' + num(p.lag) + '</td><td>' + esc(p.member || '') + '</td></tr>').join('') +
      '</tbody></table>';
  }
  main.innerHTML = html;
}

function createPage() {
  main.innerHTML = '<h1>Create a topic</h1><form id="create-form">' +
    '<label for="c-name">Name</label><input id="c-name" name="name" placeholder="orders" required>' +
    '<label for="c-partitions">Partitions</label><input id="c-partitions" name="partitions" type="number" min="1" value="1">' +
    '<label for="c-replication">Replication factor</label><input id="c-replication" name="replication" type="number" min="1" value="1">' +
    '<button type="submit">Create</button><div id="create-result"></div></form>';
  document.getElementById('create-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    const name = document.getElementById('c-name').value;
    try {
      await post('/api/topics', {
        name: name,
        partitions: document.getElementById('c-partitions').value,
        replication: document.getElementById('c-replication').value,
      });
      showError('');
      document.getElementById('create-result').innerHTML = '<div class="notice">Created ' + topicLink(name.trim()) + '.</div>';
    } catch (e) {
      document.getElementById('create-result').innerHTML = '';
      showError('Could not create the topic: ' + e.message);
    }
  });
}

// ---- routing ----

async function route() {
  const gen = ++generation;
  showError('');
  const hash = location.hash.replace(/^#/, '') || '/';
  const parts = hash.split('/').filter(p => p);
  const page = parts[0] || 'overview';
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === page || (page === 'topic' && a.dataset.nav === 'topics'));
  }
  main.innerHTML = '<p class="muted">Loading…</p>';
  try {
    if (page === 'overview') await overview();
    else if (page === 'topics') await topicsPage();
    else if (page === 'topic' && parts[1]) await topicPage(decodeURIComponent(parts.slice(1).join('/')), gen);
    else if (page === 'groups') await groupsPage();
    else if (page === 'create') createPage();
    else main.innerHTML = '<h1>Not found</h1><p>No page at ' + esc(hash) + '. <a href="#/">Overview</a></p>';
    document.title = 'Rill console · ' + page;
  } catch (e) {
    if (gen === generation) {
      main.innerHTML = '';
      showError(e.message);
    }
  }
}

window.addEventListener('hashchange', route);
route();
refreshHealth();
setInterval(refreshHealth, HEALTH_REFRESH_MS);
