'use strict';
// The web console (`rill console`) in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core): a real SPU and a real
// console, both the debug `rill` binary (RILL_BIN, else
// $CARGO_TARGET_DIR/debug/rill), started on port 0 and stopped by PID.
// Screenshots of every page go to $CARGO_TARGET_DIR/console-screenshots/.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..', '..', '..');
const TARGET = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
const RILL = process.env.RILL_BIN || path.join(TARGET, 'debug', 'rill');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(TARGET, 'console-screenshots');
// How long a page may take to show what it shows.
const PAGE_TIMEOUT_MS = 15000;
// A record produced while the topic page is open shows in its live tail
// within this (the bound).
const TAIL_BOUND_MS = 1000;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-console-test-'));
const procs = [];
let spuAddr;
let consoleUrl;
let context;
let page;
// Console errors and uncaught page errors since the last check.
let errors = [];

/** Starts `rill args...` and resolves to its first stdout line. */
async function startRill(name, args) {
  const log = fs.openSync(path.join(work, name + '.log'), 'w');
  const proc = spawn(RILL, args, { stdio: ['ignore', 'pipe', log], env: { ...process.env, RILL_HOME: path.join(work, 'home') } });
  fs.closeSync(log);
  procs.push(proc);
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.exitedPromise = exited;
  const lines = readline.createInterface({ input: proc.stdout });
  const first = await Promise.race([
    new Promise((resolve) => lines.once('line', resolve)),
    exited.then((code) => { throw new Error(`${name} exited with ${code}; see ${work}/${name}.log`); }),
  ]);
  lines.close();
  proc.stdout.resume();
  return first;
}

/** Runs `rill args...` against the test's SPU and returns its stdout. */
function rill(args, input) {
  return execFileSync(RILL, args, {
    input: input || '',
    env: { ...process.env, RILL_ADDR: spuAddr, RILL_HOME: path.join(work, 'home') },
    encoding: 'utf8',
    timeout: 30000,
  });
}

before(async () => {
  assert.ok(fs.existsSync(RILL), `${RILL} is missing: run \`cargo build -p rill-cli\` first`);
  fs.mkdirSync(SHOTS, { recursive: true });
  // The SPU records its metrics address where `rill cluster start` does,
  // $RILL_HOME/metrics_addr, which the console reads by default.
  fs.mkdirSync(path.join(work, 'home'), { recursive: true });
  const line = await startRill('spu', ['cluster', 'start', '--foreground', '--listen', '127.0.0.1:0', '--data-dir', path.join(work, 'data'),
    '--metrics-addr-file', path.join(work, 'home', 'metrics_addr')]);
  spuAddr = line.replace('rill SPU listening on ', '').trim();
  const consoleLine = await startRill('console', ['console', '--listen', '127.0.0.1:0', '--bootstrap', spuAddr]);
  const m = /(http:\/\/[^ ]+\/)/.exec(consoleLine);
  assert.ok(m, `no address in ${JSON.stringify(consoleLine)}`);
  consoleUrl = m[1];
  rill(['topic', 'create', 'browser-orders', '--partitions', '2']);
  context = await chromium.launchPersistentContext(path.join(work, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
});

after(async () => {
  if (context) await context.close();
  for (const proc of procs.reverse()) {
    if (proc.exitCode === null && proc.signalCode === null) {
      process.kill(proc.pid, 'SIGTERM');
      const timer = new Promise((resolve) => setTimeout(() => resolve('timeout'), 15000).unref());
      if ((await Promise.race([proc.exitedPromise, timer])) === 'timeout') process.kill(proc.pid, 'SIGKILL');
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
});

/** Opens `hash`, waits for `selector`, checks no errors, takes a screenshot. */
async function visit(hash, selector, shot) {
  errors = [];
  await page.goto(consoleUrl + hash);
  await page.waitForSelector(selector);
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.screenshot({ path: path.join(SHOTS, shot + '.png'), fullPage: true });
  assert.deepEqual(errors, [], `errors on ${hash}`);
}

test('every page loads without errors', async () => {
  await visit('#/', '.cards', 'overview');
  assert.match(await page.textContent('main'), /SPUs/);
  // SPU health from the metrics endpoint: ready, with its memory in use.
  const [, ready, rss] = await page.$$eval('#spu-metrics tbody tr:first-child td', (tds) => tds.map((td) => td.textContent));
  assert.equal(ready, 'ready');
  assert.match(rss, /^[\d.]+ (KiB|MiB|GiB)$/);
  await visit('#/topics', 'tr[data-topic="browser-orders"]', 'topics');
  await visit('#/topic/browser-orders', '#tail tr', 'topic');
  await visit('#/groups', 'h1', 'groups');
  await visit('#/create', '#create-form', 'create');
  const missing = await page.goto(consoleUrl + 'no-such-file');
  assert.equal(missing.status(), 404);
});

test('the topic list shows a topic created by the test', async () => {
  rill(['topic', 'create', 'browser-listed', '--partitions', '3']);
  await visit('#/topics', 'tr[data-topic="browser-listed"]', 'topics-listed');
  const row = await page.textContent('tr[data-topic="browser-listed"]');
  assert.match(row, /browser-listed\s*3/);
});

test('the live tail shows a record produced after the page opened, within a second', async () => {
  await visit('#/topic/browser-orders', '#tail tr', 'topic-before');
  const value = `tail-${Date.now()}`;
  rill(['produce', 'browser-orders'], value + '\n');
  const produced = Date.now();
  await page.waitForFunction((v) => document.getElementById('tail').textContent.includes(v), value, { timeout: 5000 });
  const took = Date.now() - produced;
  console.log(`live tail: the record showed ${took} ms after \`rill produce\` returned`);
  assert.ok(took <= TAIL_BOUND_MS, `the record showed after ${took} ms`);
  assert.deepEqual(errors, []);
});

test('the produce form stores a record that `rill consume` reads', async () => {
  await visit('#/topic/browser-orders', '#produce-form', 'topic-produce');
  const value = JSON.stringify({ from: 'the form', at: Date.now() });
  await page.fill('#p-key', 'form-key');
  await page.fill('#p-value', value);
  await page.fill('#p-headers', 'source=browser\ntrace=1');
  await page.click('#produce-form button');
  await page.waitForSelector('#produce-result .notice');
  const consumed = rill(['consume', 'browser-orders', '-A', '-B', '-d', '-k']);
  assert.ok(consumed.includes(`[form-key] ${value}`), consumed);
  // The tail shows it too, with its headers; the JSON view pretty-prints it.
  await page.waitForFunction((v) => document.getElementById('tail').textContent.includes(v), value);
  await page.selectOption('#tail-view', 'json');
  assert.match(await page.textContent('#tail'), /"from": "the form"/);
  assert.match(await page.textContent('#tail'), /source=browser/);
  assert.deepEqual(errors, []);
});

test('the create-topic form creates a topic, and bad input is shown as an error', async () => {
  await visit('#/create', '#create-form', 'create-form');
  await page.fill('#c-name', 'from-the-form');
  await page.fill('#c-partitions', '2');
  await page.click('#create-form button');
  await page.waitForSelector('#create-result .notice');
  assert.match(rill(['topic', 'list']), /from-the-form/);
  // A bad name: the API answers 400 (Chromium logs the failed request as
  // a console error: expected here) and the page says why.
  await page.fill('#c-name', 'bad name!');
  await page.click('#create-form button');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error'), /invalid character/);
  await page.screenshot({ path: path.join(SHOTS, 'create-error.png'), fullPage: true });
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
});

test('groups and rate charts, for the README screenshot', async () => {
  // Records produced and consumed by a group over a few sampler intervals
  // (3 s), so the charts have lines and the groups page a group with lag.
  for (let i = 0; i < 4; i++) {
    rill(['produce', 'browser-orders'], Array.from({ length: 40 + 20 * i }, (_, n) => JSON.stringify({ order: n, batch: i })).join('\n') + '\n');
    rill(['consume', 'browser-orders', '-G', 'billing', '-d']);
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
  rill(['produce', 'browser-orders'], 'one more, not yet consumed\n');
  await visit('#/groups', 'h2[data-group="billing"]', 'groups');
  assert.match(await page.textContent('main'), /billing/);
  await visit('#/topic/browser-orders', '#chart-produce polyline', 'topic');
  await page.waitForSelector('#chart-consume polyline');
  // The size comes from the SPU's metrics endpoint: a number of bytes, the
  // sum of the partitions' sizes the page lists.
  const sizeText = await page.textContent('#topic-size .v');
  assert.doesNotMatch(sizeText, /n\/a/);
  const bytes = Number(await page.getAttribute('#topic-size', 'data-bytes'));
  assert.ok(Number.isInteger(bytes) && bytes > 0, `topic size ${sizeText} (${bytes} bytes)`);
  const topic = await (await fetch(consoleUrl + 'api/topics/browser-orders')).json();
  const sum = topic.partitions.reduce((n, p) => n + p.size_bytes, 0);
  assert.ok(sum >= bytes, `partitions sum to ${sum}, the page showed ${bytes}`);
  assert.ok(topic.partitions.every((p) => Number.isInteger(p.size_bytes)), JSON.stringify(topic.partitions));
  await page.screenshot({ path: path.join(SHOTS, 'topic.png'), fullPage: true });
  // The README's picture: the top of the topic page (charts, partitions,
  // the form and the first rows of the tail).
  await page.screenshot({ path: path.join(SHOTS, 'console-topic.png') });
  assert.deepEqual(errors, []);
});
