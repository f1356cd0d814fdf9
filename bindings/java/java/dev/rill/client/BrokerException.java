package dev.rill.client;

/** The SPU answered with a Kafka error code (see {@link #code()}). */
public class BrokerException extends RillException {
    private static final long serialVersionUID = 1L;

    public BrokerException(String message, int code, boolean retriable) {
        super(message, code, retriable);
    }
}
