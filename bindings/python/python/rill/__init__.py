"""Rill for Python: the Rill client (the Rust crate ``rill``) compiled in.

Blocking calls release the GIL while Rust waits and can be interrupted with
Ctrl-C; every method whose name starts with ``async_`` is the asyncio form of
the blocking method of the same name (it returns an awaitable).

    from rill import Rill, TopicProducerConfigBuilder, DeliverySemantic

    rill = Rill.connect()
    config = TopicProducerConfigBuilder().delivery_semantic(
        DeliverySemantic.at_most_once()).build()
    producer = rill.topic_producer_with_config("greetings", config)
    output = producer.send("Hello", "Rill!")
    print(output.wait())
"""

from ._rill import (
    ConsumerRecord,
    DeliverySemantic,
    Isolation,
    Offset,
    PartitionConsumer,
    ProduceOutput,
    RecordStream,
    RetryPolicy,
    RetryStrategy,
    Rill,
    RillAdmin,
    TopicInfo,
    TopicProducer,
    TopicProducerConfig,
    TopicProducerConfigBuilder,
    murmur2,
    partition_for_key,
)
from ._support import (
    BrokerError,
    ConfigError,
    ProducerClosedError,
    RecordMetadata,
    RecordTooLargeError,
    RillConnectionError,
    RillError,
    RillTimeoutError,
    TopicNotFoundError,
)

__all__ = [
    "BrokerError",
    "ConfigError",
    "ConsumerRecord",
    "DeliverySemantic",
    "Isolation",
    "Offset",
    "PartitionConsumer",
    "ProduceOutput",
    "ProducerClosedError",
    "RecordMetadata",
    "RecordStream",
    "RecordTooLargeError",
    "RetryPolicy",
    "RetryStrategy",
    "Rill",
    "RillAdmin",
    "RillConnectionError",
    "RillError",
    "RillTimeoutError",
    "TopicInfo",
    "TopicNotFoundError",
    "TopicProducer",
    "TopicProducerConfig",
    "TopicProducerConfigBuilder",
    "murmur2",
    "partition_for_key",
]
