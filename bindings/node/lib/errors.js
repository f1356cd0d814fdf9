'use strict';
// The error classes. Every error of the client is a RillError (an Error)
// whose message is the Rust error's; `code` is the Kafka error code when
// the SPU answered with one (else null), `errorName` Kafka's name for it
// (`UNKNOWN_TOPIC_OR_PARTITION`), `retriable` whether the same request may
// work if sent again.

class RillError extends Error {
  constructor(message, { code = null, errorName = null, retriable = false } = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.errorName = errorName;
    this.retriable = retriable;
  }
}

/** No SPU answers at the address, or a connection to it broke. */
class RillConnectionError extends RillError {}
/** The topic (or partition) does not exist. */
class TopicNotFoundError extends RillError {}
/** The record cannot fit in maxRequestSize, or the SPU refused the batch as too large. */
class RecordTooLargeError extends RillError {}
/** No answer within the time allowed. */
class RillTimeoutError extends RillError {}
/** A setting is out of range or contradicts another. */
class ConfigError extends RillError {}
/** The producer was closed before the record's batch was answered. */
class ProducerClosedError extends RillError {}
/** The SPU answered with another Kafka error code (see `code`). */
class BrokerError extends RillError {}

const CLASSES = {
  RillError,
  RillConnectionError,
  TopicNotFoundError,
  RecordTooLargeError,
  RillTimeoutError,
  ConfigError,
  ProducerClosedError,
  BrokerError,
};

const MARK = '\u0001';

// The addon's errors carry their fields in the message (src/error.rs):
// MARK class MARK code MARK name MARK retriable MARK message.
function translate(err) {
  if (!(err instanceof Error) || typeof err.message !== 'string' || !err.message.startsWith(MARK)) {
    return err;
  }
  const parts = err.message.split(MARK);
  const [, cls, code, errorName, retriable] = parts;
  const message = parts.slice(5).join(MARK);
  const Class = CLASSES[cls] || RillError;
  const out = new Class(message, {
    code: code === '' ? null : Number(code),
    errorName: errorName === '' ? null : errorName,
    retriable: retriable === 'true',
  });
  const frames = typeof err.stack === 'string' ? err.stack.split('\n').slice(1).filter((l) => l.trim()) : [];
  if (frames.length > 0) {
    // Thrown during a call: keep its JavaScript frames, with the real message.
    out.stack = `${out.name}: ${message}\n${frames.join('\n')}`;
  }
  return out;
}

// Runs `f`, rethrowing its error translated.
function call(f) {
  try {
    return f();
  } catch (e) {
    throw translate(e);
  }
}

// Awaits `p`, rethrowing its error translated.
async function wait(p) {
  try {
    return await p;
  } catch (e) {
    throw translate(e);
  }
}

module.exports = { ...CLASSES, translate, call, wait };
