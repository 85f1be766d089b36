"""Tracee as the tracer under test (conf/tracer/tracee.yaml), split by concern.

Everything Tracee's Go evt did with Tracee (docs/tracee.md) plus what it did
not: a readiness check on /healthz instead of a fixed sleep, metric scrapes at both ends
of the run with their deltas, the tracer's CPU and peak RSS, and per-unit event counts
from Tracee's JSON output.

  command.py    the command line (Jinja template -> argv) and its record
  checks.py     prerequisites: the binary runs, no Tracee runs already
  lifecycle.py  what starting/stopping provides; auto.py (evt starts Tracee) and
                manual.py (the user does, tracee.auto=false) implement it
  metrics.py    the HTTP server: /healthz, /metrics scrapes, endpoint lines
  counting.py   per-unit counts of the JSON output
  tracer.py     TraceeTracer, the Tracer the session uses
  schema.py     its settings (the `tracee` section) and its tracer option, registered
"""
