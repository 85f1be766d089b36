"""The bpftrace tracer: the program it renders and runs, and the parsing of its output."""
