package dev.rill.client;

/** The topic (or the partition) does not exist. */
public class TopicNotFoundException extends RillException {
    private static final long serialVersionUID = 1L;

    public TopicNotFoundException(String message, int code, boolean retriable) {
        super(message, code, retriable);
    }
}
