#!/usr/bin/python3
"""Tiny admin helper for interop/run (kcat cannot create topics).

usage: admin_tool.py BOOTSTRAP create TOPIC PARTITIONS
"""

import sys

from common import create_topic, run


def main():
    bootstrap, action, topic, partitions = sys.argv[1:5]
    if action != "create":
        raise SystemExit(f"unknown action {action}")
    create_topic(bootstrap, topic, int(partitions))
    return f"created {topic} with {partitions} partition(s) via CreateTopics"


if __name__ == "__main__":
    run(main)
