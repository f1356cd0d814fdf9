'use strict';
// @rill/client: the Rill client (crates/rill) for Node.js. Every call that
// waits returns a Promise; the Rust work runs on the addon's own tokio
// runtime, so the event loop never blocks. Names are the Rust ones in
// camelCase, in the style of Fluvio's Node client.

const native = require('./native');
const errors = require('./errors');
const { toNativeConfig, TopicProducerConfigBuilder, DeliverySemantic, RetryPolicy } = require('./config');

const { translate } = errors;

// --- data -------------------------------------------------------------

function data(what, v) {
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v;
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  throw new TypeError(`${what} must be a Buffer, a Uint8Array or a string, got ${v === null ? 'null' : typeof v}`);
}

function keyData(k) {
  return k === null || k === undefined ? null : data('a key', k);
}

// Headers: an object, a Map or an array of [name, value] pairs.
function headersData(h) {
  if (h === null || h === undefined) return undefined;
  const pairs = h instanceof Map || Array.isArray(h) ? [...h] : Object.entries(h);
  return pairs.map(([key, value]) => ({ key: String(key), value: data('a header value', value) }));
}

// --- producer -----------------------------------------------------------

/** Where a record was stored. */
class RecordMetadata {
  constructor(partition, offset) {
    this.partition = partition;
    this.offset = offset;
  }
  /** The partition (the Rust name). */
  partitionId() {
    return this.partition;
  }
}

function metadata(m) {
  return new RecordMetadata(m.partition, m.offset);
}

/** What `send` resolves to: `wait()` resolves once the record's batch is answered. */
class ProduceOutput {
  constructor(n) {
    this._n = n;
  }

  /** A Promise of `{ partition, offset }`, or of the error that ended the record. */
  async wait() {
    try {
      const m = this._n.tryWait();
      return metadata(m !== null ? m : await this._n.wait());
    } catch (e) {
      throw translate(e);
    }
  }

  /** The metadata if the batch is answered, else null; throws the record's error. */
  tryWait() {
    const m = errors.call(() => this._n.tryWait());
    return m === null ? null : metadata(m);
  }
}

/** Produces to one topic; all sends share its batches. */
class TopicProducer {
  constructor(n) {
    this._n = n;
  }

  /** The topic this producer writes to. */
  get topic() {
    return this._n.topic;
  }

  /** The topic's partition count as the producer last learned it. */
  partitionCount() {
    return this._n.partitionCount();
  }

  /**
   * Queues a record (key null for none) and resolves to its ProduceOutput
   * at once, or once `bufferMemory` has room.
   */
  async send(key, value, headers) {
    const k = keyData(key);
    const v = data('a value', value);
    const h = headersData(headers);
    try {
      const n = this._n.trySend(k, v, h);
      return new ProduceOutput(n !== null ? n : await this._n.send(k, v, h));
    } catch (e) {
      throw translate(e);
    }
  }

  /** Sends each `[key, value]` (or `{ key, value, headers }`) in order; their outputs. */
  async sendAll(records) {
    const outputs = [];
    for (const r of records) {
      if (Array.isArray(r)) outputs.push(await this.send(r[0], r[1]));
      else outputs.push(await this.send(r.key, r.value, r.headers));
    }
    return outputs;
  }

  /** Sends what is pending and resolves once every batch is answered. */
  flush() {
    return errors.wait(this._n.flush());
  }

  /** Flushes, then ends the producer: later sends fail with ProducerClosedError. */
  close() {
    return errors.wait(this._n.close());
  }
}

// --- consumer -----------------------------------------------------------

/** Where a consumer starts. */
class Offset {
  constructor(kind, value = 0) {
    this.kind = kind;
    this.value = value;
    Object.freeze(this);
  }
  /** The first record still stored. */
  static beginning() {
    return new Offset('beginning');
  }
  /** Only records produced from now on. */
  static end() {
    return new Offset('end');
  }
  /** This exact offset (not negative). */
  static absolute(offset) {
    return new Offset('absolute', offset);
  }
  /** `n` records before the end. */
  static fromEnd(n) {
    return new Offset('fromEnd', n);
  }
}

function offsetArgs(offset) {
  const o = offset === undefined ? Offset.beginning() : offset;
  if (!(o instanceof Offset)) throw new TypeError('expected an Offset (Offset.beginning(), Offset.absolute(n), ...)');
  return [o.kind, o.value];
}

/** A record read back. */
class ConsumerRecord {
  constructor(r) {
    this.partition = r.partition;
    this.offset = r.offset;
    this.timestamp = r.timestamp;
    this.key = r.key === undefined ? null : r.key;
    this.value = r.value;
    this.headers = r.headerKeys.map((k, i) => [k, r.headerValues[i] === undefined ? null : r.headerValues[i]]);
  }
  /** The value as UTF-8 text. */
  valueString() {
    return this.value.toString('utf8');
  }
  /** The key as UTF-8 text, or null. */
  keyString() {
    return this.key === null ? null : this.key.toString('utf8');
  }
}

/**
 * Records from a start offset on, for `for await`. It never ends by itself:
 * at the end it waits for new records (leave the loop with `break`).
 * `next()` resolves to the next record, `tryNext()` to null when none
 * arrives within the SPU's long-poll wait.
 */
class RecordStream {
  constructor(opening) {
    this._opening = opening;
    // An error opening the stream is reported by the first read, not as an
    // unhandled rejection.
    opening.catch(() => {});
    this._buf = [];
    this._i = 0;
    this._chain = Promise.resolve();
    this._closed = false;
  }

  _serial(f) {
    const p = this._chain.then(f);
    this._chain = p.catch(() => {});
    return p;
  }

  async _fill(method) {
    if (this._i < this._buf.length) return true;
    const s = await errors.wait(this._opening);
    this._buf = await errors.wait(s[method]());
    this._i = 0;
    return this._buf.length > 0;
  }

  /** A Promise of the next record, waiting for one if need be. */
  next() {
    return this._serial(async () => {
      await this._fill('nextBatch');
      return new ConsumerRecord(this._buf[this._i++]);
    });
  }

  /** A Promise of the next record, or null if none arrives within the long-poll wait. */
  tryNext() {
    return this._serial(async () => ((await this._fill('tryNextBatch')) ? new ConsumerRecord(this._buf[this._i++]) : null));
  }

  [Symbol.asyncIterator]() {
    return {
      next: async () => {
        if (this._closed) return { value: undefined, done: true };
        return { value: await this.next(), done: false };
      },
      return: async () => {
        this._closed = true;
        return { value: undefined, done: true };
      },
    };
  }
}

/** Reads one partition of a topic. */
class PartitionConsumer {
  constructor(n, topic, partition) {
    this._n = n;
    this.topic = topic;
    this.partition = partition;
  }
  /** A stream of records from `offset` (Offset.beginning() when left out). */
  stream(offset) {
    const [kind, value] = offsetArgs(offset);
    return new RecordStream(Promise.resolve().then(() => this._n.stream(kind, value)));
  }
}

// --- admin and the client ---------------------------------------------------

/** Creates, lists and deletes topics: `rill.admin()`. */
class RillAdmin {
  constructor(n) {
    this._n = n;
  }
  /**
   * Creates `topic`: `createTopic(name, 3)` or `createTopic(name,
   * { partitions, replication, configs: { 'retention.ms': '60000' } })`.
   */
  createTopic(topic, options = {}) {
    const o = typeof options === 'number' ? { partitions: options } : options;
    const { partitions = 1, replication = 1, configs } = o;
    return errors.wait(Promise.resolve().then(() => this._n.createTopic(topic, partitions, replication, configs)));
  }
  /** Every topic, sorted by name: `[{ name, partitions }]`. */
  listTopics() {
    return errors.wait(this._n.listTopics());
  }
  /** Deletes `topic` and all its records. */
  deleteTopic(topic) {
    return errors.wait(this._n.deleteTopic(topic));
  }
}

/** A connection to a Rill cluster. */
class Rill {
  constructor(n) {
    this._n = n;
  }

  /**
   * Connects to `addr` ("host:port"), else RILL_ADDR, else the profile
   * `rill cluster start` wrote, else 127.0.0.1:9092.
   */
  static async connect(addr) {
    return new Rill(await errors.wait(Promise.resolve().then(() => native.connect(addr))));
  }

  /** The `host:port` this handle connects to. */
  get addr() {
    return this._n.addr;
  }

  /** A producer for `topic` with the default settings. */
  async topicProducer(topic) {
    return new TopicProducer(await errors.wait(Promise.resolve().then(() => this._n.topicProducer(topic))));
  }

  /** A producer for `topic` with `config` (an object, or a builder's `build()`). */
  async topicProducerWithConfig(topic, config) {
    return new TopicProducer(
      await errors.wait(Promise.resolve().then(() => this._n.topicProducer(topic, toNativeConfig(config)))),
    );
  }

  /** A consumer of one partition of `topic`. */
  async partitionConsumer(topic, partition) {
    const n = await errors.wait(Promise.resolve().then(() => this._n.partitionConsumer(topic, partition)));
    return new PartitionConsumer(n, topic, partition);
  }

  /**
   * One stream over every partition of `topic` (or `partitions`), from
   * `offset` (Offset.beginning()): offset order within each partition.
   */
  consumer(topic, { partitions, offset } = {}) {
    const [kind, value] = offsetArgs(offset);
    return new RecordStream(Promise.resolve().then(() => this._n.consumer(topic, partitions, kind, value)));
  }

  /** Topic administration. */
  admin() {
    return new RillAdmin(this._n);
  }
}

/** The Kafka Java client's murmur2 of `key` (signed 32-bit, as Java's). */
function murmur2(key) {
  return native.murmur2(Buffer.from(data('a key', key)));
}

/** The partition the Kafka Java client's default partitioner gives `key`. */
function partitionForKey(key, partitions) {
  return native.partitionForKey(Buffer.from(data('a key', key)), partitions);
}

module.exports = {
  Rill,
  RillAdmin,
  TopicProducer,
  ProduceOutput,
  RecordMetadata,
  PartitionConsumer,
  RecordStream,
  ConsumerRecord,
  Offset,
  TopicProducerConfigBuilder,
  DeliverySemantic,
  RetryPolicy,
  murmur2,
  partitionForKey,
  RillError: errors.RillError,
  RillConnectionError: errors.RillConnectionError,
  TopicNotFoundError: errors.TopicNotFoundError,
  RecordTooLargeError: errors.RecordTooLargeError,
  RillTimeoutError: errors.RillTimeoutError,
  ConfigError: errors.ConfigError,
  ProducerClosedError: errors.ProducerClosedError,
  BrokerError: errors.BrokerError,
};
