'use strict';
// A real SPU for the tests: the `rill` binary (RILL_BIN, else the
// workspace's debug build, CARGO_TARGET_DIR honoured) on 127.0.0.1 port 0
// with its own data directory; the test that starts it stops it by PID.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const readline = require('node:readline');

const ROOT = path.resolve(__dirname, '..', '..', '..');

function rillBinary() {
  if (process.env.RILL_BIN) return process.env.RILL_BIN;
  const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
  return path.join(target, 'debug', 'rill');
}

class Spu {
  constructor(workdir) {
    this.workdir = workdir || fs.mkdtempSync(path.join(os.tmpdir(), 'rill-node-spu-'));
    this.dataDir = path.join(this.workdir, 'data');
    this.addr = null;
    this.proc = null;
    this.starts = 0;
  }

  /** Starts the SPU on `listen` and resolves to its address. */
  async start(listen = '127.0.0.1:0') {
    const binary = rillBinary();
    if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run \`cargo build -p rill-cli\` first`);
    this.starts += 1;
    const log = fs.openSync(path.join(this.workdir, `spu-${this.starts}.log`), 'w');
    const proc = spawn(
      binary,
      ['cluster', 'start', '--foreground', '--listen', listen, '--data-dir', this.dataDir],
      { stdio: ['ignore', 'pipe', log], env: { ...process.env, RILL_HOME: path.join(this.workdir, 'home') } },
    );
    fs.closeSync(log);
    this.proc = proc;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    this.exited = exited;
    const lines = readline.createInterface({ input: proc.stdout });
    const first = await Promise.race([
      new Promise((resolve) => lines.once('line', resolve)),
      exited.then((code) => `(exited with ${code})`),
    ]);
    lines.close();
    proc.stdout.resume(); // never let a full pipe stall it
    const prefix = 'rill SPU listening on ';
    if (typeof first !== 'string' || !first.startsWith(prefix)) {
      await this.stop();
      throw new Error(`the SPU did not start: ${first}, see ${this.workdir}`);
    }
    this.addr = first.slice(prefix.length).trim();
    return this.addr;
  }

  /** SIGTERM by PID, then SIGKILL by PID if it lingers. */
  async stop() {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = this.exited;
    process.kill(proc.pid, 'SIGTERM');
    const timer = new Promise((resolve) => setTimeout(() => resolve('timeout'), 15000).unref());
    if ((await Promise.race([exited, timer])) === 'timeout') {
      process.kill(proc.pid, 'SIGKILL');
      await exited;
    }
  }

  /** Starts it again on the same address and data directory. */
  async restart() {
    return this.start(this.addr);
  }

  /** Stops it and removes its directory. */
  async cleanup() {
    await this.stop();
    fs.rmSync(this.workdir, { recursive: true, force: true });
  }
}

/** A fresh topic name. */
function topicName() {
  return `t-${crypto.randomBytes(5).toString('hex')}`;
}

/** A new topic with `partitions` on `rill`'s cluster. */
async function newTopic(rill, partitions = 1) {
  const name = topicName();
  await rill.admin().createTopic(name, { partitions });
  return name;
}

/** The first `count` records of `topic` (all partitions), or fails on a shortfall. */
async function readAll(rill, topic, count, partitions) {
  const { Offset } = require('..');
  const stream = rill.consumer(topic, { partitions, offset: Offset.beginning() });
  const out = [];
  while (out.length < count) {
    const r = await stream.tryNext();
    if (r === null) break;
    out.push(r);
  }
  return out;
}

module.exports = { Spu, rillBinary, topicName, newTopic, readAll, ROOT };
