package dev.rill.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Producing against a real SPU: offsets, order, placement, threads, futures, settings. */
class ProducerTest {
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

    /** Kafka's {@code Utils.murmur2}, written out here to check the binding against. */
    @SuppressWarnings("fallthrough") // as Kafka's code
    static int kafkaMurmur2(byte[] data) {
        int length = data.length;
        int seed = 0x9747b28c;
        final int m = 0x5bd1e995;
        final int r = 24;
        int h = seed ^ length;
        int length4 = length / 4;
        for (int i = 0; i < length4; i++) {
            final int i4 = i * 4;
            int k = (data[i4] & 0xff) + ((data[i4 + 1] & 0xff) << 8)
                    + ((data[i4 + 2] & 0xff) << 16) + ((data[i4 + 3] & 0xff) << 24);
            k *= m;
            k ^= k >>> r;
            k *= m;
            h *= m;
            h ^= k;
        }
        switch (length % 4) {
            case 3:
                h ^= (data[(length & ~3) + 2] & 0xff) << 16;
                // fall through
            case 2:
                h ^= (data[(length & ~3) + 1] & 0xff) << 8;
                // fall through
            case 1:
                h ^= data[length & ~3] & 0xff;
                h *= m;
                break;
            default:
                break;
        }
        h ^= h >>> 13;
        h *= m;
        h ^= h >>> 15;
        return h;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void murmur2MatchesKafkasPublishedVectors() {
        // Kafka's UtilsTest.testMurmur2.
        Map<String, Integer> vectors = new LinkedHashMap<>();
        vectors.put("21", -973932308);
        vectors.put("foobar", -790332482);
        vectors.put("a-little-bit-long-string", -985981536);
        vectors.put("a-little-bit-longer-string", -1486304829);
        vectors.put("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971);
        vectors.put("abc", 479470107);
        for (Map.Entry<String, Integer> v : vectors.entrySet()) {
            assertEquals(v.getValue(), kafkaMurmur2(utf8(v.getKey())), v.getKey());
            assertEquals(v.getValue(), Rill.murmur2(utf8(v.getKey())), v.getKey());
        }
    }

    @Test
    void sendReturnsAtOnceAndGetGivesContiguousOffsetsInOrder() {
        String topic = Spu.newTopic(rill, 1);
        try (TopicProducer p = rill.topicProducer(topic)) {
            List<ProduceOutput> outs = new ArrayList<>();
            for (int i = 0; i < 500; i++) {
                outs.add(p.send("k" + i, "v" + i));
            }
            for (int i = 0; i < outs.size(); i++) {
                RecordMetadata m = outs.get(i).get();
                assertEquals(0, m.partition());
                assertEquals(i, m.offset(), "offsets follow the order of the sends");
                assertEquals(m, outs.get(i).get(), "the answer is kept");
            }
        }
        List<Record> back = Spu.readAll(rill, topic, 500);
        assertEquals(500, back.size());
        for (int i = 0; i < 500; i++) {
            assertEquals(i, back.get(i).offset());
            assertEquals("k" + i, back.get(i).keyString());
            assertEquals("v" + i, back.get(i).valueString());
        }
    }

    @Test
    void bytesNullKeysAndHeadersAreReadBack() {
        String topic = Spu.newTopic(rill, 1);
        try (TopicProducer p = rill.topicProducer(topic)) {
            byte[] value = {0, 1, 2, (byte) 0xff};
            Map<String, byte[]> headers = new LinkedHashMap<>();
            headers.put("trace", utf8("abc"));
            headers.put("empty", new byte[0]);
            assertEquals(0, p.send(null, value, headers).get().offset());
            assertEquals(1, p.send(utf8("key"), utf8("second")).get().offset());
        }
        try (PartitionConsumer c = rill.partitionConsumer(topic, 0);
                RecordStream s = c.stream(Offset.beginning())) {
            Record first = s.next();
            assertNull(first.key());
            assertArrayEquals(new byte[] {0, 1, 2, (byte) 0xff}, first.value());
            assertEquals(2, first.headers().size());
            assertEquals("trace", first.headers().get(0).name());
            assertArrayEquals(utf8("abc"), first.headers().get(0).value());
            assertArrayEquals(new byte[0], first.headers().get(1).value());
            assertTrue(first.timestamp() > 1_600_000_000_000L, "a wall-clock timestamp");
            Record second = s.next();
            assertEquals("key", second.keyString());
            assertEquals(1, second.offset());
        }
    }

    @Test
    void keyedRecordsLandWhereTheKafkaJavaClientPutsThem() {
        int partitions = 4;
        String topic = Spu.newTopic(rill, partitions);
        Map<String, Integer> expected = new LinkedHashMap<>();
        try (TopicProducer p = rill.topicProducer(topic)) {
            List<ProduceOutput> outs = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                String key = "key-" + i;
                expected.put(key, (kafkaMurmur2(utf8(key)) & 0x7fffffff) % partitions);
                outs.add(p.send(key, "v" + i));
            }
            int i = 0;
            for (String key : expected.keySet()) {
                int want = expected.get(key);
                assertEquals(want, outs.get(i++).get().partition(), key);
                assertEquals(want, Rill.partitionForKey(key, partitions), key);
            }
        }
        Set<Integer> used = new HashSet<>();
        for (Record r : Spu.readAll(rill, topic, 200)) {
            assertEquals((int) expected.get(r.keyString()), r.partition(), r.keyString());
            used.add(r.partition());
        }
        assertEquals(partitions, used.size(), "200 keys reach every partition");
    }

    @Test
    void keylessRecordsGoRoundRobin() {
        String topic = Spu.newTopic(rill, 3);
        TopicProducerConfig config = TopicProducerConfig.builder().linger(Duration.ZERO).build();
        try (TopicProducer p = rill.topicProducer(topic, config)) {
            int[] counts = new int[3];
            List<ProduceOutput> outs = new ArrayList<>();
            for (int i = 0; i < 30; i++) {
                outs.add(p.send((byte[]) null, utf8("v" + i)));
            }
            for (ProduceOutput o : outs) {
                counts[o.get().partition()]++;
            }
            assertArrayEquals(new int[] {10, 10, 10}, counts);
        }
    }

    @Test
    void completableFuturesCompleteOffRillsThreads() throws Exception {
        String topic = Spu.newTopic(rill, 1);
        TopicProducerConfig config = TopicProducerConfig.builder()
                .linger(Duration.ofMillis(20)).build();
        try (TopicProducer p = rill.topicProducer(topic, config)) {
            List<CompletableFuture<String>> threads = new ArrayList<>();
            List<CompletableFuture<RecordMetadata>> futures = new ArrayList<>();
            for (int i = 0; i < 300; i++) {
                CompletableFuture<RecordMetadata> f = p.sendAsync("k", "v" + i);
                futures.add(f);
                threads.add(f.thenApply(m -> Thread.currentThread().getName()));
            }
            CompletableFuture.allOf(futures.toArray(new CompletableFuture<?>[0]))
                    .get(30, TimeUnit.SECONDS);
            for (int i = 0; i < futures.size(); i++) {
                assertEquals(i, futures.get(i).get().offset());
            }
            for (CompletableFuture<String> t : threads) {
                assertFalse(t.get().startsWith("rill-java"), t.get());
            }
            // A future asked for after the answer is complete at once.
            ProduceOutput out = p.send("k", "late");
            RecordMetadata m = out.get();
            assertEquals(m, out.future().getNow(null));
        }
    }

    @Test
    void manyThreadsShareOneProducer() throws Exception {
        String topic = Spu.newTopic(rill, 1);
        int threads = 8;
        int each = 2000;
        TopicProducerConfig config = TopicProducerConfig.builder()
                .linger(Duration.ofMillis(2)).build();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try (TopicProducer p = rill.topicProducer(topic, config)) {
            List<Future<long[]>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                final int thread = t;
                results.add(pool.submit(() -> {
                    List<ProduceOutput> outs = new ArrayList<>();
                    for (int i = 0; i < each; i++) {
                        outs.add(p.send("t" + thread, thread + ":" + i));
                    }
                    long[] offsets = new long[each];
                    for (int i = 0; i < each; i++) {
                        offsets[i] = outs.get(i).get().offset();
                    }
                    return offsets;
                }));
            }
            Set<Long> all = new HashSet<>();
            for (Future<long[]> f : results) {
                long[] offsets = f.get(120, TimeUnit.SECONDS);
                for (int i = 1; i < offsets.length; i++) {
                    assertTrue(offsets[i] > offsets[i - 1], "each thread's order is kept");
                }
                for (long o : offsets) {
                    assertTrue(all.add(o), "offset " + o + " given twice");
                }
            }
            assertEquals(threads * each, all.size());
            assertEquals(0L, (long) all.stream().min(Long::compare).get());
            assertEquals(threads * each - 1L, (long) all.stream().max(Long::compare).get(),
                    "the offsets are contiguous");
        } finally {
            pool.shutdownNow();
        }
        // Read back: every thread's records, in its order.
        List<Record> back = Spu.readAll(rill, topic, threads * each);
        assertEquals(threads * each, back.size());
        int[] next = new int[threads];
        for (Record r : back) {
            String[] parts = r.valueString().split(":");
            int t = Integer.parseInt(parts[0]);
            assertEquals(next[t]++, Integer.parseInt(parts[1]));
        }
    }

    @Test
    void theDocumentedSettingsReachTheProducer() {
        String topic = Spu.newTopic(rill, 1);
        TopicProducerConfig config = TopicProducerConfig.builder()
                .batchSize(64 * 1024)
                .linger(Duration.ofMillis(5))
                .compression(Compression.LZ4)
                .deliverySemantic(DeliverySemantic.atLeastOnce(new RetryPolicy(5,
                        Duration.ofMillis(10), Duration.ofSeconds(2), Duration.ofSeconds(10),
                        RetryStrategy.EXPONENTIAL_BACKOFF)))
                .isolation(Isolation.READ_COMMITTED)
                .timeout(Duration.ofSeconds(3))
                .maxRequestSize(2 * 1024 * 1024)
                .bufferMemory(8 * 1024 * 1024)
                .partitioner(Partitioner.STICKY)
                .build();
        String big = "x".repeat(1000);
        try (TopicProducer p = rill.topicProducer(topic, config)) {
            assertEquals(topic, p.topic());
            assertEquals(1, p.partitionCount());
            for (int i = 0; i < 100; i++) {
                p.send("k", big + i);
            }
            p.flush();
        }
        List<Record> back = Spu.readAll(rill, topic, 100);
        assertEquals(100, back.size(), "LZ4 batches read back");
        assertEquals(big + 99, back.get(99).valueString());
    }

    @Test
    void flushAnswersEverythingSentBeforeIt() {
        String topic = Spu.newTopic(rill, 2);
        TopicProducerConfig config = TopicProducerConfig.builder()
                .linger(Duration.ofSeconds(30)).build();
        try (TopicProducer p = rill.topicProducer(topic, config)) {
            List<ProduceOutput> outs = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                outs.add(p.send("k" + i, "v"));
            }
            assertFalse(outs.get(0).tryGet().isPresent(), "lingering for 30 s");
            long started = System.nanoTime();
            p.flush();
            assertTrue(System.nanoTime() - started < 10_000_000_000L, "flush does not linger");
            for (ProduceOutput o : outs) {
                assertTrue(o.isDone());
                assertNotNull(o.tryGet().get());
            }
        }
    }

    @Test
    void oneMillionRecordsOf100Bytes() {
        String topic = Spu.newTopic(rill, 1);
        int n = 1_000_000;
        byte[] value = new byte[100];
        java.util.Arrays.fill(value, (byte) 'r');
        TopicProducerConfig config = TopicProducerConfig.builder()
                .batchSize(256 * 1024)
                .linger(Duration.ofMillis(5))
                .build();
        long started = System.nanoTime();
        ProduceOutput last = null;
        ProduceOutput[] sample = new ProduceOutput[100];
        try (TopicProducer p = rill.topicProducer(topic, config)) {
            for (int i = 0; i < n; i++) {
                last = p.send(null, value);
                if (i % 10_000 == 0) {
                    sample[i / 10_000] = last;
                }
            }
            p.flush();
            assertEquals(n - 1, last.get().offset(), "every record stored, in order");
            for (int i = 0; i < sample.length; i++) {
                assertEquals(i * 10_000L, sample[i].get().offset());
            }
        }
        double seconds = (System.nanoTime() - started) / 1e9;
        System.out.printf("1,000,000 records of 100 B sent and acknowledged in %.2f s: "
                + "%,.0f records/s%n", seconds, n / seconds);
    }
}
