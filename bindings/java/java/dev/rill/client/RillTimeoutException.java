package dev.rill.client;

/** No answer within the time allowed. */
public class RillTimeoutException extends RillException {
    private static final long serialVersionUID = 1L;

    public RillTimeoutException(String message, int code, boolean retriable) {
        super(message, code, retriable);
    }
}
