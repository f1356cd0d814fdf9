"""A real cluster on loopback: etcd (Debian's etcd-server) and three SPU
processes (`rill spu run`), used by kcat, confluent-kafka and the Rill CLI.

    cluster_check.py RILL_BINARY TMP_DIR

It checks, in order: a 6-partition topic has leaders on all three SPUs;
kcat and confluent-kafka produce to every partition and read everything
back; the Rill producer with keys spreads over the SPUs with per-key order;
stopping one SPU leaves its partitions leaderless (LEADER_NOT_AVAILABLE)
and the others working; restarting it brings them back with nothing lost;
restarting etcd loses nothing; an SPU whose etcd does not answer exits with
a clear error. Every process it starts is stopped by its pid.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import expect, fail, run

RILL, TMP = sys.argv[1], sys.argv[2]
TOPIC = "cluster-orders"
PARTITIONS = 6
SESSION_MS = 2000
PROCS = []  # every Popen started here, stopped in `stop_all`


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    fail(f"timed out after {timeout:.0f}s waiting for {what}")


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def spawn(args, log):
    out = open(os.path.join(TMP, log), "ab")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    PROCS.append(proc)
    return proc


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_all():
    for proc in reversed(PROCS):
        stop(proc)


class Etcd:
    def __init__(self):
        self.client, self.peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.client}"
        self.proc = None

    def start(self):
        peer = f"http://127.0.0.1:{self.peer}"
        self.proc = spawn(
            ["etcd", "--name", "rill", "--data-dir", os.path.join(TMP, "etcd"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"rill={peer}"],
            "etcd.log")
        wait_for("etcd to listen", lambda: listening(self.client))


class Spu:
    def __init__(self, spu_id, etcd_url):
        self.id, self.etcd = spu_id, etcd_url
        self.port = free_port()
        self.proc = None

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.proc = spawn(
            [RILL, "spu", "run", "--id", str(self.id), "--etcd", self.etcd,
             "--listen", self.addr, "--data-dir", os.path.join(TMP, f"spu-{self.id}"),
             "--session-timeout-ms", str(SESSION_MS)],
            f"spu-{self.id}.log")
        wait_for(f"SPU {self.id} to listen", lambda: self.proc.poll() is None and listening(self.port))


def leaders(admin):
    md = admin.list_topics(TOPIC, timeout=10)
    t = md.topics[TOPIC]
    return md, {p: t.partitions[p] for p in t.partitions}


def produce_confluent(bootstrap, records):
    """records: list of (partition, key, value); returns the delivered
    (partition, offset, value) and the errors."""
    delivered, errors = [], []

    def done(err, msg):
        if err is not None:
            errors.append((msg.partition(), str(err)))
        else:
            delivered.append((msg.partition(), msg.offset(), msg.value().decode()))

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "message.timeout.ms": 8000, "linger.ms": 5})
    for part, key, value in records:
        p.produce(TOPIC, value=value.encode(), key=key.encode() if key else None,
                  partition=part, on_delivery=done)
    p.flush(20)
    return delivered, errors


def read_all(bootstrap, partitions):
    """Every (partition, offset, key, value) in `partitions`, to their ends."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(TOPIC, p, 0) for p in partitions])
    out, eof = [], set()
    deadline = time.monotonic() + 20
    while len(eof) < len(partitions) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
            continue
        key = m.key().decode() if m.key() else None
        out.append((m.partition(), m.offset(), key, m.value().decode()))
    c.close()
    expect(len(eof) == len(partitions), f"read to the end of only {sorted(eof)} of {partitions}")
    return out


def main():
    etcd = Etcd()
    etcd.start()
    spus = [Spu(i, etcd.url) for i in range(3)]
    for s in spus:
        s.start()
    bootstrap = ",".join(s.addr for s in spus)
    admin = AdminClient({"bootstrap.servers": spus[0].addr})

    # 1. Placement: leaders on all three SPUs.
    futures = admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)], operation_timeout=10)
    futures[TOPIC].result(20)
    # Placement writes the partitions one by one: wait for all of them.
    md, parts = wait_for("every partition to have a leader", lambda: (
        lambda r: r if len(r[1]) == PARTITIONS and all(
            p.leader >= 0 and p.error is None for p in r[1].values()) else None
    )(leaders(admin)))
    expect(sorted(md.brokers) == [0, 1, 2], f"brokers {sorted(md.brokers)}")
    # Each SPU learns the placement from its own etcd watch: wait until all
    # three answer with every leader (Kafka's metadata is eventually
    # consistent across brokers in the same way).
    for s in spus:
        one = AdminClient({"bootstrap.servers": s.addr})
        wait_for(f"SPU {s.id} to know every leader", lambda: all(
            p.leader >= 0 for p in one.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions.values()
        ) and len(one.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions) == PARTITIONS)
    led = {p: parts[p].leader for p in parts}
    expect(set(led.values()) == {0, 1, 2}, f"leaders {led} do not cover 3 SPUs")
    kcat_list = subprocess.run(["kcat", "-b", spus[1].addr, "-L", "-t", TOPIC],
                               capture_output=True, text=True, timeout=20).stdout
    expect("3 brokers" in kcat_list, f"kcat -L: {kcat_list[:200]!r}")

    # 2. kcat and confluent-kafka produce to every partition.
    for p in range(PARTITIONS):
        lines = "".join(f"kcat-{p}-{i}\n" for i in range(50))
        r = subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", TOPIC, "-p", str(p),
                            "-X", "enable.idempotence=false"],
                           input=lines, text=True, capture_output=True, timeout=30)
        expect(r.returncode == 0, f"kcat -P to partition {p}: {r.stderr.strip()[-200:]}")
    delivered, errors = produce_confluent(
        bootstrap, [(p, None, f"ck-{p}-{i}") for p in range(PARTITIONS) for i in range(100)])
    expect(not errors, f"confluent-kafka errors: {errors[:3]}")

    # kafka-python too: a producer to every partition, read back below.
    from kafka import KafkaProducer
    kp = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = [kp.send(TOPIC, value=f"kp-{p}-{i}".encode(), partition=p)
               for p in range(PARTITIONS) for i in range(30)]
    kp.flush(20)
    kp_offsets = {(f.get(10).partition) for f in futures}
    kp.close()
    expect(kp_offsets == set(range(PARTITIONS)), f"kafka-python reached partitions {kp_offsets}")

    # 3. The Rill producer with keys: every SPU gets records, per-key order kept.
    keyed = "".join(f"key{k}:{k}-{i}\n" for i in range(40) for k in range(12))
    r = subprocess.run([RILL, "--addr", spus[2].addr, "produce", TOPIC, "-K", ":"],
                       input=keyed, text=True, capture_output=True, timeout=60)
    expect(r.returncode == 0, f"rill produce -K: {r.stderr.strip()[-300:]}")

    stored = read_all(bootstrap, list(range(PARTITIONS)))
    for p in range(PARTITIONS):
        kc = [v for (q, _, _, v) in stored if q == p and v.startswith("kcat-")]
        expect(kc == [f"kcat-{p}-{i}" for i in range(50)], f"kcat records of partition {p}: {len(kc)}")
        ck = [v for (q, _, _, v) in stored if q == p and v.startswith("ck-")]
        expect(ck == [f"ck-{p}-{i}" for i in range(100)], f"confluent records of partition {p}: {len(ck)}")
        kpv = [v for (q, _, _, v) in stored if q == p and v.startswith("kp-")]
        expect(kpv == [f"kp-{p}-{i}" for i in range(30)], f"kafka-python records of partition {p}: {len(kpv)}")
    by_key, partitions_of_keys = {}, set()
    for (p, _, key, v) in stored:
        if key and key.startswith("key"):
            by_key.setdefault(key, []).append(v)
            partitions_of_keys.add(p)
    expect(len(by_key) == 12, f"{len(by_key)} keys stored, 12 sent")
    for key, values in by_key.items():
        k = key[3:]
        expect(values == [f"{k}-{i}" for i in range(40)], f"key {key} out of order or incomplete")
    spus_of_keys = {led[p] for p in partitions_of_keys}
    expect(spus_of_keys == {0, 1, 2}, f"keyed records reached SPUs {spus_of_keys} only")
    before = len(stored)

    # 4. One SPU stopped: its partitions have no leader, the others work.
    away = spus[2]
    stop(away.proc)
    mine = sorted(p for p, l in led.items() if l == away.id)
    others = sorted(p for p, l in led.items() if l != away.id)
    # A Metadata answer caught mid-change may lack a partition: "not yet".
    def led_by(p, want):
        part = leaders(admin)[1].get(p)
        return part is not None and part.leader == want

    wait_for("the stopped SPU's partitions to lose their leader", lambda: all(
        led_by(p, -1) for p in mine))
    now = wait_for("a whole Metadata answer", lambda: (
        lambda parts: parts if all(p in parts for p in mine) else None)(leaders(admin)[1]))
    codes = {p: (now[p].error.name() if now[p].error else None) for p in mine}
    expect(all(c == "LEADER_NOT_AVAILABLE" for c in codes.values()), f"partition errors {codes}")
    survivors = ",".join(s.addr for s in spus[:2])
    delivered, errors = produce_confluent(
        survivors, [(p, None, f"during-{p}-{i}") for p in others for i in range(20)])
    expect(not errors and len(delivered) == 20 * len(others), f"while SPU 2 is down: {errors[:3]}")

    # 5. Back: its partitions are led again, nothing lost.
    away.start()
    wait_for("the returned SPU to lead its partitions again", lambda: all(
        led_by(p, away.id) for p in mine))
    delivered, errors = produce_confluent(
        bootstrap, [(p, None, f"after-{p}") for p in mine])
    expect(not errors, f"after the return: {errors[:3]}")
    stored = read_all(bootstrap, list(range(PARTITIONS)))
    expect(len(stored) == before + 20 * len(others) + len(mine),
           f"{len(stored)} records after the return, expected {before + 20 * len(others) + len(mine)}")

    # 6. etcd restarted: nothing lost, the cluster works on.
    stop(etcd.proc)
    etcd.start()
    wait_for("the cluster to answer after etcd's restart", lambda: all(
        p.leader >= 0 for p in leaders(admin)[1].values()))
    delivered, errors = produce_confluent(bootstrap, [(p, None, f"post-etcd-{p}") for p in range(PARTITIONS)])
    expect(not errors, f"after etcd's restart: {errors[:3]}")
    stored = read_all(bootstrap, list(range(PARTITIONS)))
    expect(len(stored) == before + 20 * len(others) + len(mine) + PARTITIONS,
           f"{len(stored)} records after etcd's restart")

    # 7. etcd unreachable at start: a clear error, not a hang.
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    r = subprocess.run([RILL, "spu", "run", "--id", "9", "--etcd", dead, "--listen",
                        f"127.0.0.1:{free_port()}", "--data-dir", os.path.join(TMP, "spu-9")],
                       capture_output=True, text=True, timeout=40)
    took = time.monotonic() - started
    expect(r.returncode != 0 and "etcd" in r.stderr, f"no clear error: rc {r.returncode}, {r.stderr[-200:]!r}")

    return (f"3 SPUs + etcd: leaders {sorted(led.items())}; kcat/confluent/kafka-python/rill -K records all read back "
            f"in order; SPU 2 stopped -> partitions {mine} LEADER_NOT_AVAILABLE, others took 20 each; "
            f"back with nothing lost; etcd restarted with nothing lost; dead etcd -> exit {r.returncode} "
            f"in {took:.1f}s")


if __name__ == "__main__":
    try:
        run(main)
    finally:
        stop_all()
