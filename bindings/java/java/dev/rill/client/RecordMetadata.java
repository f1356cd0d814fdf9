package dev.rill.client;

/** Where a record landed: its partition and its offset there. */
public final class RecordMetadata {
    private final int partition;
    private final long offset;

    public RecordMetadata(int partition, long offset) {
        this.partition = partition;
        this.offset = offset;
    }

    public int partition() {
        return partition;
    }

    /** The partition (Fluvio's name). */
    public int partitionId() {
        return partition;
    }

    /** The offset (-1 when the SPU did not say). */
    public long offset() {
        return offset;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RecordMetadata && ((RecordMetadata) o).partition == partition
                && ((RecordMetadata) o).offset == offset;
    }

    @Override
    public int hashCode() {
        return 31 * partition + Long.hashCode(offset);
    }

    @Override
    public String toString() {
        return "RecordMetadata(partition=" + partition + ", offset=" + offset + ")";
    }
}
