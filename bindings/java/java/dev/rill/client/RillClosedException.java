package dev.rill.client;

/** A call on an object after its {@code close()}. */
public class RillClosedException extends RillException {
    private static final long serialVersionUID = 1L;

    public RillClosedException(String message) {
        super(message);
    }
}
