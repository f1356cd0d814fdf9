"""The two documented producer examples, in Python, run and print where
their record landed."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("example", ["at_most_once.py", "at_least_once.py"])
def test_documented_example_runs_and_prints_partition_and_offset(spu, client, example):
    if "greetings" not in [t.name for t in client.admin().list_topics()]:
        client.admin().create_topic("greetings", partitions=1)
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / example)],
        env=dict(os.environ, RILL_ADDR=spu.addr),
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    m = re.search(r"partition (\d+), offset (\d+)", out.stdout)
    assert m, out.stdout
    assert int(m.group(1)) == 0
    # The record is really there, at that offset.
    record = client.partition_consumer("greetings", 0).stream(
        __import__("rill").Offset.absolute(int(m.group(2)))).try_next()
    assert record is not None and record.offset == int(m.group(2))
    assert (record.key, record.value) == (b"Hello", b"Rill!")
