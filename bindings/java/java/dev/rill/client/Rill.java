package dev.rill.client;

import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * A connection to a Rill cluster, the Rust client's {@code Rill}. {@link #connect()} finds the
 * cluster ({@code RILL_ADDR}, else the profile {@code rill cluster start} wrote, else
 * 127.0.0.1:9092); {@link #connect(String)} takes a {@code host:port}. Safe to share between
 * threads. Producers and consumers made from it live on after its {@link #close()}; each has
 * its own {@code close()}.
 */
public final class Rill implements AutoCloseable {
    private final NativeHandle handle;

    private Rill(long ptr) {
        handle = new NativeHandle(this, ptr, "this Rill client", false);
    }

    /** Connects to the discovered cluster. */
    public static Rill connect() {
        Native.ensureLoaded();
        return new Rill(Native.connect(null));
    }

    /** Connects to {@code addr} ({@code host:port}). */
    public static Rill connect(String addr) {
        Objects.requireNonNull(addr, "addr");
        Native.ensureLoaded();
        return new Rill(Native.connect(addr));
    }

    /** The {@code host:port} this client connects to. */
    public String addr() {
        long p = handle.acquire();
        try {
            return Native.addr(p);
        } finally {
            handle.release();
        }
    }

    /** A producer for {@code topic} with the default settings. */
    public TopicProducer topicProducer(String topic) {
        return topicProducer(topic, null);
    }

    /** A producer for {@code topic} with {@code config} (null: the defaults). */
    public TopicProducer topicProducer(String topic, TopicProducerConfig config) {
        Objects.requireNonNull(topic, "topic");
        long[] settings = config == null ? null : config.toNative();
        long p = handle.acquire();
        try {
            return new TopicProducer(Native.topicProducer(p, topic, settings), topic);
        } finally {
            handle.release();
        }
    }

    /** A consumer of one partition of {@code topic}. */
    public PartitionConsumer partitionConsumer(String topic, int partition) {
        Objects.requireNonNull(topic, "topic");
        long p = handle.acquire();
        try {
            return new PartitionConsumer(Native.partitionConsumer(p, topic, partition));
        } finally {
            handle.release();
        }
    }

    /** Every partition of {@code topic} from the beginning, in one stream. */
    public RecordStream consumer(String topic) {
        return consumer(topic, null, Offset.beginning());
    }

    /**
     * The partitions {@code partitions} (null: all) of {@code topic} from {@code offset}, in one
     * stream: records in offset order within each partition, partitions interleaved.
     */
    public RecordStream consumer(String topic, int[] partitions, Offset offset) {
        Objects.requireNonNull(topic, "topic");
        Objects.requireNonNull(offset, "offset");
        long p = handle.acquire();
        try {
            return new RecordStream(
                    Native.consumer(p, topic, partitions, offset.kind(), offset.value()));
        } finally {
            handle.release();
        }
    }

    /** Topic administration. */
    public RillAdmin admin() {
        return new RillAdmin(handle);
    }

    /** Frees the client (at once, or when its last call in progress returns). */
    @Override
    public void close() {
        handle.close();
    }

    /** The Kafka Java client's murmur2 of {@code data} (Kafka's {@code Utils.murmur2}). */
    public static int murmur2(byte[] data) {
        Native.ensureLoaded();
        return Native.murmur2(Objects.requireNonNull(data, "data"));
    }

    /** The partition the Kafka Java client's default partitioner gives {@code key}. */
    public static int partitionForKey(byte[] key, int partitions) {
        Native.ensureLoaded();
        return Native.partitionForKey(Objects.requireNonNull(key, "key"), partitions);
    }

    /** {@link #partitionForKey(byte[], int)} of the key's UTF-8 bytes. */
    public static int partitionForKey(String key, int partitions) {
        return partitionForKey(key.getBytes(StandardCharsets.UTF_8), partitions);
    }

    /** Native objects made and not yet freed, in this JVM (for tests and leak checks). */
    public static long liveNativeHandles() {
        Native.ensureLoaded();
        return Native.liveHandles();
    }

    @Override
    public String toString() {
        return handle.isClosed() ? "Rill(closed)" : "Rill(" + addr() + ")";
    }
}
