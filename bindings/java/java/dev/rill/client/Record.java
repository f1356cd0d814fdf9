package dev.rill.client;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** One record read back. */
public final class Record {
    private final int partition;
    private final long offset;
    private final long timestamp;
    private final byte[] key;
    private final byte[] value;
    private final List<Header> headers;

    // Built by the Rust side (src/consumer.rs).
    Record(int partition, long offset, long timestamp, byte[] key, byte[] value,
            String[] headerNames, byte[][] headerValues) {
        this.partition = partition;
        this.offset = offset;
        this.timestamp = timestamp;
        this.key = key;
        this.value = value;
        List<Header> h = new ArrayList<>(headerNames.length);
        for (int i = 0; i < headerNames.length; i++) {
            h.add(new Header(headerNames[i], headerValues[i]));
        }
        this.headers = Collections.unmodifiableList(h);
    }

    public int partition() {
        return partition;
    }

    public long offset() {
        return offset;
    }

    /** Milliseconds since the Unix epoch. */
    public long timestamp() {
        return timestamp;
    }

    /** The key, or null for none. */
    public byte[] key() {
        return key == null ? null : key.clone();
    }

    public byte[] value() {
        return value.clone();
    }

    /** The key as UTF-8 (invalid bytes replaced), or null. */
    public String keyString() {
        return key == null ? null : new String(key, StandardCharsets.UTF_8);
    }

    /** The value as UTF-8 (invalid bytes replaced). */
    public String valueString() {
        return new String(value, StandardCharsets.UTF_8);
    }

    public List<Header> headers() {
        return headers;
    }

    @Override
    public String toString() {
        return "Record(partition=" + partition + ", offset=" + offset + ", key=" + keyString()
                + ", value=" + valueString() + ")";
    }
}
