package dev.rill.examples;

import dev.rill.client.DeliverySemantic;
import dev.rill.client.RecordMetadata;
import dev.rill.client.RetryPolicy;
import dev.rill.client.RetryStrategy;
import dev.rill.client.Rill;
import dev.rill.client.TopicProducer;
import dev.rill.client.TopicProducerConfig;
import java.time.Duration;

/**
 * The documented at-least-once example (design.md §2), in Java: at most five retries, all
 * within 10 s, delays growing exponentially (10 ms, 100 ms, 1000 ms, then 2000 ms, the cap).
 *
 * <p>Needs a running SPU and the topic: {@code rill cluster start}, then {@code rill topic
 * create greetings}.
 */
public final class AtLeastOnce {
    private AtLeastOnce() {}

    public static void main(String[] args) {
        try (Rill rill = Rill.connect()) {
            RetryPolicy policy = new RetryPolicy(5, Duration.ofMillis(10), Duration.ofSeconds(2),
                    Duration.ofSeconds(10), RetryStrategy.EXPONENTIAL_BACKOFF);
            TopicProducerConfig config = TopicProducerConfig.builder()
                    .deliverySemantic(DeliverySemantic.atLeastOnce(policy))
                    .build();
            try (TopicProducer producer = rill.topicProducer("greetings", config)) {
                RecordMetadata metadata = producer.send("Hello", "Rill!").get();
                System.out.println("partition " + metadata.partitionId() + ", offset "
                        + metadata.offset());
            }
        }
    }
}
