"""The asyncio forms (`async_*`): connect, produce, wait, flush, consume."""

import asyncio

import pytest

import rill
from conftest import new_topic


def test_asyncio_produce_and_consume(spu, client):
    topic = new_topic(client, 2)

    async def main():
        r = await rill.Rill.async_connect(spu.addr)
        config = rill.TopicProducerConfigBuilder().linger(20).build()
        producer = await r.async_topic_producer(topic, config)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        tick_task = asyncio.ensure_future(ticker())
        outputs = [await producer.async_send(f"k{i % 10}", f"v{i}", headers={"i": str(i)})
                   for i in range(300)]
        mds = await asyncio.gather(*(o.async_wait() for o in outputs))
        await producer.async_flush()
        tick_task.cancel()
        assert ticks > 0, "the event loop ran while records were waited for"
        assert len({tuple(m) for m in mds}) == 300
        for m in mds:
            assert isinstance(m, rill.RecordMetadata)

        got = []
        for p in range(2):
            stream = await r.partition_consumer(topic, p).async_stream(rill.Offset.beginning())
            want = sum(1 for m in mds if m.partition == p)
            assert want > 0, "ten keys reach both partitions"
            async for rec in stream:
                got.append(rec)
                if sum(1 for g in got if g.partition == p) == want:
                    break
            assert await stream.async_try_next() is None
        return got

    got = asyncio.run(main())
    assert sorted(int(g.value[1:]) for g in got) == list(range(300))
    assert all(g.headers == [("i", g.value[1:])] for g in got)


def test_asyncio_errors_are_rill_errors(spu, client):
    async def main():
        with pytest.raises(rill.RillConnectionError):
            await rill.Rill.async_connect("127.0.0.1:1")
        r = await rill.Rill.async_connect(spu.addr)
        with pytest.raises(rill.TopicNotFoundError):
            await r.async_topic_producer("missing-topic-async")

    asyncio.run(main())
