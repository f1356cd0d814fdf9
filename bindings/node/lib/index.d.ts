// Type definitions for @rill/client, the Rill client for Node.js.

/// <reference types="node" />

/** A key, value or header value: bytes, or a string sent as UTF-8. */
export type Data = Buffer | Uint8Array | string;

/** Headers: an object, a Map or `[name, value]` pairs. */
export type Headers = Record<string, Data> | Map<string, Data> | Array<[string, Data]>;

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
export type RetryStrategy = 'exponential' | 'fibonacci' | 'fixed' | 'exponentialBackoff' | 'fibonacciBackoff' | 'fixedDelay';
export type Isolation = 'readUncommitted' | 'readCommitted';
export type PartitionerName = 'roundRobin' | 'sticky';

/** At most `maxRetries` retries, `strategy` delays between them, all within `timeoutMs`. */
export interface RetryPolicy {
  /** Most retries after the first attempt (4). */
  maxRetries?: number;
  /** The first delay in ms (20). */
  initialDelayMs?: number;
  /** No delay is longer, in ms (200,000). */
  maxDelayMs?: number;
  /** All attempts end within this many ms (300,000). */
  timeoutMs?: number;
  /** How delays grow ('exponential'). */
  strategy?: RetryStrategy;
}
/** Checks a retry policy and returns it. */
export declare function RetryPolicy(policy?: RetryPolicy): Readonly<RetryPolicy>;

export type DeliverySemantic = 'atMostOnce' | 'atLeastOnce' | { atLeastOnce: RetryPolicy } | { atMostOnce: true };
export declare const DeliverySemantic: {
  /** Each batch sent once, no retry; `wait()` still reports the answer. */
  atMostOnce(): 'atMostOnce';
  /** Failed batches are sent again per `policy`; order within a partition is kept. */
  atLeastOnce(policy?: RetryPolicy): { atLeastOnce: RetryPolicy };
};

/** A producer's settings; each one left out has the documented default. */
export interface TopicProducerConfig {
  /** Most uncompressed bytes in one batch (16 KiB). */
  batchSize?: number;
  /** How long a batch waits for more records, in ms (100); 0 sends as soon as possible. */
  linger?: number;
  /** Per-batch compression ('none'). */
  compression?: Compression;
  /** 'atMostOnce', or at least once with a retry policy (the default). */
  deliverySemantic?: DeliverySemantic;
  /** 'readUncommitted' (acks 1, the default) or 'readCommitted' (acks all). */
  isolation?: Isolation;
  /** How long the SPU may wait for the isolation level, in ms (1500). */
  timeout?: number;
  /** Largest request in bytes; bigger records are refused (1 MiB). */
  maxRequestSize?: number;
  /** Bound on bytes waiting in the producer; `send` waits while it is full (32 MiB). */
  bufferMemory?: number;
  /** Placement of keyless records ('roundRobin'). */
  partitioner?: PartitionerName;
  /** Producer id and sequence numbers (on with at-least-once). */
  idempotent?: boolean;
}

/** Builds a TopicProducerConfig; every setter returns the builder. */
export declare class TopicProducerConfigBuilder {
  constructor();
  batchSize(bytes: number): this;
  linger(ms: number): this;
  compression(name: Compression): this;
  deliverySemantic(semantic: DeliverySemantic): this;
  isolation(isolation: Isolation): this;
  timeout(ms: number): this;
  maxRequestSize(bytes: number): this;
  bufferMemory(bytes: number): this;
  partitioner(name: PartitionerName): this;
  idempotent(on: boolean): this;
  /** The config; throws ConfigError for settings that clash. */
  build(): Readonly<TopicProducerConfig>;
}

/** Where a record was stored. */
export declare class RecordMetadata {
  readonly partition: number;
  readonly offset: number;
  /** The partition (the Rust name). */
  partitionId(): number;
}

/** What `send` resolves to. */
export declare class ProduceOutput {
  /** Resolves once the record's batch is answered at the configured isolation. */
  wait(): Promise<RecordMetadata>;
  /** The metadata if the batch is answered, else null; throws the record's error. */
  tryWait(): RecordMetadata | null;
}

/** Produces to one topic; all sends share its batches. */
export declare class TopicProducer {
  readonly topic: string;
  /** The topic's partition count as the producer last learned it. */
  partitionCount(): number;
  /** Queues a record (null key for none); resolves at once, or when `bufferMemory` has room. */
  send(key: Data | null | undefined, value: Data, headers?: Headers): Promise<ProduceOutput>;
  /** Sends each record in order; their outputs. */
  sendAll(
    records: Iterable<[Data | null | undefined, Data] | { key?: Data | null; value: Data; headers?: Headers }>,
  ): Promise<ProduceOutput[]>;
  /** Sends what is pending and resolves once every batch is answered. */
  flush(): Promise<void>;
  /** Flushes, then ends the producer: later sends fail with ProducerClosedError. */
  close(): Promise<void>;
}

/** Where a consumer starts. */
export declare class Offset {
  readonly kind: 'beginning' | 'end' | 'absolute' | 'fromEnd';
  readonly value: number;
  static beginning(): Offset;
  static end(): Offset;
  static absolute(offset: number): Offset;
  static fromEnd(n: number): Offset;
}

/** A record read back. */
export declare class ConsumerRecord {
  readonly partition: number;
  readonly offset: number;
  /** Milliseconds since the Unix epoch. */
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer;
  readonly headers: Array<[string, Buffer | null]>;
  valueString(): string;
  keyString(): string | null;
}

/** Records from a start offset on; never ends by itself (leave `for await` with `break`). */
export declare class RecordStream implements AsyncIterable<ConsumerRecord> {
  /** The next record, waiting for one. */
  next(): Promise<ConsumerRecord>;
  /** The next record, or null if none arrives within the SPU's long-poll wait. */
  tryNext(): Promise<ConsumerRecord | null>;
  [Symbol.asyncIterator](): AsyncIterator<ConsumerRecord>;
}

/** Reads one partition of a topic. */
export declare class PartitionConsumer {
  readonly topic: string;
  readonly partition: number;
  /** Records from `offset` on (Offset.beginning() when left out). */
  stream(offset?: Offset): RecordStream;
}

export interface TopicInfo {
  name: string;
  partitions: number;
}

export interface CreateTopicOptions {
  partitions?: number;
  replication?: number;
  /** Kafka topic configs: `{ 'retention.ms': '60000' }`. */
  configs?: Record<string, string>;
}

/** Creates, lists and deletes topics. */
export declare class RillAdmin {
  createTopic(topic: string, options?: CreateTopicOptions | number): Promise<void>;
  /** Every topic, sorted by name. */
  listTopics(): Promise<TopicInfo[]>;
  deleteTopic(topic: string): Promise<void>;
}

/** A connection to a Rill cluster. */
export declare class Rill {
  /** Connects to `addr`, else RILL_ADDR, else the profile `rill cluster start` wrote, else 127.0.0.1:9092. */
  static connect(addr?: string): Promise<Rill>;
  readonly addr: string;
  topicProducer(topic: string): Promise<TopicProducer>;
  topicProducerWithConfig(topic: string, config: TopicProducerConfig): Promise<TopicProducer>;
  partitionConsumer(topic: string, partition: number): Promise<PartitionConsumer>;
  /** One stream over every partition of `topic` (or `partitions`). */
  consumer(topic: string, options?: { partitions?: number[]; offset?: Offset }): RecordStream;
  admin(): RillAdmin;
}

/** The Kafka Java client's murmur2 of `key` (signed 32-bit). */
export declare function murmur2(key: Data): number;
/** The partition the Kafka Java client's default partitioner gives `key`. */
export declare function partitionForKey(key: Data, partitions: number): number;

/** Any error of the client: the Rust error's message, with its Kafka code. */
export declare class RillError extends Error {
  /** The Kafka error code when the SPU answered with one, else null. */
  readonly code: number | null;
  /** Kafka's name for `code` ('TOPIC_ALREADY_EXISTS'), else null. */
  readonly errorName: string | null;
  /** Whether the same request may work if sent again. */
  readonly retriable: boolean;
}
/** No SPU answers at the address, or a connection to it broke. */
export declare class RillConnectionError extends RillError {}
/** The topic (or partition) does not exist. */
export declare class TopicNotFoundError extends RillError {}
/** The record cannot fit in maxRequestSize, or the SPU refused it as too large. */
export declare class RecordTooLargeError extends RillError {}
/** No answer within the time allowed. */
export declare class RillTimeoutError extends RillError {}
/** A setting is out of range or contradicts another. */
export declare class ConfigError extends RillError {}
/** The producer was closed. */
export declare class ProducerClosedError extends RillError {}
/** The SPU answered with another Kafka error code. */
export declare class BrokerError extends RillError {}
