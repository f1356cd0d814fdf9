#!/usr/bin/python3
"""confluent-kafka (librdkafka) round trip: one codec, one acks setting.

usage: confluent_check.py BOOTSTRAP CODEC ACKS [COUNT]

Creates a dedicated 3-partition topic, produces COUNT keyed records with
headers, checks every delivery report, then reads all partitions back with
assign() from the beginning and compares keys, values, headers, per-partition
order and (when acks != 0) the offsets the delivery reports gave.
"""

import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from common import create_topic, deadline, expect, fail, run

PARTITIONS = 3


def record(i):
    key = f"key-{i % 37}".encode()
    # Repetitive payload so the codecs actually compress something.
    value = (f"value-{i:06d} " + "lorem ipsum dolor sit amet " * (1 + i % 5)).encode()
    headers = [("idx", str(i).encode()), ("origin", b"confluent"), ("empty", b"")]
    return key, value, headers


def main():
    bootstrap, codec, acks = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    topic = f"cf-{codec}-acks{acks.replace('-1', 'all')}"
    create_topic(bootstrap, topic, PARTITIONS)

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            # Rill has no InitProducerId: idempotence must stay off (it is
            # off by default in librdkafka 2.0.2; set explicitly anyway).
            "enable.idempotence": False,
            "acks": acks,
            "compression.type": codec,
            "linger.ms": 5,
            "batch.num.messages": 50,  # several batches per partition
            "message.timeout.ms": 20000,
        }
    )
    reports = {}  # idx -> (partition, offset)
    errors = []

    def on_delivery(idx, err, msg):
        # Delivery-report messages carry no headers in confluent-kafka 1.7,
        # so the record index is bound into the callback.
        if err is not None:
            errors.append(f"record {idx}: {err}")
        else:
            reports[idx] = (msg.partition(), msg.offset())

    for i in range(count):
        key, value, headers = record(i)
        producer.produce(topic, value=value, key=key, headers=headers, on_delivery=lambda err, msg, i=i: on_delivery(i, err, msg))
        producer.poll(0)
    left = producer.flush(30)
    expect(left == 0, f"{left} records still undelivered after flush(30s)")
    expect(not errors, f"{len(errors)} delivery errors, first: {errors[:1]}")
    expect(len(reports) == count, f"{len(reports)} delivery reports for {count} records")
    if acks != "0":
        for p in range(PARTITIONS):
            offs = sorted(o for (pp, o) in reports.values() if pp == p)
            expect(
                offs == list(range(len(offs))),
                f"partition {p}: delivered offsets are not 0..{len(offs) - 1}: {offs[:10]}...",
            )

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            # Required by the client config; no group protocol is used with
            # assign() and nothing is committed.
            "group.id": "rill-interop",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 200,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got = {}  # idx -> (partition, offset, key, value, headers)
    eof = set()
    dupes = 0
    ok = deadline(30)
    while ok() and not (len(eof) == PARTITIONS and len(got) >= count):
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add(msg.partition())
                continue
            fail(f"consumer error: {msg.error()}")
        eof.discard(msg.partition())
        hdrs = msg.headers() or []
        idx = int(dict(hdrs)["idx"])
        if idx in got:
            dupes += 1
        got[idx] = (msg.partition(), msg.offset(), msg.key(), msg.value(), hdrs)
    consumer.close()

    expect(dupes == 0, f"{dupes} records read twice")
    missing = sorted(set(range(count)) - set(got))
    expect(not missing, f"{len(missing)} of {count} records not read back (first {missing[:5]}); EOF on {sorted(eof)}")
    expect(len(got) == count, f"read {len(got)} distinct records, produced {count}")
    last = {}
    for i in range(count):
        key, value, headers = record(i)
        p, off, k, v, h = got[i]
        expect(k == key, f"record {i}: key {k!r} != {key!r}")
        expect(v == value, f"record {i}: value differs ({len(v or b'')} vs {len(value)} bytes)")
        expect(list(h) == headers, f"record {i}: headers {h!r} != {headers!r}")
        expect(off > last.get(p, -1), f"record {i}: offset {off} not after {last.get(p)} in partition {p}")
        last[p] = off
        if acks != "0":
            expect(
                (p, off) == reports[i],
                f"record {i}: read at {(p, off)}, delivery report said {reports[i]}",
            )
    per_part = [sum(1 for v in got.values() if v[0] == p) for p in range(PARTITIONS)]
    return f"{count} records codec={codec} acks={acks}: delivered and read back intact (per partition {per_part})"


if __name__ == "__main__":
    run(main)
