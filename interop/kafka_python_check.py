#!/usr/bin/python3
"""kafka-python checks.

usage: kafka_python_check.py BOOTSTRAP roundtrip CODEC
       kafka_python_check.py BOOTSTRAP admin

roundtrip: KafkaProducer sends keyed records with headers (acks=all) to a
dedicated 2-partition topic; KafkaConsumer with assign() + seek_to_beginning()
reads them back and compares keys, values, headers and offsets.
admin: KafkaAdminClient create_topics / delete_topics.

No api_version is passed: kafka-python 2.0.2 infers the broker version from
the ApiVersions answer (the newest API/version pair it knows and the SPU
offers is Produce v8, so it guesses 2.4.0). That is >= 0.11, so record
headers and v2 record batches are used; the check asserts it so a change in
what the SPU advertises cannot silently drop headers.
"""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import codec as kcodec
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from common import create_topic, deadline, expect, fail, run, skip

PARTITIONS = 2
COUNT = 300

CODEC_AVAILABLE = {
    "none": lambda: True,
    "gzip": lambda: True,
    "snappy": kcodec.has_snappy,
    "lz4": kcodec.has_lz4,
    "zstd": kcodec.has_zstd,
}
CODEC_MODULE = {"snappy": "python3-snappy", "lz4": "python3-lz4", "zstd": "python3-zstandard"}


def record(i):
    key = f"kp-key-{i % 11}".encode()
    value = (f"kp-value-{i:05d} " + "the quick brown fox " * (1 + i % 4)).encode()
    headers = [("idx", str(i).encode()), ("client", b"kafka-python")]
    return key, value, headers


def roundtrip(bootstrap, codec):
    if not CODEC_AVAILABLE[codec]():
        skip(f"kafka-python codec {codec}: python module missing (Debian {CODEC_MODULE[codec]}), not tested")
    topic = f"kp-{codec}"
    create_topic(bootstrap, topic, PARTITIONS)

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
        batch_size=4096,  # several batches per partition
        request_timeout_ms=15000,
        max_block_ms=15000,
    )
    version = producer.config["api_version"]
    expect(version >= (0, 11), f"kafka-python inferred broker version {version} < 0.11: no headers / v2 batches")
    futures = []
    for i in range(COUNT):
        key, value, headers = record(i)
        futures.append(producer.send(topic, key=key, value=value, headers=headers))
    producer.flush(timeout=30)
    sent = {}
    for i, f in enumerate(futures):
        md = f.get(timeout=10)  # raises the produce error, if any
        sent[i] = (md.partition, md.offset)
    producer.close(timeout=10)
    for p in range(PARTITIONS):
        offs = sorted(o for (pp, o) in sent.values() if pp == p)
        expect(offs == list(range(len(offs))), f"partition {p}: offsets not 0..{len(offs) - 1}: {offs[:10]}")

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,  # no group protocol: assign() only
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
        request_timeout_ms=15000,
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    got = {}
    ok = deadline(30)
    while ok() and len(got) < COUNT:
        for tp, records in consumer.poll(timeout_ms=500).items():
            for r in records:
                idx = int(dict(r.headers)["idx"])
                expect(idx not in got, f"record {idx} read twice")
                got[idx] = (r.partition, r.offset, r.key, r.value, list(r.headers))
    end = consumer.end_offsets(tps)  # ListOffsets latest
    consumer.close()
    expect(len(got) == COUNT, f"read {len(got)} of {COUNT} records back")
    for i in range(COUNT):
        key, value, headers = record(i)
        p, off, k, v, h = got[i]
        expect((p, off) == sent[i], f"record {i}: read at {(p, off)}, produce said {sent[i]}")
        expect(k == key and v == value, f"record {i}: key/value differ")
        expect(h == headers, f"record {i}: headers {h!r} != {headers!r}")
    for tp in tps:
        n = sum(1 for (p, _) in sent.values() if p == tp.partition)
        expect(end[tp] == n, f"end offset of {tp} is {end[tp]}, expected {n}")
    return f"{COUNT} records codec={codec} acks=all read back intact (kafka-python api_version {version})"


def admin(bootstrap):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    names = ["kp-admin-a", "kp-admin-b"]
    client.create_topics([NewTopic(n, num_partitions=2, replication_factor=1) for n in names], timeout_ms=10000)
    expect(set(names) <= set(client.list_topics()), f"created topics missing from list_topics: {client.list_topics()}")
    try:
        client.create_topics([NewTopic(names[0], 1, 1)], timeout_ms=10000)
        fail("creating an existing topic did not raise TopicAlreadyExistsError")
    except TopicAlreadyExistsError:
        pass
    client.delete_topics(names, timeout_ms=10000)
    ok = deadline(10)
    while ok() and set(names) & set(client.list_topics()):
        time.sleep(0.2)
    left = set(names) & set(client.list_topics())
    expect(not left, f"deleted topics still listed: {sorted(left)}")
    client.close()
    return "KafkaAdminClient create_topics, TopicAlreadyExists, delete_topics, list_topics all behave"


def main():
    bootstrap, mode = sys.argv[1:3]
    if mode == "roundtrip":
        return roundtrip(bootstrap, sys.argv[3])
    if mode == "admin":
        return admin(bootstrap)
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    run(main)
