package dev.rill.client;

/** When the SPU acknowledges a batch. */
public enum Isolation {
    /** Once the leader has it (Kafka acks 1); the default. */
    READ_UNCOMMITTED,
    /** Once every in-sync replica has it (Kafka acks all). */
    READ_COMMITTED
}
