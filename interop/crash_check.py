#!/usr/bin/python3
"""Crash recovery, driven by interop/run around a `kill -9` of the SPU.

usage: crash_check.py BOOTSTRAP produce TOPIC COUNT STATEFILE
       crash_check.py BOOTSTRAP verify  TOPIC STATEFILE

produce: creates TOPIC (1 partition), produces COUNT records with acks=all
  (several codecs mixed in, in separate batches), and writes the delivered
  offsets to STATEFILE.
verify (after the SPU was killed and restarted on the same data dir): every
  acknowledged record is read back at its acknowledged offset, and the next
  produce is given offset COUNT.
"""

import json
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from common import create_topic, deadline, expect, fail, run


def producer(bootstrap, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": False,
        "acks": "all",
        "linger.ms": 2,
        "batch.num.messages": 100,
        "message.timeout.ms": 20000,
    }
    conf.update(extra)
    return Producer(conf)


def value(i):
    return f"crash-{i:06d}".encode() * 4


def produce(bootstrap, topic, count, state):
    create_topic(bootstrap, topic, 1)
    acked = {}
    errors = []

    def on_delivery(i, err, msg):
        if err is not None:
            errors.append(f"{i}: {err}")
        else:
            acked[i] = msg.offset()

    # Records in order, in chunks under different codecs (one producer each,
    # flushed before the next so the offsets stay in record order).
    codecs = ["none", "lz4", "zstd", "gzip", "snappy"]
    chunk = (count + len(codecs) - 1) // len(codecs)
    for n, codec in enumerate(codecs):
        p = producer(bootstrap, **{"compression.type": codec})
        for i in range(n * chunk, min(count, (n + 1) * chunk)):
            p.produce(topic, key=str(i).encode(), value=value(i), on_delivery=lambda e, m, i=i: on_delivery(i, e, m))
            p.poll(0)
        expect(p.flush(30) == 0, f"codec {codec}: records undelivered after flush")
    expect(not errors, f"{len(errors)} delivery errors, first {errors[:1]}")
    expect(len(acked) == count, f"{len(acked)} acks for {count} records")
    expect(sorted(acked.values()) == list(range(count)), "acknowledged offsets are not 0..N-1")
    with open(state, "w") as f:
        json.dump({"count": count, "acked": acked}, f)
    return f"{count} records acknowledged (acks=all) at offsets 0..{count - 1}"


def read_all(bootstrap, topic):
    """Reads partition 0 from the beginning to EOF: ({offset: (key, value)}, watermarks)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "rill-interop",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 200,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    by_offset = {}
    ok = deadline(30)
    while ok():
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                break
            fail(f"consumer error after restart: {msg.error()}")
        by_offset[msg.offset()] = (msg.key(), msg.value())
    marks = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.close()
    return by_offset, marks


def verify(bootstrap, topic, state):
    with open(state) as f:
        st = json.load(f)
    count = st["count"]
    acked = {int(k): v for k, v in st["acked"].items()}
    problems = []

    by_offset, marks = read_all(bootstrap, topic)
    lost = [i for i, off in acked.items() if off not in by_offset]
    if lost:
        problems.append(
            f"{len(lost)} of {count} acknowledged records not readable after kill -9 + restart"
            f" (first offset {acked[lost[0]]}); watermarks (low, high) = {marks}, expected (0, {count})"
        )
    else:
        bad = [i for i, off in acked.items() if by_offset[off] != (str(i).encode(), value(i))]
        if bad:
            problems.append(f"{len(bad)} records differ after restart (first offset {acked[bad[0]]})")
        if len(by_offset) != count or marks != (0, count):
            problems.append(f"read {len(by_offset)} records, watermarks {marks}; expected {count}, (0, {count})")

    p = producer(bootstrap)
    got = []
    p.produce(topic, key=b"after", value=b"after-restart", on_delivery=lambda e, m: got.append((e, m.offset())))
    if p.flush(20) != 0 or not got or got[0][0] is not None:
        problems.append(f"produce after restart failed: {got}")
    elif got[0][1] != count:
        problems.append(f"next produce after restart got offset {got[0][1]}, expected {count}")
    elif lost:
        # Diagnostic: are the lost records gone, or only hidden?
        again, marks2 = read_all(bootstrap, topic)
        still = sum(1 for off in acked.values() if off not in again)
        problems.append(
            f"next produce got offset {count} (right); after it {count - still} of {count} acknowledged"
            f" records are readable again, watermarks {marks2}"
        )
    if problems:
        fail("; ".join(problems))
    return f"all {count} acknowledged records at their offsets after kill -9 + restart; next produce at offset {count}"


def main():
    bootstrap, mode, topic = sys.argv[1:4]
    if mode == "produce":
        return produce(bootstrap, topic, int(sys.argv[4]), sys.argv[5])
    if mode == "verify":
        return verify(bootstrap, topic, sys.argv[4])
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    run(main)
