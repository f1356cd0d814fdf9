package dev.rill.client;

import java.util.Iterator;
import java.util.Optional;

/**
 * Records from a start offset on, as an {@link Iterator} (and, once, an {@link Iterable} for
 * for-each loops). It never ends by itself: {@link #next()} waits for the next record, and
 * {@link #hasNext()} is true until {@link #close()}. {@link #tryNext()} returns empty instead
 * of waiting when none arrives within the SPU's long poll. One thread at a time reads it
 * (concurrent calls take turns).
 */
public final class RecordStream implements Iterator<Record>, Iterable<Record>, AutoCloseable {
    private final NativeHandle handle;

    RecordStream(long ptr) {
        this.handle = new NativeHandle(this, ptr, "this RecordStream", false);
    }

    /** True until the stream is closed (the next record may take a while to come). */
    @Override
    public boolean hasNext() {
        return !handle.isClosed();
    }

    /** The next record, waiting for it as long as it takes. */
    @Override
    public Record next() {
        long p = handle.acquire();
        try {
            return Native.streamNext(p);
        } finally {
            handle.release();
        }
    }

    /** The next record, or empty if none arrives within the long-poll wait. */
    public Optional<Record> tryNext() {
        long p = handle.acquire();
        try {
            return Optional.ofNullable(Native.streamTryNext(p));
        } finally {
            handle.release();
        }
    }

    @Override
    public Iterator<Record> iterator() {
        return this;
    }

    @Override
    public void close() {
        handle.close();
    }
}
