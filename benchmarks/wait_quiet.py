#!/usr/bin/env python3
"""Waits until the machine is quiet enough to measure on: the one-minute load average at
or below --below (1.0), polled every 5 s up to --deadline seconds (600).

`make bench` runs it before each benchmark, so that one benchmark's load does not land in
the next one's figures (a figure taken with the load average above 1.5 is re-measured,
not published; docs_tables.py marks such a record). Exit 0 when quiet, 1 at the deadline.
Usage: benchmarks/wait_quiet.py [--below LOAD] [--deadline SECONDS]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--below", type=float, default=1.0)
    parser.add_argument("--deadline", type=float, default=600.0)
    args = parser.parse_args()
    give_up = time.monotonic() + args.deadline
    while (load := os.getloadavg()[0]) > args.below:
        if time.monotonic() >= give_up:
            print(f"load average still {load:.2f} after {args.deadline:g} s (want <= {args.below:g})", file=sys.stderr)
            return 1
        time.sleep(5)
    print(f"load average {load:.2f}: quiet enough to measure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
