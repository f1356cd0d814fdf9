#!/usr/bin/python3
"""Consumer groups with real Kafka clients.

usage: group_check.py BOOTSTRAP trio TOPIC
       group_check.py BOOTSTRAP kafka-python TOPIC
       group_check.py BOOTSTRAP crash-before TOPIC STATEFILE
       group_check.py BOOTSTRAP crash-after TOPIC STATEFILE
       group_check.py BOOTSTRAP mixed TOPIC RILL

trio: three confluent-kafka consumers `subscribe()` to one 6-partition topic
  in one group (auto-commit every 500 ms). Once the group is stable with all
  6 partitions handed out, 600 records are produced: each is read by exactly
  one consumer. One consumer closes (it commits and leaves); 600 more
  records are produced, and the two others take its partitions and go on
  from its committed offsets: every record of the second batch is read, and
  none of the first batch again (librdkafka commits on revoke and on close,
  so the at-least-once window is empty here).
kafka-python: `KafkaConsumer(group_id=...)` reads a 2-partition topic of 200
  records from the start (auto_offset_reset=earliest), commits, closes; a
  second consumer of the group reads only the 50 records produced since.
crash-before: a 1-partition topic of 1000 records; a confluent-kafka consumer
  of a group reads 400, commits synchronously (OffsetCommit answered), reads
  on without committing; the committed offset goes to STATEFILE, then
  interop/run kills the SPU with -9 and restarts it.
crash-after: a consumer of the same group starts exactly at the committed
  offset (400) and reads to the end.
mixed: one confluent-kafka consumer and one `rill consume -G` (the binary
  RILL) in one group over a 4-partition topic: both use the range assignor
  of Kafka's consumer protocol, whichever is the group's leader. 400
  records are each read once, by the member holding the partition; then
  `rill consume` is stopped with SIGTERM (it commits and leaves), and the
  Kafka consumer takes all 4 partitions and reads the next 400 from Rill's
  commits: none lost, none of the first 400 again.
"""

import json
import signal
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from common import create_topic, deadline, expect, fail, run


def produce(bootstrap, topic, start, count, partitions):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False, "linger.ms": 5})
    errors = []
    for i in range(start, start + count):
        p.produce(
            topic,
            value=f"r{i}".encode(),
            partition=i % partitions,
            on_delivery=lambda e, m: e is None or errors.append(str(e)),
        )
        p.poll(0)
    expect(p.flush(20) == 0 and not errors, f"produce failed: {errors[:3]}")


def consumer(bootstrap, group, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 500,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 300,
        "enable.partition.eof": False,
    }
    conf.update(extra)
    return Consumer(conf)


class Member:
    """One consumer polled by its own thread; records what it read."""

    def __init__(self, bootstrap, group, topic, name):
        self.name = name
        self.seen = []
        self.assigned = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.c = consumer(bootstrap, group)

        def on_assign(c, parts):
            with self.lock:
                self.assigned = {p.partition for p in parts}

        def on_revoke(c, parts):
            with self.lock:
                self.assigned = set()

        self.c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop.is_set():
            m = self.c.poll(0.1)
            if m is None:
                continue
            if m.error() is not None:
                continue
            with self.lock:
                self.seen.append(m.value().decode())

    def close(self):
        self.stop.set()
        self.t.join(10)
        self.c.close()


def trio(bootstrap, topic):
    create_topic(bootstrap, topic, 6)
    group = f"{topic}-group"
    members = [Member(bootstrap, group, topic, n) for n in "abc"]
    try:
        ok = deadline(30)
        while ok():
            sets = [m.assigned for m in members]
            if all(sets) and sorted(p for s in sets for p in s) == list(range(6)):
                break
            time.sleep(0.1)
        else:
            fail(f"the group never settled: assignments {[sorted(m.assigned) for m in members]}")
        layout = {m.name: sorted(m.assigned) for m in members}
        produce(bootstrap, topic, 0, 600, 6)
        want = {f"r{i}" for i in range(600)}
        ok = deadline(20)
        while ok():
            if sum(len(m.seen) for m in members) >= 600:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        first = [x for m in members for x in m.seen]
        expect(len(first) == 600 and set(first) == want,
               f"first batch: {len(first)} reads of {len(set(first))} distinct records, expected 600 once each")
        # The third one leaves; the others take over its partitions.
        gone = members.pop()
        gone.close()
        for m in members:
            with m.lock:
                m.seen.clear()
        produce(bootstrap, topic, 600, 600, 6)
        want2 = {f"r{i}" for i in range(600, 1200)}
        ok = deadline(30)
        while ok():
            got = {x for m in members for x in m.seen}
            if want2 <= got:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        second = [x for m in members for x in m.seen]
        missing = want2 - set(second)
        expect(not missing, f"after {gone.name} left, {len(missing)} records never read (e.g. {sorted(missing)[:3]})")
        again = [x for x in second if x not in want2]
        expect(not again, f"{len(again)} records of the first batch read again (e.g. {again[:3]})")
        dups = len(second) - len(set(second))
        expect(dups == 0, f"{dups} records of the second batch read twice")
        taken = {m.name: sorted(m.assigned) for m in members}
        return (f"3 consumers {layout}: 600 records each read once; {gone.name} closed, "
                f"{taken} read the next 600 once, nothing lost or read again")
    finally:
        for m in members:
            m.close()


def kafka_python(bootstrap, topic):
    from kafka import KafkaConsumer

    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 0, 200, 2)
    group = f"{topic}-group"

    def read(expected):
        c = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=3000,
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        )
        got = []
        ok = deadline(25)
        while ok() and len(got) < expected:
            for batch in c.poll(timeout_ms=500).values():
                got.extend(r.value.decode() for r in batch)
        # Nothing more should come.
        for batch in c.poll(timeout_ms=500).values():
            got.extend(r.value.decode() for r in batch)
        c.commit()
        c.close()
        return got

    first = read(200)
    expect(sorted(first) == sorted(f"r{i}" for i in range(200)),
           f"first kafka-python consumer read {len(first)} records ({len(set(first))} distinct), expected 200")
    produce(bootstrap, topic, 200, 50, 2)
    second = read(50)
    expect(sorted(second) == sorted(f"r{i}" for i in range(200, 250)),
           f"second kafka-python consumer read {len(second)} records, expected the 50 new ones")
    return "KafkaConsumer(group_id) read 200 records, committed; the next one of the group read only the 50 new"


def crash_before(bootstrap, topic, state):
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 0, 1000, 1)
    c = consumer(bootstrap, f"{topic}-group", **{"enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    ok = deadline(20)
    while ok() and len(got) < 400:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m.offset())
    expect(len(got) == 400, f"read {len(got)} records, expected 400")
    committed = c.commit(offsets=[TopicPartition(topic, 0, got[-1] + 1)], asynchronous=False)
    expect(committed[0].error is None, f"commit failed: {committed[0].error}")
    # Read on, without committing: this progress is lost with the crash.
    while ok() and len(got) < 700:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m.offset())
    with open(state, "w") as f:
        json.dump({"committed": got[399] + 1}, f)
    # No close: interop/run kills the SPU now, the consumer dies with us.
    return f"read 700, committed offset {got[399] + 1}"


def crash_after(bootstrap, topic, state):
    with open(state) as f:
        committed = json.load(f)["committed"]
    c = consumer(bootstrap, f"{topic}-group", **{"enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    ok = deadline(30)
    while ok() and len(got) < 1000 - committed:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m.offset())
    c.close()
    expect(got and got[0] == committed,
           f"after kill -9 and restart the group resumed at {got[:1]}, expected the committed {committed}")
    expect(got == list(range(committed, 1000)), f"read {len(got)} records from {committed}, expected {committed}..999")
    return f"after kill -9 and restart the group resumed at its committed offset {committed} and read to 999"


def mixed(bootstrap, topic, rill):
    create_topic(bootstrap, topic, 4)
    group = f"{topic}-group"
    kafka = Member(bootstrap, group, topic, "kafka")
    proc = subprocess.Popen(
        [rill, "consume", topic, "-G", group, "-B", "-F", "{{partition}} {{value}}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"RILL_ADDR": bootstrap, "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    rill_seen = []
    lock = threading.Lock()

    def pump():
        for line in proc.stdout:
            with lock:
                rill_seen.append(line.split())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        ok = deadline(30)
        while ok():
            if len(kafka.assigned) == 2:
                break
            time.sleep(0.1)
        else:
            fail(f"the mixed group never settled: the Kafka consumer holds {sorted(kafka.assigned)}")
        kafka_parts = set(kafka.assigned)
        produce(bootstrap, topic, 0, 400, 4)
        want = {f"r{i}" for i in range(400)}
        ok = deadline(20)
        while ok():
            with lock:
                n = len(rill_seen)
            if n + len(kafka.seen) >= 400:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        with lock:
            by_rill = [(int(p), v) for p, v in rill_seen]
        expect(all(p not in kafka_parts for p, _ in by_rill),
               f"rill read partitions the Kafka consumer held ({sorted(kafka_parts)})")
        first = [v for _, v in by_rill] + list(kafka.seen)
        expect(len(first) == 400 and set(first) == want,
               f"first batch: {len(first)} reads of {len(set(first))} distinct, expected 400 once each")
        expect(by_rill and kafka.seen, f"both members read: rill {len(by_rill)}, kafka {len(kafka.seen)}")
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
        expect(rc == 0, f"rill consume -G exited {rc}: {proc.stderr.read()[-500:]}")
        with kafka.lock:
            kafka.seen.clear()
        ok = deadline(30)
        while ok():
            if len(kafka.assigned) == 4:
                break
            time.sleep(0.1)
        else:
            fail(f"after rill left, the Kafka consumer holds {sorted(kafka.assigned)}")
        produce(bootstrap, topic, 400, 400, 4)
        want2 = {f"r{i}" for i in range(400, 800)}
        ok = deadline(30)
        while ok():
            if want2 <= set(kafka.seen):
                break
            time.sleep(0.1)
        time.sleep(1.0)
        second = list(kafka.seen)
        missing = want2 - set(second)
        expect(not missing, f"{len(missing)} records never read after rill left")
        again = [x for x in second if x not in want2]
        expect(not again, f"{len(again)} records read again after rill left (e.g. {again[:3]})")
        return (f"rill consume -G and librdkafka shared 4 partitions (kafka {sorted(kafka_parts)}): "
                f"400 read once ({len(by_rill)} by rill); rill left on SIGTERM, kafka read the next 400 once")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        kafka.close()


def main():
    bootstrap, mode, topic = sys.argv[1:4]
    if mode == "trio":
        return trio(bootstrap, topic)
    if mode == "kafka-python":
        return kafka_python(bootstrap, topic)
    if mode == "crash-before":
        return crash_before(bootstrap, topic, sys.argv[4])
    if mode == "crash-after":
        return crash_after(bootstrap, topic, sys.argv[4])
    if mode == "mixed":
        return mixed(bootstrap, topic, sys.argv[4])
    fail(f"unknown mode {mode}")


run(main)
