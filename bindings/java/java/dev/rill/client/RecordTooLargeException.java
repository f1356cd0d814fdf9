package dev.rill.client;

/** A record over {@code max_request_size}, or the SPU's {@code MESSAGE_TOO_LARGE}. */
public class RecordTooLargeException extends RillException {
    private static final long serialVersionUID = 1L;

    public RecordTooLargeException(String message, int code, boolean retriable) {
        super(message, code, retriable);
    }
}
