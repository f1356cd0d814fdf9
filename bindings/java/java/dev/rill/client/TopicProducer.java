package dev.rill.client;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * Produces records to one topic: the Rust client's {@code TopicProducer}, with its batching,
 * linger, compression, delivery semantics and isolation. {@code send} returns at once (it
 * blocks only while {@code bufferMemory} is full) with a {@link ProduceOutput}. Safe to share
 * between threads; all sends share batches. {@link #close()} flushes and ends it; later
 * sends throw {@link ProducerClosedException}.
 */
public final class TopicProducer implements AutoCloseable {
    private final NativeHandle handle;
    private final String topic;

    TopicProducer(long ptr, String topic) {
        this.handle = new NativeHandle(this, ptr, "this producer", true);
        this.topic = topic;
    }

    /** The topic this producer writes to. */
    public String topic() {
        return topic;
    }

    /** Queues a record ({@code key} null for none). */
    public ProduceOutput send(byte[] key, byte[] value) {
        return send(key, value, null);
    }

    /** Queues a record with Kafka headers (name to value; null for none). */
    public ProduceOutput send(byte[] key, byte[] value, Map<String, byte[]> headers) {
        Objects.requireNonNull(value, "value");
        String[] names = null;
        byte[][] values = null;
        if (headers != null && !headers.isEmpty()) {
            names = new String[headers.size()];
            values = new byte[headers.size()][];
            int i = 0;
            for (Map.Entry<String, byte[]> h : headers.entrySet()) {
                names[i] = Objects.requireNonNull(h.getKey(), "header name");
                values[i] = Objects.requireNonNull(h.getValue(), "header value");
                i++;
            }
        }
        long p = handle.acquire();
        try {
            return new ProduceOutput(Native.send(p, key, value, names, values));
        } finally {
            handle.release();
        }
    }

    /** Queues a record whose key and value are strings sent as UTF-8 (key null for none). */
    public ProduceOutput send(String key, String value) {
        return send(key == null ? null : key.getBytes(StandardCharsets.UTF_8),
                Objects.requireNonNull(value, "value").getBytes(StandardCharsets.UTF_8));
    }

    /** {@link #send(byte[], byte[])}, with the answer as a {@link CompletableFuture}. */
    public CompletableFuture<RecordMetadata> sendAsync(byte[] key, byte[] value) {
        return send(key, value).future();
    }

    /** {@link #send(String, String)}, with the answer as a {@link CompletableFuture}. */
    public CompletableFuture<RecordMetadata> sendAsync(String key, String value) {
        return send(key, value).future();
    }

    /**
     * Sends what is pending now and blocks until each of those batches is answered (failures
     * report through each record's {@link ProduceOutput}).
     */
    public void flush() {
        long p = handle.acquire();
        try {
            Native.flush(p);
        } finally {
            handle.release();
        }
    }

    /** The topic's partition count as the producer last learned it. */
    public int partitionCount() {
        long p = handle.acquire();
        try {
            return Native.partitionCount(p);
        } finally {
            handle.release();
        }
    }

    /**
     * Flushes, then ends the producer and frees it. Later calls throw {@link
     * ProducerClosedException}; closing again does nothing.
     */
    @Override
    public void close() {
        long p;
        try {
            p = handle.acquire();
        } catch (RillClosedException alreadyClosed) {
            return;
        }
        try {
            Native.closeProducer(p);
        } finally {
            handle.release();
            handle.close();
        }
    }

    @Override
    public String toString() {
        return "TopicProducer(" + topic + (handle.isClosed() ? ", closed)" : ")");
    }
}
