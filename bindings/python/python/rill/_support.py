"""The pure-Python part of the binding: the exception hierarchy, the
``RecordMetadata`` type and the helper that resolves asyncio futures from the
Rust runtime's threads. The extension (``rill._rill``) imports this module."""

from __future__ import annotations

from typing import Iterator, Optional


class RillError(Exception):
    """Any error of the Rill client. ``str(e)`` is the Rust error's message;
    ``code`` is the Kafka error code when the SPU answered with one (else
    None); ``retriable`` says whether the same request may work if sent
    again."""

    code: Optional[int] = None
    retriable: bool = False


class RillConnectionError(RillError, ConnectionError):
    """No SPU answers at the address, or a connection to it broke."""


class TopicNotFoundError(RillError):
    """The topic (or partition) does not exist."""


class RecordTooLargeError(RillError):
    """The record cannot fit in ``max_request_size``, or the SPU refused the
    batch as too large (``MESSAGE_TOO_LARGE``)."""


class RillTimeoutError(RillError, TimeoutError):
    """No answer within the time allowed."""


class ConfigError(RillError, ValueError):
    """A setting is out of range or contradicts another."""


class ProducerClosedError(RillError):
    """The producer was closed before the record's batch was answered, or a
    record was sent after ``close()``."""


class BrokerError(RillError):
    """The SPU answered with another Kafka error code (see ``code``)."""


class _CallableInt(int):
    """An ``int`` that may also be called: ``md.offset`` and ``md.offset()``
    (the name Fluvio's and Rill's Rust API use) both give the offset."""

    def __call__(self) -> int:
        return int(self)


class RecordMetadata:
    """Where a record was stored: ``partition`` and ``offset`` (also
    ``partition_id()`` and ``offset()``, as in Rust). Unpacks as a pair."""

    __slots__ = ("partition", "_offset")

    def __init__(self, partition: int, offset: int) -> None:
        self.partition = int(partition)
        self._offset = _CallableInt(offset)

    @property
    def offset(self) -> _CallableInt:
        return self._offset

    def partition_id(self) -> int:
        return self.partition

    def __iter__(self) -> Iterator[int]:
        return iter((self.partition, int(self._offset)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordMetadata):
            return (self.partition, int(self._offset)) == (other.partition, int(other._offset))
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.partition, int(self._offset)))

    def __repr__(self) -> str:
        return f"RecordMetadata(partition={self.partition}, offset={int(self._offset)})"


def _resolve(future, ok: bool, value) -> None:  # type: ignore[no-untyped-def]
    """Runs on the event loop (``call_soon_threadsafe``): hands the Rust
    result to the asyncio future unless it was cancelled."""
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
