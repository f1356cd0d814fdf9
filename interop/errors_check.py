#!/usr/bin/python3
"""Kafka error codes as a real client (confluent-kafka) sees them.

usage: errors_check.py BOOTSTRAP CASE
  missing-topic    produce to a topic that does not exist (SPU without
                   --auto-create-topics): UNKNOWN_TOPIC_OR_PARTITION, and the
                   topic is not created behind the client's back
  invalid-name     CreateTopics 'bad name!'            -> INVALID_TOPIC_EXCEPTION
  replication      CreateTopics replication factor 3   -> INVALID_REPLICATION_FACTOR
  zero-partitions  CreateTopics 0 partitions           -> INVALID_PARTITIONS
  exists           CreateTopics an existing topic      -> TOPIC_ALREADY_EXISTS
"""

import sys

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from common import create_topic, expect, fail, run


def create_error(bootstrap, topic, partitions, replication):
    """CreateTopics one topic; returns the KafkaError it fails with."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(topic, partitions, replication)], request_timeout=15)[topic]
    try:
        fut.result(timeout=20)
    except KafkaException as e:
        return e.args[0]
    fail(f"CreateTopics {topic!r} partitions={partitions} rf={replication} succeeded")


def expect_code(err, code, what):
    expect(
        err.code() == code,
        f"{what}: got {err.name()} ({err.code()}) '{err.str()}', expected {KafkaError(code).name()} ({code})",
    )
    return f"{what}: {err.name()} ({err.code()}) '{err.str()}'"


def missing_topic(bootstrap):
    topic = "no-such-topic"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    expect(t is not None and t.error is not None, f"Metadata for {topic}: no error ({t})")
    expect_code(t.error, KafkaError.UNKNOWN_TOPIC_OR_PART, "Metadata")

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": False,
            "acks": "all",
            "message.timeout.ms": 5000,
            # librdkafka waits this long after a Metadata UNKNOWN_TOPIC_OR_PART
            # before it believes the topic is missing (default 30 s, longer than
            # message.timeout.ms, which would turn the error into _MSG_TIMED_OUT).
            "topic.metadata.propagation.max.ms": 1000,
        }
    )
    errors = []
    producer.produce(topic, b"value", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(15)
    expect(len(errors) == 1, f"{len(errors)} delivery reports for 1 record")
    err = errors[0]
    expect(err is not None, "produce to a missing topic was acknowledged")
    # librdkafka maps the broker's UNKNOWN_TOPIC_OR_PARTITION in Metadata to
    # its local _UNKNOWN_TOPIC when failing queued records.
    expect(
        err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC),
        f"delivery error {err.name()} ({err.code()}) '{err.str()}', expected UNKNOWN_TOPIC_OR_PART or _UNKNOWN_TOPIC",
    )
    md = admin.list_topics(timeout=10)
    expect(topic not in md.topics or md.topics[topic].error is not None, f"{topic} was auto-created")
    return f"Metadata: UNKNOWN_TOPIC_OR_PART; delivery report: {err.name()} '{err.str()}'; topic not created"


def main():
    bootstrap, case = sys.argv[1:3]
    if case == "missing-topic":
        return missing_topic(bootstrap)
    if case == "invalid-name":
        # librdkafka names code 17 (INVALID_TOPIC_EXCEPTION) TOPIC_EXCEPTION.
        return expect_code(create_error(bootstrap, "bad name!", 1, 1), KafkaError.TOPIC_EXCEPTION, "CreateTopics 'bad name!'")
    if case == "replication":
        return expect_code(
            create_error(bootstrap, "err-rf3", 1, 3), KafkaError.INVALID_REPLICATION_FACTOR, "CreateTopics rf=3"
        )
    if case == "zero-partitions":
        return expect_code(
            create_error(bootstrap, "err-p0", 0, 1), KafkaError.INVALID_PARTITIONS, "CreateTopics partitions=0"
        )
    if case == "exists":
        create_topic(bootstrap, "err-exists", 1)
        return expect_code(
            create_error(bootstrap, "err-exists", 1, 1), KafkaError.TOPIC_ALREADY_EXISTS, "CreateTopics existing topic"
        )
    raise SystemExit(f"unknown case {case}")


if __name__ == "__main__":
    run(main)
