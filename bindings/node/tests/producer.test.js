'use strict';
// The producer against a real SPU: outputs and offsets, partitioning,
// batching of many concurrent sends, settings, errors with their codes.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const rillPkg = require('..');
const { Rill, TopicProducerConfigBuilder, DeliverySemantic, Offset } = rillPkg;
const { Spu, newTopic, readAll } = require('./spu');
const { javaMurmur2, javaPartition } = require('./murmur');

let spu;
let rill;

before(async () => {
  spu = new Spu();
  await spu.start();
  rill = await Rill.connect(spu.addr);
});

after(async () => {
  await spu.cleanup();
});

test('the JavaScript murmur2 and the addon match Kafka\'s published vectors', () => {
  // Kafka's UtilsTest.testMurmur2.
  const vectors = {
    21: -973932308,
    foobar: -790332482,
    'a-little-bit-long-string': -985981536,
    'a-little-bit-longer-string': -1486304829,
    lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8: -58897971,
    abc: 479470107,
  };
  for (const [key, expected] of Object.entries(vectors)) {
    assert.equal(javaMurmur2(Buffer.from(key)), expected, key);
    assert.equal(rillPkg.murmur2(key), expected, key);
  }
  assert.equal(rillPkg.partitionForKey('foobar', 7), javaPartition(Buffer.from('foobar'), 7));
});

test('send resolves at once and wait() gives consecutive offsets', async () => {
  const topic = await newTopic(rill);
  const producer = await rill.topicProducer(topic); // linger 100 ms by default
  const started = performance.now();
  const outputs = [];
  for (let i = 0; i < 100; i++) outputs.push(await producer.send('k', `value ${i}`));
  // Waiting for each batch would take 100 x linger = 10 s.
  assert.ok(performance.now() - started < 1000, 'send does not wait for the batch');
  const mds = await Promise.all(outputs.map((o) => o.wait()));
  assert.deepEqual(mds.map((m) => m.offset), [...Array(100).keys()]);
  assert.deepEqual(new Set(mds.map((m) => m.partition)), new Set([0]));
  assert.deepEqual({ ...mds[5] }, { partition: 0, offset: 5 });
  assert.equal(mds[5].partitionId(), 0);
  assert.deepEqual({ ...outputs[0].tryWait() }, { partition: 0, offset: 0 });
});

test('10,000 concurrent sends are batched and resolve with contiguous offsets, in order', async () => {
  const topic = await newTopic(rill);
  const producer = await rill.topicProducerWithConfig(topic, { linger: 20, batchSize: 64 * 1024 });
  const n = 10000;
  const started = performance.now();
  const outputs = await Promise.all(Array.from({ length: n }, (_, i) => producer.send(null, `record-${i}`)));
  const mds = await Promise.all(outputs.map((o) => o.wait()));
  const elapsed = performance.now() - started;
  assert.deepEqual(mds.map((m) => m.offset), [...Array(n).keys()], 'offsets 0..9999 in send order');
  // One request per record would be 10,000 round trips; batches of 64 KiB
  // with 20 ms linger take a few dozen.
  assert.ok(elapsed < 10000, `took ${elapsed} ms`);
  const records = await readAll(rill, topic, n);
  assert.equal(records.length, n);
  records.forEach((r, i) => {
    assert.equal(r.offset, i);
    assert.equal(r.valueString(), `record-${i}`);
  });
});

test('keyed records land where the Java client puts them', async () => {
  const partitions = 5;
  const topic = await newTopic(rill, partitions);
  const producer = await rill.topicProducer(topic);
  const keys = [...Array(200).keys()].map((i) => Buffer.from(`user-${i}`));
  keys.push(Buffer.alloc(0), Buffer.from('a'), Buffer.from([0xff, 0x00, 0x10]));
  const outputs = await Promise.all(keys.map((k) => producer.send(k, 'v')));
  const mds = await Promise.all(outputs.map((o) => o.wait()));
  const seen = new Set();
  mds.forEach((m, i) => {
    assert.equal(m.partition, javaPartition(keys[i], partitions), keys[i].toString('hex'));
    seen.add(m.partition);
  });
  assert.equal(seen.size, partitions, '200 keys reach every partition');
  // A string key hashes as its UTF-8 bytes.
  const md = await (await producer.send('user-7', 'v')).wait();
  assert.equal(md.partition, javaPartition(Buffer.from('user-7'), partitions));
  // And the records are where the metadata says.
  const stream = (await rill.partitionConsumer(topic, md.partition)).stream(Offset.absolute(md.offset));
  const back = await stream.next();
  assert.equal(back.keyString(), 'user-7');
  assert.equal(back.partition, md.partition);
});

test('keyless records go round-robin', async () => {
  const topic = await newTopic(rill, 4);
  const producer = await rill.topicProducer(topic);
  const parts = [];
  for (let i = 0; i < 24; i++) parts.push((await (await producer.send(null, `r${i}`)).wait()).partition);
  for (let i = 1; i < parts.length; i++) assert.equal(parts[i], (parts[i - 1] + 1) % 4, String(parts));
  assert.deepEqual([...parts.slice(0, 4)].sort(), [0, 1, 2, 3]);
});

test('sendAll, flush, headers, and the records read back', async () => {
  const topic = await newTopic(rill);
  const producer = await rill.topicProducerWithConfig(topic, { linger: 5000 });
  const first = await producer.send(null, 'plain text', { trace: Buffer.from('abc'), kind: 'greeting' });
  const many = await producer.sendAll([
    ['a', Buffer.from('1')],
    [Buffer.from('b'), '2'],
    [null, new Uint8Array([51])],
  ]);
  assert.equal(first.tryWait(), null, 'linger 5 s: nothing sent yet');
  await producer.flush();
  assert.notEqual(first.tryWait(), null, 'flush waited for the answer');
  assert.deepEqual(await Promise.all(many.map(async (o) => (await o.wait()).offset)), [1, 2, 3]);
  const records = await readAll(rill, topic, 4);
  assert.deepEqual(
    records.map((r) => [r.key && r.key.toString(), r.value.toString()]),
    [[null, 'plain text'], ['a', '1'], ['b', '2'], [null, '3']],
  );
  assert.deepEqual(records[0].headers, [['trace', Buffer.from('abc')], ['kind', Buffer.from('greeting')]]);
  assert.ok(Buffer.isBuffer(records[1].key) && records[1].keyString() === 'a');
  assert.ok(Math.abs(records[0].timestamp - Date.now()) < 60000, 'a millisecond timestamp');
});

test('every setting reaches the producer: builder and object, all compressions', async () => {
  const policy = { maxRetries: 5, initialDelayMs: 10, maxDelayMs: 2000, timeoutMs: 10000, strategy: 'exponential' };
  for (const compression of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
    const topic = await newTopic(rill);
    const config = new TopicProducerConfigBuilder()
      .batchSize(4096)
      .linger(0)
      .compression(compression)
      .deliverySemantic(DeliverySemantic.atLeastOnce(policy))
      .isolation('readCommitted')
      .timeout(3000)
      .maxRequestSize(1 << 20)
      .bufferMemory(1 << 22)
      .partitioner('sticky')
      .build();
    const producer = await rill.topicProducerWithConfig(topic, config);
    const outs = await Promise.all(Array.from({ length: 200 }, () => producer.send(null, 'x'.repeat(100))));
    const offsets = await Promise.all(outs.map(async (o) => (await o.wait()).offset));
    assert.deepEqual(offsets, [...Array(200).keys()], compression);
    const back = await readAll(rill, topic, 200);
    assert.equal(back.length, 200, compression);
    assert.ok(back.every((r) => r.value.toString() === 'x'.repeat(100)), compression);
  }
  const topic = await newTopic(rill);
  const producer = await rill.topicProducerWithConfig(topic, {
    batchSize: 1024,
    linger: 1,
    compression: 'zstd',
    deliverySemantic: 'atMostOnce',
    isolation: 'readUncommitted',
  });
  assert.equal((await (await producer.send(null, 'y')).wait()).offset, 0);
});

test('bad settings are ConfigErrors, bad arguments TypeErrors', async () => {
  const { ConfigError, RillError } = rillPkg;
  assert.throws(() => new TopicProducerConfigBuilder().batchSize(4 << 20).build(), (e) => {
    assert.ok(e instanceof ConfigError && e instanceof RillError && e instanceof Error);
    assert.match(e.message, /batch_size/);
    assert.equal(e.code, null);
    return true;
  });
  assert.throws(() => new TopicProducerConfigBuilder().compression('brotli').build(), ConfigError);
  assert.throws(
    () => new TopicProducerConfigBuilder().idempotent(true).deliverySemantic('atMostOnce').build(),
    /idempotence/,
  );
  const topic = await newTopic(rill);
  await assert.rejects(rill.topicProducerWithConfig(topic, { lingr: 5 }), /unknown setting "lingr"/);
  await assert.rejects(
    rill.topicProducerWithConfig(topic, { deliverySemantic: { atLeastOnce: { strategy: 'random' } } }),
    ConfigError,
  );
  await assert.rejects(rill.topicProducerWithConfig(topic, { linger: -1 }), ConfigError);
  const producer = await rill.topicProducer(topic);
  await assert.rejects(producer.send(null, 42), TypeError);
  await assert.rejects(producer.send({}, 'v'), TypeError);
});

test('a record too large and an unknown topic are errors with their codes', async () => {
  const { RecordTooLargeError, TopicNotFoundError, RillError } = rillPkg;
  const topic = await newTopic(rill);
  const producer = await rill.topicProducerWithConfig(topic, { maxRequestSize: 1024 });
  await assert.rejects(producer.send(null, Buffer.alloc(2000)), (e) => {
    assert.ok(e instanceof RecordTooLargeError && e instanceof RillError);
    assert.match(e.message, /max_request_size/);
    assert.equal(e.retriable, false);
    assert.equal(e.name, 'RecordTooLargeError');
    return true;
  });
  assert.equal((await (await producer.send(null, 'small')).wait()).offset, 0, 'the producer goes on');
  await assert.rejects(rill.topicProducer('no-such-topic'), (e) => {
    assert.ok(e instanceof TopicNotFoundError);
    assert.match(e.message, /no-such-topic/);
    return true;
  });
  await assert.rejects(rill.partitionConsumer('no-such-topic', 0), TopicNotFoundError);
});

test('close delivers what is pending, then refuses sends', async () => {
  const { ProducerClosedError } = rillPkg;
  const topic = await newTopic(rill);
  const producer = await rill.topicProducerWithConfig(topic, { linger: 5000 });
  const out = await producer.send(null, 'last words');
  await producer.close();
  assert.deepEqual({ ...out.tryWait() }, { partition: 0, offset: 0 }, 'close flushed');
  await assert.rejects(producer.send(null, 'too late'), ProducerClosedError);
});
