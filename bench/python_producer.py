#!/usr/bin/env python3
"""1,000,000 records of 100 B from one Python thread: the Rill binding's
producer beside confluent-kafka's (librdkafka), on the same SPU, in the same
run. Prints records/s for each and the ratio rill/confluent.

Run it with a Python that has both `rill` and `confluent_kafka`; the usual
way (Debian's python3-confluent-kafka, the binding installed beside it in a
folder, nothing installed into the system Python) is `bench/python_producer`,
which builds the release wheel and calls this script.

Both producers: one partition, acks 1 (Rill's READ_UNCOMMITTED), linger 5 ms,
no compression, each library's default batch size otherwise (Rill 16 KiB,
librdkafka 1,000,000 bytes), Rill at-least-once with idempotence (its
default), librdkafka without. The clock runs from the first send to the end
of the final flush; the records stored are checked afterwards.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import confluent_kafka
import rill

ROOT = pathlib.Path(__file__).resolve().parents[1]


def start_spu(binary: str, data_dir: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [binary, "cluster", "start", "--foreground", "--listen", "127.0.0.1:0",
         "--data-dir", data_dir],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=dict(os.environ, RILL_HOME=data_dir + "/home"),
    )
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("rill SPU listening on "):
        os.kill(proc.pid, signal.SIGKILL)
        sys.exit(f"the SPU did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1]


def stored(client: rill.Rill, topic: str) -> int:
    """Records in partition 0: the offset a marker record gets."""
    return client.topic_producer(topic).send(None, b"marker").wait().offset


def run_rill(client: rill.Rill, topic: str, count: int, payload: bytes) -> float:
    config = rill.TopicProducerConfigBuilder().linger(5).build()
    producer = client.topic_producer_with_config(topic, config)
    send = producer.send
    started = time.perf_counter()
    for _ in range(count):
        send(None, payload)
    producer.flush()
    return time.perf_counter() - started


def run_confluent(addr: str, topic: str, count: int, payload: bytes) -> float:
    producer = confluent_kafka.Producer({
        "bootstrap.servers": addr, "acks": 1, "linger.ms": 5,
        "compression.type": "none",
    })
    produce, poll = producer.produce, producer.poll
    started = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                produce(topic, payload)
                break
            except BufferError:  # its queue is full: serve it, as the docs say
                poll(0.01)
    remaining = producer.flush(60)
    elapsed = time.perf_counter() - started
    if remaining:
        sys.exit(f"confluent-kafka left {remaining} records undelivered")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of each")
    ap.add_argument("--rill-bin", default=str(pathlib.Path(
        os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "rill"))
    args = ap.parse_args()
    payload = bytes(i % 251 for i in range(args.size))
    print(f"python {sys.version.split()[0]}, rill binding, confluent-kafka "
          f"{confluent_kafka.version()[0]} (librdkafka {confluent_kafka.libversion()[0]}); "
          f"{args.count:,} records of {args.size} B per run")
    with tempfile.TemporaryDirectory(prefix="rill-pybench-") as data_dir:
        proc, addr = start_spu(args.rill_bin, data_dir)
        try:
            client = rill.Rill.connect(addr)
            results: dict[str, list[float]] = {"rill": [], "confluent-kafka": []}
            for round_ in range(args.rounds):
                for name in ("rill", "confluent-kafka"):
                    topic = f"pybench-{name}-{round_}"
                    client.admin().create_topic(topic, partitions=1)
                    if name == "rill":
                        elapsed = run_rill(client, topic, args.count, payload)
                    else:
                        elapsed = run_confluent(addr, topic, args.count, payload)
                    got = stored(client, topic)
                    if got != args.count:
                        sys.exit(f"{name}: {got} records stored, {args.count} sent")
                    rate = args.count / elapsed
                    results[name].append(rate)
                    print(f"round {round_ + 1} {name:16} {rate:12,.0f} records/s "
                          f"({elapsed:.2f} s, {rate * args.size / 1e6:.1f} MB/s)", flush=True)
            best = {n: max(r) for n, r in results.items()}
            median = {n: statistics.median(r) for n, r in results.items()}
            for n in results:
                print(f"{n:16} best {best[n]:12,.0f} records/s, median {median[n]:12,.0f}")
            print(f"ratio rill/confluent-kafka records_per_s: "
                  f"{median['rill'] / median['confluent-kafka']:.2f}")
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
