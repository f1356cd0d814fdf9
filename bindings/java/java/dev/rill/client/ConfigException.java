package dev.rill.client;

/** Settings out of range or contradicting each other. */
public class ConfigException extends RillException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message, int code, boolean retriable) {
        super(message, code, retriable);
    }
}
