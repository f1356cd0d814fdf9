package dev.rill.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Delivery semantics with the SPU going away: each test has an SPU of its own to stop. */
class DeliveryTest {
    Spu spu;

    @BeforeEach
    void start() {
        spu = new Spu();
    }

    @AfterEach
    void stop() {
        spu.close();
    }

    static RetryPolicy patient() {
        return new RetryPolicy(10_000, Duration.ofMillis(100), Duration.ofMillis(300),
                Duration.ofSeconds(60), RetryStrategy.FIXED_DELAY);
    }

    @Test
    void atLeastOnceLosesNothingAcrossAnSpuRestart() throws Exception {
        try (Rill rill = Rill.connect(spu.addr())) {
            rill.admin().createTopic("alo", 2);
            TopicProducerConfig config = TopicProducerConfig.builder()
                    .linger(Duration.ofMillis(10))
                    .deliverySemantic(DeliverySemantic.atLeastOnce(patient()))
                    .build();
            try (TopicProducer p = rill.topicProducer("alo", config)) {
                List<ProduceOutput> before = new ArrayList<>();
                for (int i = 0; i < 100; i++) {
                    before.add(p.send("k" + i % 5, "before-" + i));
                }
                for (ProduceOutput o : before) {
                    o.get();
                }
                spu.stop();
                List<ProduceOutput> during = new ArrayList<>();
                for (int i = 0; i < 100; i++) {
                    during.add(p.send("k" + i % 5, "during-" + i));
                }
                Thread.sleep(1500);
                for (ProduceOutput o : during) {
                    assertFalse(o.tryGet().isPresent(), "nothing is answered while it is down");
                }
                spu.restart();
                Set<RecordMetadata> places = new HashSet<>();
                for (ProduceOutput o : during) {
                    places.add(o.get(Duration.ofSeconds(60)));
                }
                assertEquals(100, places.size());
            }
            Set<String> expected = new HashSet<>();
            for (int i = 0; i < 100; i++) {
                expected.add("before-" + i);
                expected.add("during-" + i);
            }
            List<Record> back = Spu.readAll(rill, "alo", 200);
            Set<String> values = new HashSet<>();
            List<List<Integer>> perKey = new ArrayList<>();
            for (int k = 0; k < 5; k++) {
                perKey.add(new ArrayList<>());
            }
            for (Record r : back) {
                values.add(r.valueString());
                if (r.valueString().startsWith("during-")) {
                    int i = Integer.parseInt(r.valueString().substring(7));
                    perKey.get(i % 5).add(i);
                }
            }
            assertEquals(200, back.size(), "no record lost or stored twice");
            assertEquals(expected, values, "every acknowledged record is stored");
            for (List<Integer> mine : perKey) {
                List<Integer> sorted = new ArrayList<>(mine);
                sorted.sort(null);
                assertEquals(sorted, mine, "order per key survives the retries");
            }
        }
    }

    @Test
    void atMostOnceReportsTheSpuDown() {
        try (Rill rill = Rill.connect(spu.addr())) {
            rill.admin().createTopic("amo", 1);
            TopicProducerConfig config = TopicProducerConfig.builder()
                    .linger(Duration.ZERO)
                    .deliverySemantic(DeliverySemantic.atMostOnce())
                    .build();
            try (TopicProducer p = rill.topicProducer("amo", config)) {
                assertEquals(0, p.send(null, "while up").get().offset());
                spu.stop();
                ProduceOutput out = p.send(null, "while down");
                long started = System.nanoTime();
                RillConnectionException e =
                        assertThrows(RillConnectionException.class, out::get);
                assertTrue(System.nanoTime() - started < 30_000_000_000L,
                        "no retry loop under at-most-once");
                assertTrue(e.getMessage().contains(spu.addr()), e.getMessage());
                assertTrue(e.isRetriable());
                // The failure is kept, and a future reports it too.
                assertThrows(RillConnectionException.class, out::get);
                Throwable cause = assertThrows(java.util.concurrent.ExecutionException.class,
                        () -> out.future().get()).getCause();
                assertTrue(cause instanceof RillConnectionException, String.valueOf(cause));
            }
        }
    }

    @Test
    void aFutureCompletesExceptionallyWhenRetriesRunOut() throws Exception {
        try (Rill rill = Rill.connect(spu.addr())) {
            rill.admin().createTopic("gives-up", 1);
            TopicProducerConfig config = TopicProducerConfig.builder()
                    .linger(Duration.ZERO)
                    .deliverySemantic(DeliverySemantic.atLeastOnce(new RetryPolicy(2,
                            Duration.ofMillis(10), Duration.ofMillis(50), Duration.ofSeconds(2),
                            RetryStrategy.FIXED_DELAY)))
                    .build();
            try (TopicProducer p = rill.topicProducer("gives-up", config)) {
                assertEquals(0, p.send(null, "while up").get().offset());
                spu.stop();
                java.util.concurrent.CompletableFuture<RecordMetadata> f =
                        p.sendAsync((String) null, "while down");
                Throwable cause = assertThrows(java.util.concurrent.ExecutionException.class,
                        () -> f.get(60, java.util.concurrent.TimeUnit.SECONDS)).getCause();
                assertTrue(cause instanceof RillException, String.valueOf(cause));
                assertTrue(cause.getMessage().contains("gave up")
                        || cause.getMessage().contains("no answer"), cause.getMessage());
            }
        }
    }
}
