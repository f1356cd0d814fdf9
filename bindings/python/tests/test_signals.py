"""Ctrl-C interrupts a blocking wait: the GIL is released while Rust waits,
and signals are checked between short waits."""

import os
import signal
import subprocess
import sys
import textwrap
import time

# The child installs Python's Ctrl-C handler itself: Python leaves SIGINT
# ignored when it starts with it ignored, as every command of a background
# job in a non-interactive shell does (a CI runner's, say), and then no
# KeyboardInterrupt could come whatever Rill does.
SCRIPT = textwrap.dedent("""
    import signal, sys, rill
    signal.signal(signal.SIGINT, signal.default_int_handler)
    client = rill.Rill.connect(sys.argv[1])
    stream = client.partition_consumer(sys.argv[2], 0).stream(rill.Offset.end())
    print("waiting", flush=True)
    try:
        next(stream)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
""")


def test_ctrl_c_interrupts_a_blocking_wait(spu, topic):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, spu.addr, topic],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.5)
        assert proc.poll() is None, "still waiting for a record"
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert time.monotonic() - started < 2
        assert out.strip() == "interrupted" and proc.returncode == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
