"""What a run executes: the trigger catalog, the worker loop and its pacing, markers that
tell a run's events from noise, and the protocol units speak to the session."""
