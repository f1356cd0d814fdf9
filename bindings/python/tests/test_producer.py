"""The producer against a real SPU: partitioning, outputs, threads, errors,
and the records read back by the consumers."""

import threading
import time

import pytest

import rill
from conftest import new_topic, read_all


def java_murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2` in pure Python (signed 32-bit, as Java's)."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = data[length & ~3:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    return (java_murmur2(key) & 0x7FFFFFFF) % partitions


def test_the_python_murmur2_matches_kafkas_published_vectors():
    # Kafka's UtilsTest.testMurmur2.
    vectors = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, expected in vectors.items():
        assert java_murmur2(key) == expected, key
        assert rill.murmur2(key) == expected, key


def test_keyed_records_land_where_the_java_client_puts_them(client):
    partitions = 5
    topic = new_topic(client, partitions)
    producer = client.topic_producer(topic)
    keys = [f"user-{i}".encode() for i in range(200)] + [b"", b"a", b"\xff\x00\x10"]
    outputs = [(k, producer.send(k, b"v")) for k in keys]
    seen = set()
    for key, out in outputs:
        md = out.wait()
        assert md.partition == java_partition(key, partitions), key
        seen.add(md.partition)
    assert seen == set(range(partitions)), "200 keys reach every partition"
    # str keys hash as their UTF-8 bytes.
    assert producer.send("user-7", "v").wait().partition == java_partition(b"user-7", partitions)


def test_keyless_records_go_round_robin(client):
    topic = new_topic(client, 4)
    producer = client.topic_producer(topic)
    parts = [producer.send(None, f"r{i}").wait().partition for i in range(24)]
    for a, b in zip(parts, parts[1:]):
        assert b == (a + 1) % 4, parts
    assert sorted(parts[:4]) == [0, 1, 2, 3]


def test_send_returns_at_once_and_wait_gives_consecutive_offsets(client, topic):
    producer = client.topic_producer(topic)  # linger 100 ms by default
    started = time.monotonic()
    outputs = [producer.send(b"k", b"value %d" % i) for i in range(100)]
    # Waiting for each batch would take 100 x linger = 10 s.
    assert time.monotonic() - started < 1.0, "send does not wait for the batch"
    mds = [o.wait() for o in outputs]
    assert [m.offset for m in mds] == list(range(100))
    assert [m.offset() for m in mds][:3] == [0, 1, 2]
    assert {m.partition_id() for m in mds} == {0}
    partition, offset = mds[5]
    assert (partition, offset) == (0, 5)
    assert outputs[0].try_wait() == rill.RecordMetadata(0, 0)


def test_send_string_send_all_and_flush(client, topic):
    producer = client.topic_producer_with_config(
        topic, rill.TopicProducerConfigBuilder().linger(5000).build())
    first = producer.send_string("plain text")
    many = producer.send_all([("a", b"1"), (b"b", "2"), (None, bytearray(b"3"))])
    assert first.try_wait() is None, "linger 5 s: nothing sent yet"
    producer.flush()
    assert first.try_wait() is not None, "flush waited for the answer"
    assert [o.wait().offset for o in many] == [1, 2, 3]
    records = read_all(client, topic, 4)
    assert [(r.key, r.value) for r in records] == [
        (None, b"plain text"), (b"a", b"1"), (b"b", b"2"), (None, b"3")]
    assert records[0].value_string() == "plain text" and records[1].key_string() == "a"


def test_config_builder_settings_reach_the_producer(client, topic):
    policy = rill.RetryPolicy(max_retries=5, initial_delay=10, max_delay=2000,
                              timeout=10_000, strategy=rill.RetryStrategy.EXPONENTIAL_BACKOFF)
    assert [d.total_seconds() for d in policy.delays()] == [0.01, 0.1, 1.0, 2.0, 2.0]
    config = (rill.TopicProducerConfigBuilder().batch_size(4096).linger(0).compression("lz4")
              .delivery_semantic(rill.DeliverySemantic.at_least_once(policy))
              .isolation(rill.Isolation.READ_COMMITTED).build())
    producer = client.topic_producer_with_config(topic, config)
    outs = [producer.send(None, b"x" * 100) for i in range(200)]
    assert [o.wait().offset for o in outs] == list(range(200))
    assert len(read_all(client, topic, 200)) == 200


def test_settings_that_clash_raise_config_error():
    with pytest.raises(rill.ConfigError, match="batch_size"):
        rill.TopicProducerConfigBuilder().batch_size(4 << 20).build()
    with pytest.raises(ValueError):
        rill.TopicProducerConfigBuilder().compression("brotli")
    with pytest.raises(rill.ConfigError, match="idempotence"):
        (rill.TopicProducerConfigBuilder().idempotent(True)
         .delivery_semantic(rill.DeliverySemantic.at_most_once()).build())


def test_record_too_large_and_topic_not_found(client, topic):
    config = rill.TopicProducerConfigBuilder().max_request_size(1024).build()
    producer = client.topic_producer_with_config(topic, config)
    with pytest.raises(rill.RecordTooLargeError, match="max_request_size") as e:
        producer.send(None, b"x" * 2000)
    assert isinstance(e.value, rill.RillError) and not e.value.retriable
    assert producer.send(None, b"small").wait().offset == 0, "the producer goes on"
    with pytest.raises(rill.TopicNotFoundError, match="no-such-topic"):
        client.topic_producer("no-such-topic")


def test_sends_from_several_threads(client):
    topic = new_topic(client, 3)
    producer = client.topic_producer(topic)
    per_thread, threads = 500, 4
    results = [[] for _ in range(threads)]

    def run(t):
        outs = [producer.send(f"t{t}-{i % 7}", f"{t}:{i}") for i in range(per_thread)]
        results[t] = [(o.wait(), i) for i, o in enumerate(outs)]

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    places = [tuple(md) for rs in results for md, _ in rs]
    assert len(places) == per_thread * threads
    assert len(set(places)) == len(places), "every record has its own (partition, offset)"
    records = read_all(client, topic, per_thread * threads)
    assert sorted(r.value for r in records) == sorted(
        f"{t}:{i}".encode() for t in range(threads) for i in range(per_thread))
    # Order within a thread and key is kept (same key: same partition).
    for t in range(threads):
        for k in range(7):
            mine = [int(r.value.split(b":")[1]) for r in records if r.key == f"t{t}-{k}".encode()]
            assert mine == sorted(mine)


def test_consumers_read_back_keys_values_headers_and_timestamps(client):
    topic = new_topic(client, 2)
    producer = client.topic_producer(topic)
    before = int(time.time() * 1000)
    md = producer.send(b"k1", b"v1", headers={"trace": b"abc", "kind": "greeting"}).wait()
    md2 = producer.send(b"k2", b"v2", headers=[("h", b"")]).wait()
    after = int(time.time() * 1000)
    stream = client.partition_consumer(topic, md.partition).stream(rill.Offset.beginning())
    r = next(iter(stream))
    assert (r.key, r.value, r.offset, r.partition) == (b"k1", b"v1", md.offset, md.partition)
    assert r.headers == [("trace", b"abc"), ("kind", b"greeting")]
    assert before - 1000 <= r.timestamp <= after + 1000
    # The multi-partition consumer sees both partitions' records.
    both = read_all(client, topic, 2)
    assert sorted((x.key, tuple(x.headers)) for x in both) == [
        (b"k1", (("trace", b"abc"), ("kind", b"greeting"))), (b"k2", (("h", b""),))]
    assert {(x.partition, x.offset) for x in both} == {tuple(md), tuple(md2)}
    # From an absolute offset, and nothing more after the end.
    again = client.partition_consumer(topic, md.partition).stream(rill.Offset.absolute(md.offset))
    assert again.try_next().value == b"v1"
    with pytest.raises(rill.TopicNotFoundError):
        client.partition_consumer(topic, 9)


def test_close_delivers_then_refuses_and_the_context_manager_closes(client, topic):
    with client.topic_producer_with_config(
            topic, rill.TopicProducerConfigBuilder().linger(5000).build()) as producer:
        out = producer.send(None, b"pending at close")
    assert out.try_wait() == rill.RecordMetadata(0, 0), "close flushed it"
    with pytest.raises(rill.ProducerClosedError):
        producer.send(None, b"too late")
