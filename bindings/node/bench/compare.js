'use strict';
// Records/s of @rill/client beside kafkajs, on the same SPU in the same run:
// COUNT records (1,000,000) of SIZE bytes (100), keyless, one partition,
// acks 1 (Rill's readUncommitted), each client on a topic of its own. The
// runs alternate (rill, kafkajs, rill, kafkajs ... ROUNDS times, 2) and the
// best of each is reported.
//
//   npm run build && node bench/compare.js          # the release addon
//   COUNT=200000 ROUNDS=3 node bench/compare.js
//
// The SPU is the release `rill` binary (RILL_BIN, else target/release/rill
// under CARGO_TARGET_DIR or the workspace, else the debug one), started
// here on 127.0.0.1 and stopped by PID at the end. RILL_ADDR uses a running
// SPU instead.

const fs = require('node:fs');
const path = require('node:path');
const { Kafka, logLevel } = require('kafkajs');

const { Rill } = require('..');
const { Spu, ROOT } = require('../tests/spu');

const COUNT = Number(process.env.COUNT || 1_000_000);
const SIZE = Number(process.env.SIZE || 100);
const ROUNDS = Number(process.env.ROUNDS || 2);

function releaseBinary() {
  if (process.env.RILL_BIN) return process.env.RILL_BIN;
  const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
  const release = path.join(target, 'release', 'rill');
  return fs.existsSync(release) ? release : undefined;
}

async function runRill(rill, topic, value) {
  const producer = await rill.topicProducerWithConfig(topic, { linger: 5, batchSize: 256 * 1024 });
  const started = performance.now();
  let last;
  for (let i = 0; i < COUNT; i++) last = await producer.send(null, value);
  await producer.flush();
  const md = await last.wait();
  const seconds = (performance.now() - started) / 1000;
  await producer.close();
  return { seconds, lastOffset: md.offset };
}

async function runKafkajs(addr, topic, value) {
  const kafka = new Kafka({ clientId: 'bench', brokers: [addr], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  // kafkajs sends what one send() call is given as one batch: 5,000 records
  // (about 600 KB, under the topic's 1 MiB max.message.bytes), 4 calls in
  // flight (its usual way to go fast).
  const chunk = Math.max(1, Math.floor(600_000 / (SIZE + 20)));
  const inFlight = 4;
  const messages = Array.from({ length: chunk }, () => ({ value }));
  const started = performance.now();
  let next = 0;
  let lastOffset = -1;
  async function worker() {
    while (next < COUNT) {
      const n = Math.min(chunk, COUNT - next);
      next += n;
      const [r] = await producer.send({ topic, acks: 1, messages: n === chunk ? messages : messages.slice(0, n) });
      lastOffset = Math.max(lastOffset, Number(r.baseOffset) + n - 1);
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  await producer.disconnect();
  return { seconds, lastOffset };
}

async function main() {
  let spu = null;
  let addr = process.env.RILL_ADDR;
  if (!addr) {
    const bin = releaseBinary();
    if (bin) process.env.RILL_BIN = bin;
    spu = new Spu();
    addr = await spu.start();
  }
  try {
    const rill = await Rill.connect(addr);
    const value = Buffer.alloc(SIZE, 'x');
    const best = { rill: Infinity, kafkajs: Infinity };
    for (let round = 0; round < ROUNDS; round++) {
      for (const client of ['rill', 'kafkajs']) {
        const topic = `bench-${client}-${round}-${Date.now()}`;
        await rill.admin().createTopic(topic, 1);
        const r = client === 'rill' ? await runRill(rill, topic, value) : await runKafkajs(addr, topic, value);
        if (r.lastOffset !== COUNT - 1) throw new Error(`${client}: last offset ${r.lastOffset}, expected ${COUNT - 1}`);
        best[client] = Math.min(best[client], r.seconds);
        console.log(
          `round ${round + 1} ${client.padEnd(7)} ${COUNT} x ${SIZE} B in ${r.seconds.toFixed(2)} s: ${Math.round(COUNT / r.seconds).toLocaleString('en')} records/s`,
        );
        await rill.admin().deleteTopic(topic);
      }
    }
    const rate = (c) => COUNT / best[c];
    console.log(
      `best: rill ${Math.round(rate('rill')).toLocaleString('en')} records/s, kafkajs ${Math.round(rate('kafkajs')).toLocaleString('en')} records/s: ${(rate('rill') / rate('kafkajs')).toFixed(1)}x`,
    );
  } finally {
    if (spu) await spu.cleanup();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
