"""Shared helpers for the interop checks.

Every check script follows one convention so `interop/run` can report it:
the last line printed on stdout is the reason, and the exit status says the
outcome (0 = pass, 77 = skipped, anything else = fail).
"""

import sys
import time

SKIP = 77


class CheckFailed(Exception):
    """Raised by a check to fail with a one-line reason."""


def fail(reason):
    raise CheckFailed(reason)


def expect(cond, reason):
    if not cond:
        raise CheckFailed(reason)


def run(main):
    """Runs `main()`; it returns the pass reason or raises CheckFailed."""
    try:
        reason = main()
    except CheckFailed as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    except Exception as e:  # an unexpected client exception is a failure too
        import traceback
        traceback.print_exc(file=sys.stderr)
        print(f"FAIL: unexpected {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
    print(reason, flush=True)
    sys.exit(0)


def skip(reason):
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


def deadline(seconds):
    end = time.monotonic() + seconds
    return lambda: time.monotonic() < end


def create_topic(bootstrap, name, partitions, replication=1):
    """Creates a topic with confluent-kafka's AdminClient (CreateTopics)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, partitions, replication)], request_timeout=15
    )
    futures[name].result(timeout=20)
    # CreateTopics answers once the topic exists; wait until Metadata shows
    # every partition with a leader, as clients will look there next.
    ok = deadline(15)
    while ok():
        md = admin.list_topics(topic=name, timeout=5)
        t = md.topics.get(name)
        if (
            t is not None
            and t.error is None
            and len(t.partitions) == partitions
            and all(p.leader >= 0 for p in t.partitions.values())
        ):
            return
        time.sleep(0.1)
    fail(f"topic {name} created but Metadata never showed {partitions} partitions with leaders")
