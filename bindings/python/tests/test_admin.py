"""Topic administration through the binding."""

import uuid

import pytest

import rill


def test_create_list_delete_topics(client):
    admin = client.admin()
    name = f"admin-{uuid.uuid4().hex[:8]}"
    admin.create_topic(name, partitions=3, replication=1, configs={"retention.ms": "60000"})
    listed = {t.name: t.partitions for t in admin.list_topics()}
    assert listed[name] == 3
    with pytest.raises(rill.BrokerError, match="TOPIC_ALREADY_EXISTS") as e:
        admin.create_topic(name)
    assert e.value.code == 36
    assert client.topic_producer(name).partition_count() == 3
    admin.delete_topic(name)
    assert name not in [t.name for t in admin.list_topics()]
    with pytest.raises(rill.TopicNotFoundError):
        admin.delete_topic(name)
    with pytest.raises(rill.RillError):
        admin.create_topic("bad/name")
