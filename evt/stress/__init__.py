"""A stress run: its plan, the session that runs it phase by phase, suites and host
limits, the record of what it started (for cleanup), and sweeps across hosts."""
