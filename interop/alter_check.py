#!/usr/bin/python3
"""Topics changed in place with the Kafka clients' admin APIs.

usage: alter_check.py BOOTSTRAP kafka-python|confluent

kafka-python: KafkaAdminClient.create_partitions (CreatePartitions v1) and
alter_configs (AlterConfigs v1: the whole config replaced), then
describe_configs and the partition count in Metadata.
confluent: AdminClient.create_partitions, alter_configs (librdkafka's
AlterConfigs) and describe_configs; an invalid count and an unsupported
config are refused with Kafka's error codes.
"""

import sys
import time

from common import create_topic, deadline, expect, run


def kafka_python(bootstrap):
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions
    from kafka.errors import InvalidPartitionsError

    topic = "kp-alter"
    create_topic(bootstrap, topic, 1)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    admin.create_partitions({topic: NewPartitions(total_count=3)}, timeout_ms=10000)
    try:
        admin.create_partitions({topic: NewPartitions(total_count=2)}, timeout_ms=10000)
        expect(False, "shrinking to 2 partitions was not refused")
    except InvalidPartitionsError:
        pass
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    ok = deadline(10)
    while ok() and len(consumer.partitions_for_topic(topic) or ()) != 3:
        time.sleep(0.2)
    got = consumer.partitions_for_topic(topic)
    expect(got == {0, 1, 2}, f"partitions after create_partitions: {got}")
    consumer.close()

    resp = admin.alter_configs([
        ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "3600000", "max.message.bytes": "2000000"})
    ])
    codes = [r[0] for r in resp.resources]
    expect(codes == [0], f"alter_configs answered {resp.resources}")
    resp = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    configs = {c[0]: c[1] for c in resp[0].resources[0][4]}
    expect(configs.get("retention.ms") == "3600000", f"retention.ms after alter_configs: {configs}")
    expect(configs.get("max.message.bytes") == "2000000", f"max.message.bytes after alter_configs: {configs}")
    resp = admin.alter_configs([
        ConfigResource(ConfigResourceType.TOPIC, topic, configs={"cleanup.policy": "compact"})
    ])
    expect(resp.resources[0][0] == 40, f"cleanup.policy=compact: {resp.resources} (want INVALID_CONFIG 40)")
    admin.close()
    return "kafka-python: create_partitions 1 -> 3 (2 refused), alter_configs shown by describe_configs, compact refused"


def confluent(bootstrap):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions

    topic = "cf-alter"
    create_topic(bootstrap, topic, 2)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_partitions([NewPartitions(topic, 4)], request_timeout=15).values():
        f.result()
    try:
        for f in admin.create_partitions([NewPartitions(topic, 3)], request_timeout=15).values():
            f.result()
        expect(False, "shrinking to 3 partitions was not refused")
    except KafkaException as e:
        expect(e.args[0].code() == 37, f"shrinking: {e} (want INVALID_PARTITIONS 37)")
    md = admin.list_topics(topic, timeout=10)
    expect(len(md.topics[topic].partitions) == 4, f"partitions: {md.topics[topic].partitions}")

    resource = ConfigResource("topic", topic, set_config={"retention.ms": "7200000", "segment.bytes": "1048576"})
    for f in admin.alter_configs([resource], request_timeout=15).values():
        f.result()
    for f in admin.describe_configs([ConfigResource("topic", topic)], request_timeout=15).values():
        configs = {k: v.value for k, v in f.result().items()}
    expect(configs.get("retention.ms") == "7200000", f"retention.ms: {configs}")
    expect(configs.get("segment.bytes") == "1048576", f"segment.bytes: {configs}")
    bad = ConfigResource("topic", topic, set_config={"message.timestamp.type": "LogAppendTime"})
    try:
        for f in admin.alter_configs([bad], request_timeout=15).values():
            f.result()
        expect(False, "message.timestamp.type was not refused")
    except KafkaException as e:
        expect(e.args[0].code() == 40, f"message.timestamp.type: {e} (want INVALID_CONFIG 40)")
    return "confluent-kafka: create_partitions 2 -> 4 (3 refused), alter_configs shown by describe_configs, unsupported key refused"


def main():
    bootstrap, client = sys.argv[1:3]
    return {"kafka-python": kafka_python, "confluent": confluent}[client](bootstrap)


if __name__ == "__main__":
    run(main)
