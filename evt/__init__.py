"""evt: generate Linux kernel events at controlled rates and stress-test eBPF tracers."""

__version__ = "0.1.0"
