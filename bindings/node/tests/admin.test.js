'use strict';
// Topic administration, consumers and connection errors against a real SPU.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');

const { Rill, Offset, BrokerError, TopicNotFoundError, RillConnectionError, RillError } = require('..');
const { Spu, topicName, newTopic } = require('./spu');

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

test('create, list and delete topics', async () => {
  const admin = rill.admin();
  const a = topicName();
  const b = topicName();
  await admin.createTopic(a, { partitions: 3, configs: { 'retention.ms': '60000' } });
  await admin.createTopic(b);
  const topics = await admin.listTopics();
  const mine = topics.filter((t) => t.name === a || t.name === b);
  assert.deepEqual(
    mine.map((t) => ({ ...t })),
    [{ name: a, partitions: 3 }, { name: b, partitions: 1 }].sort((x, y) => (x.name < y.name ? -1 : 1)),
  );
  const names = topics.map((t) => t.name);
  assert.deepEqual(names, [...names].sort(), 'sorted by name');
  await admin.deleteTopic(a);
  assert.ok(!(await admin.listTopics()).some((t) => t.name === a));
});

test('admin errors carry the Kafka code and name', async () => {
  const admin = rill.admin();
  const name = await newTopic(rill);
  await assert.rejects(admin.createTopic(name), (e) => {
    assert.ok(e instanceof BrokerError && e instanceof RillError && e instanceof Error);
    assert.equal(e.code, 36);
    assert.equal(e.errorName, 'TOPIC_ALREADY_EXISTS');
    assert.match(e.message, /TOPIC_ALREADY_EXISTS/);
    return true;
  });
  await assert.rejects(admin.deleteTopic('never-made'), (e) => {
    assert.ok(e instanceof TopicNotFoundError);
    assert.equal(e.code, 3);
    assert.equal(e.errorName, 'UNKNOWN_TOPIC_OR_PARTITION');
    return true;
  });
  await assert.rejects(admin.createTopic('bad name!'), (e) => {
    assert.equal(e.code, 17);
    assert.equal(e.errorName, 'INVALID_TOPIC_EXCEPTION');
    return true;
  });
  await assert.rejects(admin.createTopic(topicName(), { partitions: 0 }), (e) => e instanceof RillError && e.code !== null);
});

test('connecting where no SPU listens is a RillConnectionError', async () => {
  // A port that was free a moment ago.
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  await assert.rejects(Rill.connect(`127.0.0.1:${port}`), (e) => {
    assert.ok(e instanceof RillConnectionError);
    assert.ok(e.message.includes(`127.0.0.1:${port}`), e.message);
    assert.equal(e.retriable, true);
    return true;
  });
  assert.equal(rill.addr, spu.addr);
});

test('a partition consumer streams from each kind of offset, for await and tryNext', async () => {
  const topic = await newTopic(rill);
  const producer = await rill.topicProducerWithConfig(topic, { linger: 0 });
  const outs = [];
  for (let i = 0; i < 10; i++) outs.push(await producer.send(`k${i}`, `v${i}`));
  await producer.flush();
  const consumer = await rill.partitionConsumer(topic, 0);

  const seen = [];
  for await (const record of consumer.stream(Offset.beginning())) {
    seen.push([record.offset, record.keyString(), record.valueString()]);
    if (seen.length === 10) break;
  }
  assert.deepEqual(seen, [...Array(10).keys()].map((i) => [i, `k${i}`, `v${i}`]));

  assert.equal((await consumer.stream(Offset.absolute(7)).next()).offset, 7);
  assert.equal((await consumer.stream(Offset.fromEnd(2)).next()).offset, 8);
  const atEnd = consumer.stream(Offset.end());
  assert.equal(await atEnd.tryNext(), null, 'nothing new yet');
  const pending = atEnd.next(); // waits for the next record
  await (await producer.send(null, 'new')).wait();
  const fresh = await pending;
  assert.equal(fresh.offset, 10);
  assert.equal(fresh.key, null);
  assert.equal(fresh.valueString(), 'new');
  await assert.rejects(consumer.stream(Offset.absolute(-1)).next(), RillError);
});

test('the consumer of a whole topic reads every partition in offset order', async () => {
  const topic = await newTopic(rill, 3);
  const producer = await rill.topicProducerWithConfig(topic, { linger: 0 });
  const outs = await Promise.all(Array.from({ length: 300 }, (_, i) => producer.send(null, String(i))));
  await Promise.all(outs.map((o) => o.wait()));
  const stream = rill.consumer(topic);
  const byPartition = [[], [], []];
  for (let i = 0; i < 300; i++) {
    const r = await stream.next();
    byPartition[r.partition].push(r.offset);
  }
  for (const offsets of byPartition) assert.deepEqual(offsets, [...Array(100).keys()]);
  assert.equal(await stream.tryNext(), null);
  const only = rill.consumer(topic, { partitions: [2], offset: Offset.absolute(99) });
  const r = await only.next();
  assert.deepEqual([r.partition, r.offset], [2, 99]);
});
