package dev.rill.client;

import java.lang.ref.Cleaner;

/**
 * Owns one native handle. Each call using it brackets itself with {@link #acquire()} and
 * {@link #release()}; {@link #close()} (from {@code close()} or, once the Java object is
 * unreachable, the {@link Cleaner}) frees the Rust object as soon as no call is using it, so
 * a handle is freed exactly once, never while in use, and never leaked.
 */
final class NativeHandle {
    static final Cleaner CLEANER = Cleaner.create();

    private final String what;
    private final boolean producer;
    private long ptr;
    private int users;
    private boolean closed;
    private final Cleaner.Cleanable cleanable;

    /** {@code owner} is the Java object; its collection closes the handle. */
    NativeHandle(Object owner, long ptr, String what, boolean producer) {
        this.ptr = ptr;
        this.what = what;
        this.producer = producer;
        this.cleanable = CLEANER.register(owner, new Closer(this));
    }

    // The cleaning action must not refer to the owner.
    private static final class Closer implements Runnable {
        private final NativeHandle handle;

        Closer(NativeHandle handle) {
            this.handle = handle;
        }

        @Override
        public void run() {
            handle.closeNow();
        }
    }

    /** The handle, counted as in use until {@link #release()}. */
    long acquire() {
        synchronized (this) {
            if (!closed) {
                users++;
                return ptr;
            }
        }
        throw closedException();
    }

    void release() {
        long free = 0;
        synchronized (this) {
            users--;
            if (closed && users == 0) {
                free = ptr;
                ptr = 0;
            }
        }
        if (free != 0) {
            Native.free(free);
        }
    }

    synchronized boolean isClosed() {
        return closed;
    }

    /** Closes the handle (once; later calls do nothing). */
    void close() {
        cleanable.clean();
    }

    private void closeNow() {
        long free = 0;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            if (users == 0) {
                free = ptr;
                ptr = 0;
            }
        }
        if (free != 0) {
            Native.free(free);
        }
    }

    RillException closedException() {
        return producer ? new ProducerClosedException("the producer was closed")
                : new RillClosedException(what + " was closed");
    }
}
