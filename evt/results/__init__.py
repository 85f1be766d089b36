"""What a run leaves: the result files and their writers, readers of run and sweep
directories, provenance, and the sweep table."""
