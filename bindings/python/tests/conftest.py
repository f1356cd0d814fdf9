"""Fixtures: a real SPU (the `rill` binary) on 127.0.0.1, port 0, with its
own data directory; stopped by PID by the fixture that started it."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import tempfile
import uuid
from typing import Iterator, Optional

import pytest

import rill

ROOT = pathlib.Path(__file__).resolve().parents[3]


def rill_binary() -> pathlib.Path:
    """RILL_BIN, else the workspace's debug build (CARGO_TARGET_DIR honoured)."""
    if os.environ.get("RILL_BIN"):
        return pathlib.Path(os.environ["RILL_BIN"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "debug" / "rill"


class Spu:
    """One SPU process. `restart()` brings it back on the same port and
    data directory."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.addr: Optional[str] = None
        self.proc: Optional[subprocess.Popen] = None
        self._starts = 0

    def start(self, listen: str = "127.0.0.1:0") -> str:
        binary = rill_binary()
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run `cargo build -p rill-cli` first")
        self._starts += 1
        log = open(self.workdir / f"spu-{self._starts}.log", "wb")
        env = dict(os.environ, RILL_HOME=str(self.workdir / "home"))
        self.proc = subprocess.Popen(
            [str(binary), "cluster", "start", "--foreground", "--listen", listen,
             "--data-dir", str(self.data_dir)],
            stdout=subprocess.PIPE, stderr=log, env=env,
        )
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        prefix = "rill SPU listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"the SPU did not start: {line!r}, see {self.workdir}")
        self.addr = line[len(prefix):]
        return self.addr

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL by PID if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        if proc.stdout:
            proc.stdout.close()

    def restart(self) -> None:
        assert self.addr is not None
        self.start(self.addr)


def _spu(tmp: str) -> Iterator[Spu]:
    spu = Spu(pathlib.Path(tmp))
    spu.start()
    try:
        yield spu
    finally:
        spu.stop()


@pytest.fixture(scope="session")
def spu() -> Iterator[Spu]:
    """An SPU shared by the tests that do not stop it."""
    with tempfile.TemporaryDirectory(prefix="rill-py-spu-") as tmp:
        yield from _spu(tmp)


@pytest.fixture
def own_spu(tmp_path: pathlib.Path) -> Iterator[Spu]:
    """An SPU of this test's own, which it may stop and restart."""
    yield from _spu(str(tmp_path))


@pytest.fixture(scope="session")
def client(spu: Spu) -> rill.Rill:
    return rill.Rill.connect(spu.addr)


@pytest.fixture
def topic(client: rill.Rill) -> str:
    """A fresh one-partition topic."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    client.admin().create_topic(name, partitions=1)
    return name


def new_topic(client: rill.Rill, partitions: int = 1) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    client.admin().create_topic(name, partitions=partitions)
    return name


def read_all(client: rill.Rill, topic: str, count: int) -> list:
    """`count` records of every partition of `topic` (fails on a shortfall)."""
    stream = client.consumer(topic)
    records = []
    while len(records) < count:
        r = stream.try_next()
        if r is None:
            break
        records.append(r)
    return records
