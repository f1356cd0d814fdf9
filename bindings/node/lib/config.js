'use strict';
// Producer settings. A config is a plain object:
//   { batchSize, linger (ms), compression: 'lz4',
//     deliverySemantic: 'atMostOnce' | 'atLeastOnce'
//       | { atLeastOnce: { maxRetries, initialDelayMs, maxDelayMs, timeoutMs, strategy: 'exponential' } },
//     isolation: 'readCommitted', timeout (ms), maxRequestSize, bufferMemory,
//     partitioner: 'roundRobin' | 'sticky', idempotent }
// or what TopicProducerConfigBuilder().build() returns (the same object).
// Unknown keys are refused (a typo would otherwise go unnoticed); the values
// are checked in Rust, whose builder keeps every default.

const native = require('./native');
const errors = require('./errors');

const KEYS = new Set([
  'batchSize',
  'linger',
  'compression',
  'deliverySemantic',
  'isolation',
  'timeout',
  'maxRequestSize',
  'bufferMemory',
  'partitioner',
  'idempotent',
]);
const POLICY_KEYS = new Set(['maxRetries', 'initialDelayMs', 'maxDelayMs', 'timeoutMs', 'strategy']);

function configError(message) {
  return new errors.ConfigError(`invalid configuration: ${message}`);
}

function num(name, v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw configError(`${name} must be a number, got ${typeof v}`);
  return v;
}

function str(name, v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw configError(`${name} must be a string, got ${typeof v}`);
  return v;
}

// The flat object the addon takes (src/config.rs ProducerConfig).
function toNativeConfig(config) {
  if (config === undefined || config === null) return undefined;
  if (typeof config !== 'object') throw configError('the config must be an object');
  for (const k of Object.keys(config)) {
    if (!KEYS.has(k)) throw configError(`unknown setting ${JSON.stringify(k)}: ${[...KEYS].join(', ')}`);
  }
  const out = {
    batchSize: num('batchSize', config.batchSize),
    lingerMs: num('linger', config.linger),
    compression: str('compression', config.compression),
    isolation: str('isolation', config.isolation),
    timeoutMs: num('timeout', config.timeout),
    maxRequestSize: num('maxRequestSize', config.maxRequestSize),
    bufferMemory: num('bufferMemory', config.bufferMemory),
    partitioner: str('partitioner', config.partitioner),
    idempotent: config.idempotent === undefined ? undefined : Boolean(config.idempotent),
  };
  const s = config.deliverySemantic;
  if (s === undefined || s === null) {
    // the default: at least once with the default policy
  } else if (s === 'atMostOnce' || s === 'atLeastOnce') {
    out.deliverySemantic = s;
  } else if (typeof s === 'object' && 'atMostOnce' in s && Object.keys(s).length === 1) {
    out.deliverySemantic = 'atMostOnce';
  } else if (typeof s === 'object' && 'atLeastOnce' in s && Object.keys(s).length === 1) {
    out.deliverySemantic = 'atLeastOnce';
    const p = s.atLeastOnce || {};
    for (const k of Object.keys(p)) {
      if (!POLICY_KEYS.has(k)) throw configError(`unknown retry policy setting ${JSON.stringify(k)}: ${[...POLICY_KEYS].join(', ')}`);
    }
    out.maxRetries = num('maxRetries', p.maxRetries);
    out.initialDelayMs = num('initialDelayMs', p.initialDelayMs);
    out.maxDelayMs = num('maxDelayMs', p.maxDelayMs);
    out.retryTimeoutMs = num('timeoutMs', p.timeoutMs);
    out.strategy = str('strategy', p.strategy);
  } else {
    throw configError(
      "deliverySemantic must be 'atMostOnce', 'atLeastOnce' or { atLeastOnce: { maxRetries, initialDelayMs, maxDelayMs, timeoutMs, strategy } }",
    );
  }
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

/** Delivery semantics: `DeliverySemantic.atMostOnce()`, `DeliverySemantic.atLeastOnce(policy)`. */
const DeliverySemantic = Object.freeze({
  /** Each batch sent once, no retry; `wait()` still reports the answer. */
  atMostOnce: () => 'atMostOnce',
  /** Failed batches sent again per `policy` (`{ maxRetries, initialDelayMs, maxDelayMs, timeoutMs, strategy }`). */
  atLeastOnce: (policy = {}) => ({ atLeastOnce: { ...policy } }),
});

/** A retry policy object, checked: `RetryPolicy({ maxRetries: 5, strategy: 'exponential' })`. */
function RetryPolicy(policy = {}) {
  toNativeConfig({ deliverySemantic: { atLeastOnce: policy } });
  return Object.freeze({ ...policy });
}

/** Builds a config step by step; every setting left out keeps its default. */
class TopicProducerConfigBuilder {
  constructor() {
    this._c = {};
  }
  /** Most uncompressed bytes in one batch (16 KiB). */
  batchSize(n) {
    this._c.batchSize = n;
    return this;
  }
  /** How long a batch waits for more records, in ms (100). */
  linger(ms) {
    this._c.linger = ms;
    return this;
  }
  /** 'none' (default), 'gzip', 'snappy', 'lz4' or 'zstd'. */
  compression(name) {
    this._c.compression = name;
    return this;
  }
  /** 'atMostOnce', or `{ atLeastOnce: policy }` (the default, with the default policy). */
  deliverySemantic(s) {
    this._c.deliverySemantic = s;
    return this;
  }
  /** 'readUncommitted' (acks 1, default) or 'readCommitted' (acks all). */
  isolation(i) {
    this._c.isolation = i;
    return this;
  }
  /** How long the SPU may wait for the isolation level, in ms (1500). */
  timeout(ms) {
    this._c.timeout = ms;
    return this;
  }
  /** Largest request in bytes (1 MiB). */
  maxRequestSize(n) {
    this._c.maxRequestSize = n;
    return this;
  }
  /** Bound on bytes waiting in the producer; `send` waits while it is full (32 MiB). */
  bufferMemory(n) {
    this._c.bufferMemory = n;
    return this;
  }
  /** 'roundRobin' (default) or 'sticky' for keyless records. */
  partitioner(p) {
    this._c.partitioner = p;
    return this;
  }
  /** Producer id and sequence numbers (on with at-least-once). */
  idempotent(on) {
    this._c.idempotent = on;
    return this;
  }
  /** The config object; throws ConfigError for settings that clash. */
  build() {
    const flat = toNativeConfig(this._c);
    errors.call(() => native.checkProducerConfig(flat));
    return Object.freeze({ ...this._c });
  }
}

module.exports = { toNativeConfig, TopicProducerConfigBuilder, DeliverySemantic, RetryPolicy };
