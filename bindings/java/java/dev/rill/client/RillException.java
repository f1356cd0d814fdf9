package dev.rill.client;

import java.util.OptionalInt;

/**
 * An error of the Rill client. The message is the Rust client's; {@link #code()} is the Kafka
 * error code when the SPU answered with one (also when a retry policy gave up after such an
 * answer), and {@link #isRetriable()} says whether the same request may succeed if sent again.
 * Subclasses say what kind of error it is.
 */
public class RillException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int code;
    private final boolean retriable;

    public RillException(String message) {
        this(message, -1, false);
    }

    /** {@code code} -1 means none. */
    public RillException(String message, int code, boolean retriable) {
        super(message);
        this.code = code;
        this.retriable = retriable;
    }

    /** The Kafka error code, if the SPU gave one. */
    public OptionalInt code() {
        return code < 0 ? OptionalInt.empty() : OptionalInt.of(code);
    }

    /** Whether sending the same request again may work. */
    public boolean isRetriable() {
        return retriable;
    }
}
