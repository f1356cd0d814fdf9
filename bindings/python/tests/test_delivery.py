"""Delivery semantics with the SPU going away: at-least-once loses nothing
across a restart, at-most-once reports the failure, and a producer whose SPU
is down blocks once buffer_memory is full instead of growing."""

import threading
import time

import pytest

import rill
from conftest import read_all


def patient_policy():
    return rill.RetryPolicy(max_retries=10_000, initial_delay=100, max_delay=300,
                            timeout=60_000, strategy=rill.RetryStrategy.FIXED_DELAY)


def test_at_least_once_loses_nothing_across_an_spu_restart(own_spu):
    client = rill.Rill.connect(own_spu.addr)
    client.admin().create_topic("alo", partitions=2)
    config = (rill.TopicProducerConfigBuilder().linger(10)
              .delivery_semantic(rill.DeliverySemantic.at_least_once(patient_policy())).build())
    producer = client.topic_producer_with_config("alo", config)
    before = [producer.send(f"k{i % 5}", f"before-{i}") for i in range(100)]
    assert all(o.wait() for o in before)

    own_spu.stop()
    during = [producer.send(f"k{i % 5}", f"during-{i}") for i in range(100)]
    time.sleep(1.5)
    assert all(o.try_wait() is None for o in during), "nothing can be answered while the SPU is down"
    own_spu.restart()

    mds = [o.wait() for o in during]
    assert len({tuple(m) for m in mds}) == 100
    values = [r.value for r in read_all(client, "alo", 200)]
    expected = {f"before-{i}".encode() for i in range(100)} | {f"during-{i}".encode() for i in range(100)}
    assert set(values) == expected, "every acknowledged record is stored"
    # Order per key survives the retries.
    for k in range(5):
        mine = [v for v in values if v.startswith(b"during-") and int(v[7:]) % 5 == k]
        assert mine == sorted(mine, key=lambda v: int(v[7:]))


def test_at_most_once_surfaces_the_error_when_the_spu_is_down(own_spu):
    client = rill.Rill.connect(own_spu.addr)
    client.admin().create_topic("amo", partitions=1)
    config = (rill.TopicProducerConfigBuilder().linger(0)
              .delivery_semantic(rill.DeliverySemantic.at_most_once()).build())
    producer = client.topic_producer_with_config("amo", config)
    assert producer.send(None, b"while up").wait().offset == 0
    own_spu.stop()
    out = producer.send(None, b"while down")
    started = time.monotonic()
    with pytest.raises(rill.RillConnectionError) as e:
        out.wait()
    assert time.monotonic() - started < 30, "no retry loop under at-most-once"
    assert own_spu.addr in str(e.value)
    assert isinstance(e.value, ConnectionError) and isinstance(e.value, rill.RillError)


def test_send_blocks_when_buffer_memory_is_full_and_the_spu_is_down(own_spu):
    client = rill.Rill.connect(own_spu.addr)
    client.admin().create_topic("mem", partitions=1)
    buffer_memory, record = 256 * 1024, 1000
    config = (rill.TopicProducerConfigBuilder().batch_size(16 * 1024)
              .max_request_size(64 * 1024).buffer_memory(buffer_memory).linger(5)
              .delivery_semantic(rill.DeliverySemantic.at_least_once(patient_policy())).build())
    producer = client.topic_producer_with_config("mem", config)
    own_spu.stop()

    total = 2000  # 2 MB: eight times the buffer
    sent = [0]
    outputs = []

    def keep_sending():
        for i in range(total):
            outputs.append(producer.send(None, b"%08d" % i + b"x" * (record - 8)))
            sent[0] += 1

    worker = threading.Thread(target=keep_sending, daemon=True)
    worker.start()
    time.sleep(3)
    stuck_at = sent[0]
    time.sleep(1)
    assert worker.is_alive(), "send blocks while the buffer is full"
    assert sent[0] == stuck_at, "no record got in without room"
    assert 0 < stuck_at * record <= buffer_memory, (stuck_at, buffer_memory)

    own_spu.restart()
    worker.join(60)
    assert not worker.is_alive() and sent[0] == total, "room again once the SPU answers"
    producer.flush()
    assert [o.wait().offset for o in outputs] == list(range(total))
    assert len(read_all(client, "mem", total)) == total
