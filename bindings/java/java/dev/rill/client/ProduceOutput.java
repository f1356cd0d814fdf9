package dev.rill.client;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * What {@code send} returns at once. {@link #get()} blocks until the record's batch is
 * answered (after any retries; at the producer's isolation) and gives its {@link
 * RecordMetadata}, or throws the {@link RillException} that ended it; {@link #future()} gives
 * the same as a {@link CompletableFuture}. The answer is kept, so {@code get()} may be called
 * again; the native side is freed once it is known (or when this object is collected).
 */
public final class ProduceOutput {
    private final NativeHandle handle;
    private volatile RecordMetadata metadata;
    private volatile RillException error;

    ProduceOutput(long ptr) {
        this.handle = new NativeHandle(this, ptr, "this ProduceOutput", false);
    }

    private RecordMetadata answered(long[] m) {
        RecordMetadata md = new RecordMetadata((int) m[0], m[1]);
        metadata = md;
        handle.close();
        return md;
    }

    private RecordMetadata known() {
        RecordMetadata md = metadata;
        if (md != null) {
            return md;
        }
        RillException e = error;
        if (e != null) {
            throw e;
        }
        return null;
    }

    private static final long TRY = -2;
    private static final long FOREVER = -1;

    /** The answer (waiting per {@code timeoutNanos}), or null if it has not come. */
    private RecordMetadata call(long timeoutNanos) {
        RecordMetadata md = known();
        if (md != null) {
            return md;
        }
        long p;
        try {
            p = handle.acquire();
        } catch (RillClosedException raced) {
            // Another thread got the answer and freed the handle.
            md = known();
            if (md != null) {
                return md;
            }
            throw raced;
        }
        try {
            long[] m = timeoutNanos == TRY ? Native.outputTryGet(p)
                    : Native.outputGet(p, timeoutNanos);
            return m == null ? null : answered(m);
        } catch (RillException e) {
            error = e;
            handle.close();
            throw e;
        } finally {
            handle.release();
        }
    }

    /** Blocks until the record is answered: where it landed, or its exception. */
    public RecordMetadata get() {
        return call(FOREVER);
    }

    /**
     * Like {@link #get()}, waiting at most {@code timeout}; then {@link RillTimeoutException}
     * (the record may still be answered later).
     */
    public RecordMetadata get(Duration timeout) {
        RecordMetadata md =
                call(TopicProducerConfig.nanos(TopicProducerConfig.checked("timeout", timeout)));
        if (md == null) {
            throw new RillTimeoutException("the record was not answered within " + timeout
                    + " (it may still be answered later)", -1, true);
        }
        return md;
    }

    /** The answer if it has come (empty while the batch is unanswered); throws its error. */
    public Optional<RecordMetadata> tryGet() {
        return Optional.ofNullable(call(TRY));
    }

    /** Whether the record's batch has been answered (successfully or not). */
    public boolean isDone() {
        if (metadata != null || error != null) {
            return true;
        }
        try {
            return tryGet().isPresent();
        } catch (RillException e) {
            return true;
        }
    }

    /**
     * The answer as a {@link CompletableFuture}: completed (off Rill's own threads) with the
     * record's {@link RecordMetadata}, or exceptionally with its {@link RillException}.
     */
    public CompletableFuture<RecordMetadata> future() {
        CompletableFuture<RecordMetadata> f = new CompletableFuture<>();
        RecordMetadata md;
        try {
            md = known();
        } catch (RillException e) {
            f.completeExceptionally(e);
            return f;
        }
        if (md != null) {
            f.complete(md);
            return f;
        }
        long p;
        try {
            p = handle.acquire();
        } catch (RillClosedException raced) {
            try {
                f.complete(Objects.requireNonNull(known()));
            } catch (RuntimeException e) {
                f.completeExceptionally(e);
            }
            return f;
        }
        try {
            Native.outputFuture(p, f);
        } finally {
            handle.release();
        }
        return f;
    }

    @Override
    public String toString() {
        RecordMetadata md = metadata;
        return md != null ? "ProduceOutput(" + md + ")"
                : error != null ? "ProduceOutput(failed: " + error.getMessage() + ")"
                : "ProduceOutput(pending)";
    }
}
