"""The documented at-least-once example (design.md §2), in Python: at most
five retries, all within 10 s, delays growing exponentially (10 ms, 100 ms,
1000 ms, then 2000 ms, the cap).

Needs a running SPU and the topic: `rill cluster start`, then
`rill topic create greetings`.
"""

from datetime import timedelta

from rill import (
    DeliverySemantic,
    RetryPolicy,
    RetryStrategy,
    Rill,
    TopicProducerConfigBuilder,
)

rill = Rill.connect()
policy = RetryPolicy(
    max_retries=5,
    initial_delay=timedelta(milliseconds=10),
    max_delay=timedelta(seconds=2),
    timeout=timedelta(seconds=10),
    strategy=RetryStrategy.EXPONENTIAL_BACKOFF,
)
config = TopicProducerConfigBuilder() \
    .delivery_semantic(DeliverySemantic.at_least_once(policy)) \
    .build()
producer = rill.topic_producer_with_config("greetings", config)
output = producer.send("Hello", "Rill!")
metadata = output.wait()
print(f"partition {metadata.partition_id()}, offset {metadata.offset()}")
