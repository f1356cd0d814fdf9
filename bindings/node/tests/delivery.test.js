'use strict';
// Delivery semantics with the SPU going away: at-least-once loses nothing
// across a restart, at-most-once reports the failure, and a producer whose
// SPU is down stops taking records once bufferMemory is full, while the
// event loop goes on.

const { test } = require('node:test');
const assert = require('node:assert/strict');

const { Rill, RillConnectionError, RillError } = require('..');
const { Spu, readAll } = require('./spu');

const patient = {
  atLeastOnce: { maxRetries: 10000, initialDelayMs: 100, maxDelayMs: 300, timeoutMs: 60000, strategy: 'fixed' },
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function withSpu(f) {
  const spu = new Spu();
  await spu.start();
  try {
    await f(spu);
  } finally {
    await spu.cleanup();
  }
}

test('at-least-once loses nothing across an SPU restart, order per key kept', () =>
  withSpu(async (spu) => {
    const rill = await Rill.connect(spu.addr);
    await rill.admin().createTopic('alo', { partitions: 2 });
    const producer = await rill.topicProducerWithConfig('alo', { linger: 10, deliverySemantic: patient });
    const before = [];
    for (let i = 0; i < 100; i++) before.push(await producer.send(`k${i % 5}`, `before-${i}`));
    await Promise.all(before.map((o) => o.wait()));

    await spu.stop();
    const during = [];
    for (let i = 0; i < 100; i++) during.push(await producer.send(`k${i % 5}`, `during-${i}`));
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    await sleep(1500);
    clearInterval(ticker);
    assert.ok(during.every((o) => o.tryWait() === null), 'nothing can be answered while the SPU is down');
    assert.ok(ticks > 50, `the event loop runs while the producer retries (${ticks} ticks)`);
    await spu.restart();

    const mds = await Promise.all(during.map((o) => o.wait()));
    assert.equal(new Set(mds.map((m) => `${m.partition}/${m.offset}`)).size, 100);
    const values = (await readAll(rill, 'alo', 200)).map((r) => r.valueString());
    const expected = new Set([...Array(100).keys()].flatMap((i) => [`before-${i}`, `during-${i}`]));
    assert.deepEqual(new Set(values), expected, 'every acknowledged record is stored');
    assert.equal(values.length, 200, 'and none twice');
    for (let k = 0; k < 5; k++) {
      const mine = values.filter((v) => v.startsWith('during-') && Number(v.slice(7)) % 5 === k).map((v) => Number(v.slice(7)));
      assert.deepEqual(mine, [...mine].sort((a, b) => a - b), `order of key k${k}`);
    }
  }));

test('at-most-once reports the SPU being down as a RillConnectionError', () =>
  withSpu(async (spu) => {
    const rill = await Rill.connect(spu.addr);
    await rill.admin().createTopic('amo', 1);
    const producer = await rill.topicProducerWithConfig('amo', { linger: 0, deliverySemantic: 'atMostOnce' });
    assert.equal((await (await producer.send(null, 'while up')).wait()).offset, 0);
    await spu.stop();
    const out = await producer.send(null, 'while down');
    const started = performance.now();
    await assert.rejects(out.wait(), (e) => {
      assert.ok(e instanceof RillConnectionError && e instanceof RillError);
      assert.ok(e.message.includes(spu.addr), e.message);
      assert.equal(e.code, null);
      assert.equal(e.retriable, true);
      return true;
    });
    assert.ok(performance.now() - started < 30000, 'no retry loop under at-most-once');
  }));

test('with the SPU down, send waits once bufferMemory is full and goes on when it is back', () =>
  withSpu(async (spu) => {
    const rill = await Rill.connect(spu.addr);
    await rill.admin().createTopic('mem', 1);
    const bufferMemory = 256 * 1024;
    const record = 1000;
    const producer = await rill.topicProducerWithConfig('mem', {
      batchSize: 16 * 1024,
      maxRequestSize: 64 * 1024,
      bufferMemory,
      linger: 5,
      deliverySemantic: patient,
    });
    await spu.stop();
    const total = 2000; // 2 MB: eight times the buffer
    let sent = 0;
    const outputs = [];
    const sending = (async () => {
      for (let i = 0; i < total; i++) {
        outputs.push(await producer.send(null, `${String(i).padStart(8, '0')}${'x'.repeat(record - 8)}`));
        sent++;
      }
    })();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    await sleep(3000);
    const stuckAt = sent;
    await sleep(1000);
    clearInterval(ticker);
    assert.equal(sent, stuckAt, 'no record got in without room');
    assert.ok(stuckAt > 0 && stuckAt * record <= bufferMemory, `${stuckAt} records buffered`);
    assert.ok(ticks > 100, `the event loop is free while send waits (${ticks} ticks)`);

    await spu.restart();
    await sending;
    assert.equal(sent, total, 'room again once the SPU answers');
    await producer.flush();
    const offsets = await Promise.all(outputs.map(async (o) => (await o.wait()).offset));
    assert.deepEqual(offsets, [...Array(total).keys()]);
    assert.equal((await readAll(rill, 'mem', total)).length, total);
  }));
