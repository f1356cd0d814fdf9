#!/usr/bin/python3
"""A librdkafka producer for the crash and failover suites (tests/it/crash.rs,
tests/it/failover.rs, through tests/it/producers.rs), which run it with
/usr/bin/python3 (Debian's python3-confluent-kafka).

usage: librdkafka_producer.py BOOTSTRAP TOPIC PRODUCER_ID KEYS

BOOTSTRAP is host:port, comma-separated for several SPUs.

Produces keyed records with enable.idempotence=true (acks=all) until stdin
reaches EOF, then flushes and exits. Keys are p<ID>-k<0..KEYS-1>, values
p<ID>-k<n>-<per-key sequence, 8 digits>, like the Rill producers of the suite.
One line per event on stdout (flushed at once):

  ack KEY VALUE PARTITION OFFSET    a record librdkafka acknowledged
  fail KEY VALUE ERROR              a record librdkafka gave up on
  fatal ERROR                       a fatal (idempotence) error
  done PRODUCED ACKED FAILED UNDELIVERED
"""

import sys
import threading

from confluent_kafka import KafkaException, Producer

# At most this many records not yet answered (as the Rill producers' windows
# of 20): keeps the run's record count, and the final read, small.
OUTSTANDING = 20


def main():
    bootstrap, topic, pid, keys = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    out = sys.stdout
    write_lock = threading.Lock()

    def emit(line):
        with write_lock:
            out.write(line + "\n")
            out.flush()

    def on_error(err):
        if err.fatal():
            emit(f"fatal {err.name()}: {err.str()}")

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 20,
            # Ride out the SPU's restarts (down for at most 300 ms) and
            # leader elections (a session timeout, 1.5 s in the failover suite).
            "message.timeout.ms": 30000,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 200,
            "retry.backoff.ms": 20,
            "error_cb": on_error,
            # Disconnects and refused connections are the point of the suite;
            # fatal errors come through error_cb.
            "log_level": 2,
        }
    )

    stop = threading.Event()

    def wait_for_eof():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()

    counts = {"acked": 0, "failed": 0}

    def on_delivery(err, msg):
        key = msg.key().decode()
        value = msg.value().decode()
        if err is None:
            counts["acked"] += 1
            emit(f"ack {key} {value} {msg.partition()} {msg.offset()}")
        else:
            counts["failed"] += 1
            emit(f"fail {key} {value} {err.name()}")

    seq = [0] * keys
    produced = 0
    while not stop.is_set():
        if len(producer) >= OUTSTANDING:
            producer.poll(0.01)
            continue
        k = produced % keys
        key = f"p{pid}-k{k}"
        value = f"{key}-{seq[k]:08d}"
        try:
            producer.produce(topic, key=key.encode(), value=value.encode(), on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.01)
            continue
        except KafkaException as e:
            emit(f"fatal produce: {e}")
            break
        seq[k] += 1
        produced += 1
        producer.poll(0)
    undelivered = producer.flush(60)
    emit(f"done {produced} {counts['acked']} {counts['failed']} {undelivered}")


if __name__ == "__main__":
    main()
