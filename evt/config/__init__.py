"""Configuration: the root schema registered with Hydra, event specs and durations,
Jinja templating and bounded YAML loading."""
