package dev.rill.client;

/** A send on a producer that was closed (or a record its closing could not deliver). */
public class ProducerClosedException extends RillClosedException {
    private static final long serialVersionUID = 1L;

    public ProducerClosedException(String message) {
        super(message);
    }
}
