"""The VM's side of `evt verify`: started by the image's /init as
`python3 -m evt.verify.guest <results device>`, it runs the checker over the cases the
host asked for (EVT_VERIFY_ARGS on the kernel command line, which the kernel hands to
/init as an environment variable) and writes one JSON line per record to the results
device (the VM's second serial port). A line {"type": "done"} ends a complete run; the
host treats a run without it as failed, with the console log to say why.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import traceback
from pathlib import Path

ARGS_ENV = "EVT_VERIFY_ARGS"


def encode_args(args: dict) -> str:
    """The host's side: the request as one kernel command-line word (no spaces, no quotes)."""
    return base64.urlsafe_b64encode(json.dumps(args, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_args(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def main(argv: list[str]) -> int:
    out_path = argv[0] if argv else "/dev/stdout"
    with open(out_path, "w", buffering=1) as out:

        def send(record: dict) -> None:
            out.write(json.dumps(record) + "\n")
            print(f"evt-verify: {json.dumps(record)[:200]}", flush=True)  # the console log

        try:
            from evt.verify import checker
            from evt.workload import catalog

            args = decode_args(os.environ[ARGS_ENV])
            triggers = (
                [catalog.get_trigger(e) for e in args["events"]]
                if args.get("events")
                else list(catalog.default_catalog().values())
            )
            cases = checker.plan(
                triggers, tuple(args["modes"]) if args.get("modes") else None, args.get("ops"), args["run_id"]
            )
            for record in checker.run(cases, Path("/tmp/evt-verify")):
                send(record)
            send({"type": "done"})
            return 0
        except BaseException as exc:  # reported to the host, which says the run failed and why
            send({"type": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
            return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
