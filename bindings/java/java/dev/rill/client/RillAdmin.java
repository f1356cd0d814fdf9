package dev.rill.client;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/** Creates, lists and deletes topics: {@code rill.admin()}. Uses its {@link Rill}'s handle. */
public final class RillAdmin {
    private final NativeHandle handle;

    RillAdmin(NativeHandle handle) {
        this.handle = handle;
    }

    /** Creates {@code topic} with {@code partitions} partitions, replication 1. */
    public void createTopic(String topic, int partitions) {
        createTopic(topic, partitions, 1, Collections.emptyMap());
    }

    /** Creates {@code topic}; {@code configs} are Kafka topic configs ({@code retention.ms}). */
    public void createTopic(String topic, int partitions, int replication,
            Map<String, String> configs) {
        Objects.requireNonNull(topic, "topic");
        String[] keys = configs.keySet().toArray(new String[0]);
        String[] values = new String[keys.length];
        for (int i = 0; i < keys.length; i++) {
            values[i] = Objects.requireNonNull(configs.get(keys[i]), keys[i]);
        }
        long p = handle.acquire();
        try {
            Native.createTopic(p, topic, partitions, replication, keys, values);
        } finally {
            handle.release();
        }
    }

    /** Every topic, sorted by name. */
    public List<TopicInfo> listTopics() {
        long p = handle.acquire();
        try {
            return Collections.unmodifiableList(Arrays.asList(Native.listTopics(p)));
        } finally {
            handle.release();
        }
    }

    /** Deletes {@code topic} and all its records. */
    public void deleteTopic(String topic) {
        Objects.requireNonNull(topic, "topic");
        long p = handle.acquire();
        try {
            Native.deleteTopic(p, topic);
        } finally {
            handle.release();
        }
    }
}
