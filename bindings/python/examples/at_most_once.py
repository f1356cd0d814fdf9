"""The documented at-most-once example (design.md §2), in Python.

Needs a running SPU and the topic: `rill cluster start`, then
`rill topic create greetings`. The address comes from RILL_ADDR, else the
profile `rill cluster start` wrote, else 127.0.0.1:9092.
"""

from rill import DeliverySemantic, Rill, TopicProducerConfigBuilder

rill = Rill.connect()
config = TopicProducerConfigBuilder() \
    .delivery_semantic(DeliverySemantic.at_most_once()) \
    .build()
producer = rill.topic_producer_with_config("greetings", config)
output = producer.send("Hello", "Rill!")
metadata = output.wait()  # wait for the response, considering `Isolation` as well
print(f"partition {metadata.partition_id()}, offset {metadata.offset()}")
