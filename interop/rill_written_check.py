"""f. Batches written by Rill's own producer, read by confluent-kafka.

Usage: rill_written_check.py BOOTSTRAP TOPIC COUNT

The Rust example `produce_codecs` wrote COUNT keyed records to TOPIC (two
partitions) with one codec; every record must come back through librdkafka
with its key and value, each partition's offsets contiguous from 0.
"""

import sys

from confluent_kafka import Consumer, KafkaError, TopicPartition

from common import deadline, expect, run


def main():
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "rill-interop-unused",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
    seen = {}
    offsets = {0: [], 1: []}
    at_eof = set()
    alive = deadline(30)
    while len(at_eof) < 2 and alive():
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                if len(seen) >= count:
                    at_eof.add(msg.partition())
                continue
            expect(False, f"consumer error: {msg.error()}")
        key = msg.key().decode()
        seen[key] = msg.value().decode()
        offsets[msg.partition()].append(msg.offset())
    consumer.close()
    expect(len(seen) == count, f"read {len(seen)} of {count} records")
    for i in range(count):
        want = f"record {i} of {topic} " * (1 + i % 7)
        expect(seen.get(f"key-{i}") == want, f"key-{i}: value differs")
    for p, offs in offsets.items():
        expect(offs == list(range(len(offs))), f"partition {p}: offsets not contiguous from 0")
    return f"{count} records written by the Rill producer read back by librdkafka ({len(offsets[0])}+{len(offsets[1])} per partition)"


if __name__ == "__main__":
    run(main)
