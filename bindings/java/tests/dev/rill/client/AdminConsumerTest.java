package dev.rill.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Topic administration and consumers. */
class AdminConsumerTest {
    static Spu spu;
    static Rill rill;

    @BeforeAll
    static void start() {
        spu = new Spu();
        rill = Rill.connect(spu.addr());
    }

    @AfterAll
    static void stop() {
        rill.close();
        spu.close();
    }

    @Test
    void createListDelete() {
        String name = Spu.topicName();
        RillAdmin admin = rill.admin();
        admin.createTopic(name, 3, 1, Collections.singletonMap("retention.ms", "600000"));
        assertTrue(admin.listTopics().contains(new TopicInfo(name, 3)), admin.listTopics()
                .toString());
        List<TopicInfo> topics = admin.listTopics();
        List<String> names = new ArrayList<>();
        topics.forEach(t -> names.add(t.name()));
        List<String> sorted = new ArrayList<>(names);
        Collections.sort(sorted);
        assertEquals(sorted, names, "sorted by name");
        admin.deleteTopic(name);
        assertFalse(admin.listTopics().stream().anyMatch(t -> t.name().equals(name)));
        assertThrows(TopicNotFoundException.class, () -> rill.topicProducer(name));
        RillException again = assertThrows(RillException.class, () -> admin.deleteTopic(name));
        assertEquals(3, again.code().getAsInt(), again.getMessage());
    }

    @Test
    void aPartitionConsumerIteratesInOrderFromEachKindOfOffset() {
        String topic = Spu.newTopic(rill, 1);
        try (TopicProducer p = rill.topicProducer(topic)) {
            for (int i = 0; i < 10; i++) {
                p.send("k", "v" + i);
            }
            p.flush();
        }
        try (PartitionConsumer c = rill.partitionConsumer(topic, 0)) {
            int expected = 0;
            for (Record r : c.stream(Offset.beginning())) {
                assertEquals(expected, r.offset());
                assertEquals("v" + expected, r.valueString());
                if (++expected == 10) {
                    break;
                }
            }
            Iterator<Record> it = c.stream(Offset.absolute(7));
            assertTrue(it.hasNext());
            assertEquals(7, it.next().offset());
            assertEquals(8, c.stream(Offset.fromEnd(2)).next().offset());
            try (RecordStream end = c.stream(Offset.end())) {
                assertFalse(end.tryNext().isPresent(), "nothing new yet");
            }
        }
    }

    @Test
    void aConsumerOfEveryPartitionReadsThemAll() {
        String topic = Spu.newTopic(rill, 3);
        try (TopicProducer p = rill.topicProducer(topic)) {
            for (int i = 0; i < 30; i++) {
                p.send("key-" + i, "v" + i);
            }
            p.flush();
        }
        List<Record> all = Spu.readAll(rill, topic, 30);
        assertEquals(30, all.size());
        long[] last = {-1, -1, -1};
        for (Record r : all) {
            assertTrue(r.offset() > last[r.partition()], "offset order within a partition");
            last[r.partition()] = r.offset();
        }
        try (RecordStream only = rill.consumer(topic, new int[] {1}, Offset.beginning())) {
            Record r = only.next();
            assertEquals(1, r.partition());
        }
    }
}
