"""Where a stress run's units execute: docker containers or local process groups."""


def make_runner(cfg, run_id: str, run_dir):
    name = cfg.runner.name
    if name == "docker":
        from evt.runners.docker import DockerRunner

        return DockerRunner(cfg, run_id, run_dir)
    if name == "local":
        from evt.runners.local import LocalRunner

        return LocalRunner(cfg, run_id, run_dir)
    from evt.errors import UsageError

    raise UsageError(f"unknown runner {name!r}: use runner=docker or runner=local.")
