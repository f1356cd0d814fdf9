package dev.rill.client;

import java.util.concurrent.CompletableFuture;

/**
 * The natives of {@code librill_java} (bindings/java/src). Handles are {@code long}s owned by
 * {@link NativeHandle}; every native that fails throws a {@link RillException} built by
 * {@link #exception}. The Rust side never lets a panic cross into Java.
 */
final class Native {
    private Native() {}

    static {
        NativeLoader.load();
        init();
    }

    /** Makes sure the library is loaded (the static initialiser does the work). */
    static void ensureLoaded() {}

    static native long init();

    static native long liveHandles();

    static native void free(long handle);

    static native long connect(String addr);

    static native String addr(long rill);

    static native long topicProducer(long rill, String topic, long[] settings);

    static native void validateConfig(long[] settings);

    static native long partitionConsumer(long rill, String topic, int partition);

    static native long consumer(long rill, String topic, int[] partitions, int offsetKind,
            long offsetValue);

    static native void createTopic(long rill, String topic, int partitions, int replication,
            String[] configKeys, String[] configValues);

    static native void deleteTopic(long rill, String topic);

    static native TopicInfo[] listTopics(long rill);

    static native long send(long producer, byte[] key, byte[] value, String[] headerNames,
            byte[][] headerValues);

    static native void flush(long producer);

    static native void closeProducer(long producer);

    static native int partitionCount(long producer);

    static native long[] outputGet(long output, long timeoutNanos);

    static native long[] outputTryGet(long output);

    static native void outputFuture(long output, CompletableFuture<RecordMetadata> future);

    static native long stream(long consumer, int offsetKind, long offsetValue);

    static native Record streamNext(long stream);

    static native Record streamTryNext(long stream);

    static native int murmur2(byte[] data);

    static native int partitionForKey(byte[] key, int partitions);

    /** Panics in Rust on purpose (for the tests: the panic must arrive as an exception). */
    static native void checkPanicGuard(String message);

    // Kinds of error.rs.
    static final int RILL = 0;
    static final int CONNECTION = 1;
    static final int TOPIC_NOT_FOUND = 2;
    static final int RECORD_TOO_LARGE = 3;
    static final int TIMEOUT = 4;
    static final int CONFIG = 5;
    static final int PRODUCER_CLOSED = 6;
    static final int BROKER = 7;

    /** Called by the Rust side: the exception for an error of {@code kind}. */
    static RuntimeException exception(int kind, String message, int code, boolean retriable) {
        switch (kind) {
            case CONNECTION:
                return new RillConnectionException(message, code, retriable);
            case TOPIC_NOT_FOUND:
                return new TopicNotFoundException(message, code, retriable);
            case RECORD_TOO_LARGE:
                return new RecordTooLargeException(message, code, retriable);
            case TIMEOUT:
                return new RillTimeoutException(message, code, retriable);
            case CONFIG:
                return new ConfigException(message, code, retriable);
            case PRODUCER_CLOSED:
                return new ProducerClosedException(message);
            case BROKER:
                return new BrokerException(message, code, retriable);
            default:
                return new RillException(message, code, retriable);
        }
    }

    /**
     * Called from Rill's runtime threads: completes {@code future} on the future's default
     * executor, so callbacks chained to it never run on (and never stall) the runtime.
     */
    static void complete(CompletableFuture<RecordMetadata> future, int partition, long offset) {
        RecordMetadata metadata = new RecordMetadata(partition, offset);
        future.completeAsync(() -> metadata);
    }

    /** Like {@link #complete}, with the record's exception. */
    static void fail(CompletableFuture<RecordMetadata> future, Throwable error) {
        future.defaultExecutor().execute(() -> future.completeExceptionally(error));
    }
}
