"""A real Ray cluster on this machine: a head and worker nodes, all on loopback, each one
evt host. The tests (tests/integration/test_remote.py) and benchmarks/bench_remote.py run
their Ray sweeps on it; `python scripts/ray_cluster.py start ...` is `ray start` keeping
the 127.0.0.1 it is given.

Each node is `ray start --block` in a session of its own, so a test stops (or kills) exactly
the node it started, never another Ray on the host. Every node advertises `evt_host`, as an
evt host does when it joins.

Loopback only: `ray start` replaces 127.0.0.1 with the host's first interface address
(ray._private.services.resolve_ip_for_localhost), and tests may send traffic only to
loopback. So nodes start through this file (`python ray_cluster.py start ...`), which keeps
the address it is given, and drivers run with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which
makes a driver take 127.0.0.1 as its own address. The test cluster has no token auth
(RAY_AUTH_MODE=disabled): nothing outside this machine can reach it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST_RESOURCE = "evt_host"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What a driver (evt) needs to join a test cluster on loopback.
DRIVER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
_NODE_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass
class Node:
    proc: subprocess.Popen
    log: Path
    node_id: str | None = None  # Ray's id, once the node has joined

    def kill(self) -> None:
        """The whole node at once, as a host that dies: SIGKILL to its session."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def stop(self, timeout_s: float = 5) -> None:  # a test node's state is thrown away: no long grace
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        try:  # processes of the node that outlived `ray start`
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Cluster:
    workdir: Path
    port: int = field(default_factory=free_port)
    nodes: list[Node] = field(default_factory=list)
    ray_tmp: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, args: list[str], name: str) -> Node:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "start",
                    "--block",
                    "--node-ip-address=127.0.0.1",
                    "--num-cpus=1",
                    f"--resources={json.dumps({HOST_RESOURCE: 1})}",
                    "--disable-usage-stats",
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=dict(os.environ, **_NODE_ENV),
            )
        node = Node(proc, log)
        self.nodes.append(node)
        return node

    def start_head(self) -> Node:
        # Ray's own files in a short path: its socket paths must fit AF_UNIX's 107 bytes
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="evtray-", dir="/tmp"))
        return self._start(
            ["--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self.ray_tmp}"], "head"
        )

    def add_node(self) -> Node:
        return self._start([f"--address={self.address}"], f"node{len(self.nodes)}")

    def alive_nodes(self) -> list[str]:
        """Node ids of the live nodes advertising evt_host, asked of the cluster itself."""
        code = (
            f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
            "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive'] and "
            f"n['Resources'].get({HOST_RESOURCE!r})]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=90, env=dict(os.environ, **DRIVER_ENV)
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith("[")]
        return json.loads(lines[-1]) if lines else []

    def wait_for_nodes(self, count: int, timeout_s: float = 120) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc.poll() is not None:
                    raise RuntimeError(f"ray node exited: {node.log.read_text()[-2000:]}")
            try:
                alive = self.alive_nodes()
            except subprocess.TimeoutExpired:
                alive = []
            if len(alive) >= count:
                return alive
            time.sleep(1)
        raise RuntimeError(f"{count} Ray nodes not up after {timeout_s:.0f}s")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        if self.ray_tmp:
            shutil.rmtree(self.ray_tmp, ignore_errors=True)


def start_cluster(workdir: Path, nodes: int = 2) -> Cluster:
    """A head and nodes-1 more nodes, each one evt host; stopped by Cluster.stop()."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    cluster = Cluster(Path(workdir))
    try:
        known: set[str] = set()
        for count in range(1, nodes + 1):
            node = cluster.start_head() if count == 1 else cluster.add_node()
            joined = set(cluster.wait_for_nodes(count)) - known
            node.node_id = joined.pop()
            known.add(node.node_id)
    except BaseException:
        cluster.stop()
        raise
    return cluster


if __name__ == "__main__":  # `python ray_cluster.py start ...`: `ray start`, keeping 127.0.0.1
    import ray._private.services as services
    from ray.scripts.scripts import main

    services.resolve_ip_for_localhost = lambda host: host
    sys.argv = ["ray", *sys.argv[1:]]
    main()
