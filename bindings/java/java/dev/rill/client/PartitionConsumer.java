package dev.rill.client;

import java.util.Objects;

/** Reads one partition of a topic: {@code rill.partitionConsumer(topic, partition)}. */
public final class PartitionConsumer implements AutoCloseable {
    private final NativeHandle handle;

    PartitionConsumer(long ptr) {
        this.handle = new NativeHandle(this, ptr, "this PartitionConsumer", false);
    }

    /** The partition's records from the beginning. */
    public RecordStream stream() {
        return stream(Offset.beginning());
    }

    /** The partition's records from {@code offset} on. */
    public RecordStream stream(Offset offset) {
        Objects.requireNonNull(offset, "offset");
        long p = handle.acquire();
        try {
            return new RecordStream(Native.stream(p, offset.kind(), offset.value()));
        } finally {
            handle.release();
        }
    }

    @Override
    public void close() {
        handle.close();
    }
}
