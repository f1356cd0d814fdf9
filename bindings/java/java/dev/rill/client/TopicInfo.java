package dev.rill.client;

import java.util.Objects;

/** A topic's name and partition count. */
public final class TopicInfo {
    private final String name;
    private final int partitions;

    public TopicInfo(String name, int partitions) {
        this.name = name;
        this.partitions = partitions;
    }

    public String name() {
        return name;
    }

    public int partitions() {
        return partitions;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TopicInfo && ((TopicInfo) o).name.equals(name)
                && ((TopicInfo) o).partitions == partitions;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, partitions);
    }

    @Override
    public String toString() {
        return "TopicInfo(name=" + name + ", partitions=" + partitions + ")";
    }
}
