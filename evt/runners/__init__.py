"""Where a stress run's units execute: docker containers or local process groups
(built from conf/runner/<name>.yaml by evt.plugins.make_runner)."""
