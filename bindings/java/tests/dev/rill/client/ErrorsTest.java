package dev.rill.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Collections;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Errors reach Java as RillException subclasses with the Rust message and the Kafka code. */
class ErrorsTest {
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
    void aRustPanicArrivesAsAnExceptionAndTheJvmCarriesOn() {
        for (int i = 0; i < 3; i++) {
            RillException e = assertThrows(RillException.class,
                    () -> Native.checkPanicGuard("on purpose"));
            assertTrue(e.getMessage().contains("panic") && e.getMessage().contains("on purpose"),
                    e.getMessage());
        }
        assertEquals(1, Spu.readAll(rill, sendOne(), 1).size(), "the client still works");
    }

    private static String sendOne() {
        String topic = Spu.newTopic(rill, 1);
        try (TopicProducer p = rill.topicProducer(topic)) {
            p.send("k", "v").get();
        }
        return topic;
    }

    @Test
    void noSpuAtTheAddressIsAConnectionError() {
        RillConnectionException e =
                assertThrows(RillConnectionException.class, () -> Rill.connect("127.0.0.1:1"));
        assertTrue(e.getMessage().contains("127.0.0.1:1"), e.getMessage());
        assertTrue(e.isRetriable());
        assertFalse(e.code().isPresent());
    }

    @Test
    void anUnknownTopicIsTopicNotFound() {
        TopicNotFoundException e = assertThrows(TopicNotFoundException.class,
                () -> rill.topicProducer("no-such-topic"));
        assertTrue(e.getMessage().contains("no-such-topic"), e.getMessage());
        assertTrue(e instanceof RillException);
    }

    @Test
    void aPartitionPastTheEndCarriesItsKafkaCode() {
        String topic = Spu.newTopic(rill, 1);
        TopicNotFoundException e = assertThrows(TopicNotFoundException.class,
                () -> rill.partitionConsumer(topic, 5));
        assertEquals(3, e.code().getAsInt(), "UNKNOWN_TOPIC_OR_PARTITION");
        assertTrue(e.getMessage().contains("UNKNOWN_TOPIC_OR_PARTITION"), e.getMessage());
    }

    @Test
    void creatingATopicTwiceIsABrokerErrorWithItsCode() {
        String topic = Spu.newTopic(rill, 1);
        BrokerException e = assertThrows(BrokerException.class,
                () -> rill.admin().createTopic(topic, 1));
        assertEquals(36, e.code().getAsInt(), "TOPIC_ALREADY_EXISTS");
        assertTrue(e.getMessage().contains("TOPIC_ALREADY_EXISTS"), e.getMessage());
        assertFalse(e.isRetriable());
    }

    @Test
    void anInvalidTopicNameIsRefusedWithItsCode() {
        BrokerException e = assertThrows(BrokerException.class,
                () -> rill.admin().createTopic("x".repeat(300), 1));
        assertEquals(17, e.code().getAsInt(), "INVALID_TOPIC_EXCEPTION");
    }

    @Test
    void aRecordOverMaxRequestSizeIsRefusedAtSend() {
        String topic = Spu.newTopic(rill, 1);
        try (TopicProducer p = rill.topicProducer(topic)) {
            RecordTooLargeException e = assertThrows(RecordTooLargeException.class,
                    () -> p.send(null, new byte[2 * 1024 * 1024]));
            assertTrue(e.getMessage().contains("max_request_size"), e.getMessage());
            // The producer goes on.
            assertEquals(0, p.send("k", "fits").get().offset());
        }
    }

    @Test
    void settingsThatClashAreAConfigErrorAtBuild() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> TopicProducerConfig.builder().batchSize(2 * 1024 * 1024).build());
        assertTrue(e.getMessage().contains("2097152") && e.getMessage().contains("1048576"),
                e.getMessage());
        ConfigException idem = assertThrows(ConfigException.class,
                () -> TopicProducerConfig.builder()
                        .deliverySemantic(DeliverySemantic.atMostOnce())
                        .idempotent(true)
                        .build());
        assertTrue(idem.getMessage().contains("idempotence"), idem.getMessage());
        assertThrows(ConfigException.class,
                () -> TopicProducerConfig.builder().batchSize(0).build());
        assertThrows(IllegalArgumentException.class,
                () -> TopicProducerConfig.builder().linger(Duration.ofMillis(-1)));
        assertThrows(IllegalArgumentException.class, () -> new RetryPolicy(-1, Duration.ZERO,
                Duration.ZERO, Duration.ZERO, RetryStrategy.FIXED_DELAY));
    }

    @Test
    void argumentsJavaCanCheckAreCheckedInJava() {
        assertThrows(NullPointerException.class, () -> rill.topicProducer(null));
        assertThrows(NullPointerException.class,
                () -> rill.admin().createTopic("t", 1, 1, Collections.singletonMap("k", null)));
        assertThrows(IllegalArgumentException.class, () -> Offset.absolute(-1));
        ConfigException negative = assertThrows(ConfigException.class,
                () -> rill.partitionConsumer("whatever", -1));
        assertTrue(negative.getMessage().contains("-1"), negative.getMessage());
    }

    @Test
    void aGetThatTimesOutLeavesTheRecordToBeAnsweredLater() {
        String topic = Spu.newTopic(rill, 1);
        TopicProducerConfig config = TopicProducerConfig.builder()
                .linger(Duration.ofSeconds(3)).build();
        try (TopicProducer p = rill.topicProducer(topic, config)) {
            ProduceOutput out = p.send("k", "v");
            assertThrows(RillTimeoutException.class, () -> out.get(Duration.ofMillis(50)));
            p.flush();
            assertEquals(0, out.get(Duration.ofSeconds(10)).offset());
        }
    }
}
