"""Tracers evt can drive, behind one interface (evt.tracers.base.Tracer)."""
