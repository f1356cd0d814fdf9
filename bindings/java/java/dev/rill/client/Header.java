package dev.rill.client;

/** A Kafka record header: a name and a value (which may be null). */
public final class Header {
    private final String name;
    private final byte[] value;

    public Header(String name, byte[] value) {
        this.name = name;
        this.value = value;
    }

    public String name() {
        return name;
    }

    public byte[] value() {
        return value == null ? null : value.clone();
    }

    @Override
    public String toString() {
        return "Header(" + name + ")";
    }
}
