"""Type stubs for the compiled part of the Rill binding (`rill._rill`).

Every blocking method releases the GIL while Rust waits and raises
KeyboardInterrupt on Ctrl-C; each `async_*` method returns an awaitable
(an asyncio future of the running loop). Errors are `rill.RillError`
subclasses carrying the Rust message.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Awaitable, Iterable, Iterator, AsyncIterator, Mapping, Optional, Sequence, Tuple, Union

from ._support import RecordMetadata

Data = Union[bytes, bytearray, str]
Duration = Union[timedelta, int, float]  # a timedelta, or milliseconds
Headers = Union[Mapping[str, Data], Iterable[Tuple[str, Data]]]

class RetryStrategy:
    """How the delay between retries grows."""
    FIXED_DELAY: RetryStrategy
    FIBONACCI_BACKOFF: RetryStrategy
    EXPONENTIAL_BACKOFF: RetryStrategy

class Isolation:
    """When the SPU acknowledges a batch: READ_UNCOMMITTED (acks 1, default)
    or READ_COMMITTED (acks all)."""
    READ_UNCOMMITTED: Isolation
    READ_COMMITTED: Isolation

class RetryPolicy:
    """At most `max_retries` retries (default 4), `strategy` delays between
    them starting at `initial_delay` (20 ms) capped at `max_delay` (200 s),
    all attempts within `timeout` (300 s)."""
    def __init__(
        self,
        max_retries: Optional[int] = None,
        initial_delay: Optional[Duration] = None,
        max_delay: Optional[Duration] = None,
        timeout: Optional[Duration] = None,
        strategy: Optional[RetryStrategy] = None,
    ) -> None: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def initial_delay(self) -> timedelta: ...
    @property
    def max_delay(self) -> timedelta: ...
    @property
    def timeout(self) -> timedelta: ...
    @property
    def strategy(self) -> RetryStrategy: ...
    def delays(self) -> list[timedelta]:
        """The delay before each retry, in order."""

class DeliverySemantic:
    @staticmethod
    def at_most_once() -> DeliverySemantic:
        """Each batch sent once, without retry; `wait()` still reports the answer."""
    @staticmethod
    def at_least_once(policy: Optional[RetryPolicy] = None) -> DeliverySemantic:
        """Failed batches are sent again per `policy` (the default policy if None)."""

class TopicProducerConfig:
    """A producer's settings; made by `TopicProducerConfigBuilder.build()`."""

class TopicProducerConfigBuilder:
    """Each setter returns the builder; unset settings keep their defaults."""
    def __init__(self) -> None: ...
    def batch_size(self, n: int) -> TopicProducerConfigBuilder:
        """Most uncompressed bytes in one batch (16 KiB)."""
    def linger(self, d: Duration) -> TopicProducerConfigBuilder:
        """How long a new batch waits for more records (100 ms)."""
    def compression(self, name: str) -> TopicProducerConfigBuilder:
        """"none" (default), "gzip", "snappy", "lz4" or "zstd"."""
    def delivery_semantic(self, s: DeliverySemantic) -> TopicProducerConfigBuilder:
        """At-least-once with the default policy unless set."""
    def isolation(self, i: Isolation) -> TopicProducerConfigBuilder: ...
    def timeout(self, d: Duration) -> TopicProducerConfigBuilder:
        """How long the SPU may wait for the isolation level (1500 ms)."""
    def max_request_size(self, n: int) -> TopicProducerConfigBuilder:
        """Largest request; bigger records raise RecordTooLargeError (1 MiB)."""
    def buffer_memory(self, n: int) -> TopicProducerConfigBuilder:
        """Bound on bytes waiting in the producer; `send` blocks while full (32 MiB)."""
    def partitioner(self, name: str) -> TopicProducerConfigBuilder:
        """Keyless records: "round_robin" (default) or "sticky"."""
    def idempotent(self, on: bool) -> TopicProducerConfigBuilder:
        """Producer id and sequence numbers (on with at-least-once)."""
    def build(self) -> TopicProducerConfig:
        """Raises ConfigError when settings clash."""

class ProduceOutput:
    def wait(self) -> RecordMetadata:
        """Blocks until the record's batch is answered; raises its error."""
    def async_wait(self) -> Awaitable[RecordMetadata]: ...
    def try_wait(self) -> Optional[RecordMetadata]:
        """The answer if it came (raises its error), else None."""

class TopicProducer:
    @property
    def topic(self) -> str: ...
    def send(self, key: Optional[Data], value: Data, headers: Optional[Headers] = None) -> ProduceOutput:
        """Queues a record, returns at once; blocks only while buffer_memory is full."""
    def send_string(self, value: str) -> ProduceOutput:
        """A keyless record."""
    def send_all(self, records: Iterable[Tuple[Optional[Data], Data]]) -> list[ProduceOutput]: ...
    def flush(self) -> None:
        """Sends what is pending and waits until each batch is answered."""
    def close(self) -> None:
        """Flushes; later sends raise ProducerClosedError."""
    def async_send(self, key: Optional[Data], value: Data, headers: Optional[Headers] = None) -> Awaitable[ProduceOutput]: ...
    def async_flush(self) -> Awaitable[None]: ...
    def partition_count(self) -> int: ...
    def __enter__(self) -> TopicProducer: ...
    def __exit__(self, *exc: object) -> bool: ...

class Offset:
    @staticmethod
    def beginning() -> Offset: ...
    @staticmethod
    def end() -> Offset: ...
    @staticmethod
    def absolute(offset: int) -> Offset: ...
    @staticmethod
    def from_end(n: int) -> Offset: ...

class ConsumerRecord:
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int:
        """Milliseconds since the Unix epoch."""
    @property
    def key(self) -> Optional[bytes]: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> list[Tuple[str, Optional[bytes]]]: ...
    def value_string(self) -> str: ...
    def key_string(self) -> Optional[str]: ...

class RecordStream(Iterator[ConsumerRecord], AsyncIterator[ConsumerRecord]):
    """Never ends by itself: at the end of the log it waits for new records."""
    def __iter__(self) -> RecordStream: ...
    def __next__(self) -> ConsumerRecord: ...
    def __aiter__(self) -> RecordStream: ...
    def __anext__(self) -> Awaitable[ConsumerRecord]: ...
    def try_next(self) -> Optional[ConsumerRecord]:
        """None when nothing arrives within the SPU's long-poll wait."""
    def async_try_next(self) -> Awaitable[Optional[ConsumerRecord]]: ...

class PartitionConsumer:
    def stream(self, offset: Optional[Offset] = None) -> RecordStream: ...
    def async_stream(self, offset: Optional[Offset] = None) -> Awaitable[RecordStream]: ...

class TopicInfo:
    name: str
    partitions: int

class RillAdmin:
    def create_topic(self, topic: str, partitions: int = 1, replication: int = 1,
                     configs: Optional[Mapping[str, str]] = None) -> None: ...
    def list_topics(self) -> list[TopicInfo]: ...
    def delete_topic(self, topic: str) -> None: ...

class Rill:
    @staticmethod
    def connect(addr: Optional[str] = None) -> Rill:
        """`addr`, else RILL_ADDR, else the `rill cluster start` profile, else 127.0.0.1:9092."""
    @staticmethod
    def async_connect(addr: Optional[str] = None) -> Awaitable[Rill]: ...
    @property
    def addr(self) -> str: ...
    def topic_producer(self, topic: str) -> TopicProducer: ...
    def topic_producer_with_config(self, topic: str, config: TopicProducerConfig) -> TopicProducer: ...
    def async_topic_producer(self, topic: str, config: Optional[TopicProducerConfig] = None) -> Awaitable[TopicProducer]: ...
    def partition_consumer(self, topic: str, partition: int) -> PartitionConsumer: ...
    def consumer(self, topic: str, partitions: Optional[Sequence[int]] = None,
                 offset: Optional[Offset] = None) -> RecordStream:
        """Every partition (or those given) in one stream."""
    def admin(self) -> RillAdmin: ...

def murmur2(key: bytes) -> int:
    """Kafka's Java murmur2 of `key` (signed)."""

def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's Java client picks for `key`."""
