package dev.rill.examples;

import dev.rill.client.DeliverySemantic;
import dev.rill.client.ProduceOutput;
import dev.rill.client.RecordMetadata;
import dev.rill.client.Rill;
import dev.rill.client.TopicProducer;
import dev.rill.client.TopicProducerConfig;

/**
 * The documented at-most-once example (design.md §2), in Java.
 *
 * <p>Needs a running SPU and the topic: {@code rill cluster start}, then {@code rill topic
 * create greetings}. The address comes from RILL_ADDR, else the profile {@code rill cluster
 * start} wrote, else 127.0.0.1:9092.
 */
public final class AtMostOnce {
    private AtMostOnce() {}

    public static void main(String[] args) {
        try (Rill rill = Rill.connect()) {
            TopicProducerConfig config = TopicProducerConfig.builder()
                    .deliverySemantic(DeliverySemantic.atMostOnce())
                    .build();
            try (TopicProducer producer = rill.topicProducer("greetings", config)) {
                ProduceOutput output = producer.send("Hello", "Rill!");
                // wait for the response, considering `Isolation` as well
                RecordMetadata metadata = output.get();
                System.out.println("partition " + metadata.partitionId() + ", offset "
                        + metadata.offset());
            }
        }
    }
}
