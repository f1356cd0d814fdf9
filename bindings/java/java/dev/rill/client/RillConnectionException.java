package dev.rill.client;

/** No SPU answers at the address, or a connection to it was lost. */
public class RillConnectionException extends RillException {
    private static final long serialVersionUID = 1L;

    public RillConnectionException(String message, int code, boolean retriable) {
        super(message, code, retriable);
    }
}
