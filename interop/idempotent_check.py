"""g. confluent-kafka's idempotent producer (InitProducerId + sequences).

Usage: idempotent_check.py BOOTSTRAP TOPIC COUNT
"""

import sys

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from common import create_topic, deadline, expect, run


def main():
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    create_topic(bootstrap, topic, 1)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
    })
    delivered, errors = [], []

    def report(err, msg):
        if err:
            errors.append(str(err))
        else:
            delivered.append(msg.offset())

    for i in range(count):
        producer.produce(topic, key=f"k{i}", value=f"v{i}", callback=report)
        producer.poll(0)
    expect(producer.flush(30) == 0, "flush left records undelivered")
    expect(not errors, f"delivery errors: {errors[:3]}")
    expect(sorted(delivered) == list(range(count)), "offsets are not 0..count-1, each once")

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "rill-interop-unused",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    alive = deadline(30)
    while alive():
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                break
            expect(False, f"consumer error: {msg.error()}")
        values.append(msg.value().decode())
    consumer.close()
    expect(values == [f"v{i}" for i in range(count)], f"read {len(values)} records, not the {count} in order")
    return f"{count} records from an idempotent producer (enable.idempotence=true): stored once each, in order"


if __name__ == "__main__":
    run(main)
