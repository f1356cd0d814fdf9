package dev.rill.client;

import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;

/**
 * A producer's settings: {@code TopicProducerConfig.builder()...build()}. Every setting left
 * out has the Rust client's default (design.md §2): {@code batchSize} 16 KiB, {@code linger}
 * 100 ms, no compression, at least once with the default {@link RetryPolicy}, {@link
 * Isolation#READ_UNCOMMITTED}, {@code timeout} 1500 ms, {@code maxRequestSize} 1 MiB, {@code
 * bufferMemory} 32 MiB, round-robin, idempotence on with at least once. {@link
 * Builder#build()} checks the settings with the Rust client's own rules.
 */
public final class TopicProducerConfig {
    // The slots of the array the Rust side reads (src/config.rs has the same list); -1: unset.
    static final int BATCH_SIZE = 0;
    static final int LINGER = 1;
    static final int COMPRESSION = 2;
    static final int SEMANTIC = 3;
    static final int MAX_RETRIES = 4;
    static final int INITIAL_DELAY = 5;
    static final int MAX_DELAY = 6;
    static final int RETRY_TIMEOUT = 7;
    static final int STRATEGY = 8;
    static final int ISOLATION = 9;
    static final int TIMEOUT = 10;
    static final int MAX_REQUEST_SIZE = 11;
    static final int BUFFER_MEMORY = 12;
    static final int PARTITIONER = 13;
    static final int IDEMPOTENT = 14;
    static final int LEN = 15;

    private final long[] slots;

    private TopicProducerConfig(long[] slots) {
        this.slots = slots;
    }

    public static Builder builder() {
        return new Builder();
    }

    long[] toNative() {
        return slots.clone();
    }

    static Duration checked(String what, Duration d) {
        Objects.requireNonNull(d, what);
        if (d.isNegative()) {
            throw new IllegalArgumentException(what + " must not be negative: " + d);
        }
        return d;
    }

    static long nanos(Duration d) {
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }

    @Override
    public String toString() {
        return "TopicProducerConfig" + Arrays.toString(slots);
    }

    /** Builds a {@link TopicProducerConfig}; the setters return the builder. */
    public static final class Builder {
        private final long[] slots = new long[LEN];

        Builder() {
            Arrays.fill(slots, -1);
        }

        private static long positive(String what, long v) {
            if (v < 0) {
                throw new IllegalArgumentException(what + " must not be negative: " + v);
            }
            return v;
        }

        /** Most uncompressed bytes in one batch. */
        public Builder batchSize(long bytes) {
            slots[BATCH_SIZE] = positive("batchSize", bytes);
            return this;
        }

        /** How long a new batch waits for more records (zero: send at once). */
        public Builder linger(Duration linger) {
            slots[LINGER] = nanos(checked("linger", linger));
            return this;
        }

        public Builder compression(Compression compression) {
            slots[COMPRESSION] = Objects.requireNonNull(compression, "compression").ordinal();
            return this;
        }

        public Builder deliverySemantic(DeliverySemantic semantic) {
            Objects.requireNonNull(semantic, "semantic");
            RetryPolicy p = semantic.retryPolicy();
            if (p == null) {
                slots[SEMANTIC] = 0;
                slots[MAX_RETRIES] = slots[INITIAL_DELAY] = slots[MAX_DELAY] = -1;
                slots[RETRY_TIMEOUT] = slots[STRATEGY] = -1;
            } else {
                slots[SEMANTIC] = 1;
                slots[MAX_RETRIES] = p.maxRetries();
                slots[INITIAL_DELAY] = nanos(p.initialDelay());
                slots[MAX_DELAY] = nanos(p.maxDelay());
                slots[RETRY_TIMEOUT] = nanos(p.timeout());
                slots[STRATEGY] = p.strategy().ordinal();
            }
            return this;
        }

        public Builder isolation(Isolation isolation) {
            slots[ISOLATION] = Objects.requireNonNull(isolation, "isolation").ordinal();
            return this;
        }

        /** How long the SPU may wait for the isolation level before answering. */
        public Builder timeout(Duration timeout) {
            slots[TIMEOUT] = nanos(checked("timeout", timeout));
            return this;
        }

        /** Largest request; a record whose batch would be larger is refused. */
        public Builder maxRequestSize(long bytes) {
            slots[MAX_REQUEST_SIZE] = positive("maxRequestSize", bytes);
            return this;
        }

        /** Bound on bytes waiting in the producer; {@code send} blocks while it is full. */
        public Builder bufferMemory(long bytes) {
            slots[BUFFER_MEMORY] = positive("bufferMemory", bytes);
            return this;
        }

        public Builder partitioner(Partitioner partitioner) {
            slots[PARTITIONER] = Objects.requireNonNull(partitioner, "partitioner").ordinal();
            return this;
        }

        /** Producer id and sequence numbers, so a retry never stores a batch twice. */
        public Builder idempotent(boolean idempotent) {
            slots[IDEMPOTENT] = idempotent ? 1 : 0;
            return this;
        }

        /** The settings, or a {@link ConfigException} saying why they do not fit together. */
        public TopicProducerConfig build() {
            long[] copy = slots.clone();
            Native.validateConfig(copy);
            return new TopicProducerConfig(copy);
        }
    }
}
