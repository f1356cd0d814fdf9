package dev.rill.client;

/** Where keyless records go (keyed ones always follow the Kafka Java client's murmur2). */
public enum Partitioner {
    /** One record per partition in turn; the default. */
    ROUND_ROBIN,
    /** Fill one partition's batch, then move to the next. */
    STICKY
}
