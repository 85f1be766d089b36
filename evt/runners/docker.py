"""Units as docker containers (docker SDK): one per event, network none, started in
parallel, each blocked at the bind-mounted FIFO barrier until the run releases it."""

from __future__ import annotations

import contextlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from evt import faults, host
from evt.errors import RunError, UsageError
from evt.runners import capcache
from evt.runners.base import Runner, UnitState
from evt.stress.plan import RunContext, RunnerDescription, Unit

if TYPE_CHECKING:  # docker is imported when a docker run starts
    from docker import DockerClient

LABEL = "evt.run_id"
BARRIER_MOUNT = "/evt-barrier"
TMPFS_OPTIONS = "exec,mode=1777"  # as /tmp is; Docker's default would be noexec (scripts run from there)
# What an unprivileged container holds without cap_add (moby's default capability set).
DOCKER_DEFAULT_CAPS = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
}
CREATE_SETTLE_S = 5.0  # how long a cut-short create request may take to land in the daemon


def docker_client(timeout: int = 120) -> DockerClient:
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        raise UsageError(
            f"docker not available ({type(exc).__name__}: {exc}). Ensure Docker is installed and running "
            "(`make setup` installs docker.io and starts dockerd), or use runner=local."
        ) from exc
    return client


def daemon_capabilities() -> set[str] | None:
    """The capability bounding set of the local dockerd, when it can be read."""
    try:
        pid = int(capcache.DOCKER_PIDFILE.read_text().strip())
        return host.capability_set("CapBnd", pid)
    except (OSError, ValueError):
        return None


class DockerRunner(Runner):
    name = "docker"
    units_outside_evt = True

    def __init__(self, run: RunContext, **settings):
        super().__init__(run, **settings)
        self.client: DockerClient | None = None  # connected by check()
        self.privileged = False
        self.cap_add: list[str] = []
        self.image_id: str | None = None  # found by check()
        self._cut_short = False  # a create request was interrupted (see cleanup)

    def describe(self) -> RunnerDescription:
        return RunnerDescription("container", "containers", image=self.settings.image)

    def check(self, units: list[Unit]) -> None:
        import docker

        for path in self.settings.tmpfs:
            if not re.fullmatch(r"(/[A-Za-z0-9_.-]+)+", str(path)):
                raise UsageError(
                    f"runner.tmpfs entry {str(path)!r} is not an absolute directory path: give paths such as "
                    "runner.tmpfs=[/tmp], or runner.tmpfs=[] to keep the units' files on the container's filesystem."
                )
        self.client = docker_client()
        image = self.settings.image
        try:
            self.image_id = self.client.images.get(image).id
        except docker.errors.ImageNotFound:
            raise UsageError(
                f'container image "{image}" not found: build it with `make evt-trigger-runner` '
                f"(or `evt image build --tag {image}`), or pass another with --image."
            ) from None
        memory = self.settings.memory
        if memory is not None and not re.fullmatch(r"[0-9]+[bkmg]?", str(memory)):
            raise UsageError(f"runner.memory={memory} is not a memory size: write it as docker does, e.g. 64m or 1g.")

    def unit_capabilities(self) -> tuple[set[str], str] | None:
        """What a unit's container will hold: privileged=false Docker's default set plus
        runner.cap_add, auto what the daemon holds; None when privileged (everything)."""
        mode = str(self.settings.privileged).lower()
        if mode == "false":
            added = {"CAP_" + str(c).upper().removeprefix("CAP_") for c in self.settings.cap_add}
            return DOCKER_DEFAULT_CAPS | added, "grant it with runner.cap_add=[...] or use runner.privileged=auto"
        held = daemon_capabilities() if mode == "auto" else None
        return (held, "the Docker daemon does not hold it") if held is not None else None

    def unit_container_name(self, unit_name: str) -> str:
        return f"evt-stress-{unit_name.replace('_', '-')}-{self.run_id}"

    def barrier_in_unit(self) -> str:
        return f"{BARRIER_MOUNT}/{self.barrier_path.name}"

    # -- privileges -----------------------------------------------------------------
    def resolve_privileges(self) -> None:
        """privileged=auto: as Tracee's Go evt runs them (privileged) where the daemon can grant it,
        else every capability the daemon holds, with a notice naming what was left out."""
        mode = str(self.settings.privileged).lower()
        if mode == "true":
            self.privileged = True
            return
        if mode == "false":
            self.cap_add = [c.removeprefix("CAP_") for c in self.settings.cap_add]
            return
        if mode != "auto":
            raise UsageError(f"runner.privileged={self.settings.privileged!r}: use auto, true or false.")
        held = daemon_capabilities()
        wanted = host.all_capabilities()
        if held is not None and wanted <= held:
            self.privileged = True
            return
        if held is None:  # a daemon we cannot inspect: ask for the usual set
            held = wanted - {"CAP_SYS_RESOURCE"}
        self.cap_add = sorted(c.removeprefix("CAP_") for c in held)
        unknown = self._probe_caps()
        lacking = sorted(wanted - held)
        self.notice = (
            f"notice: the Docker daemon cannot run privileged containers here (it lacks {', '.join(lacking)}); "
            "units get every capability it holds instead; left out: "
            + ", ".join([c.removeprefix("CAP_") for c in lacking] + unknown)
        )

    @property
    def _connected(self) -> DockerClient:
        if self.client is None:
            raise RuntimeError("the docker runner is used before check() connected it")
        return self.client

    def _probe_caps(self) -> list[str]:
        """Drop capabilities this Docker version does not know (20.10 knows no CAP_BPF): as
        the probe found them for this daemon, image and set before (evt/runners/capcache.py),
        else as a probe finds them now."""
        image_id = self.image_id or self._connected.images.get(self.settings.image).id
        key = capcache.probe_key(self._connected, image_id, self.cap_add)
        unknown = capcache.cached_unknown(key, self.cap_add)
        if unknown is not None:
            self.cap_add = [c for c in self.cap_add if c not in unknown]
            return unknown
        unknown = self._probe_with_containers()
        capcache.remember(key, unknown)
        return unknown

    def _probe_with_containers(self) -> list[str]:
        """Create (and remove) a container with the set until the daemon accepts it."""
        import docker

        unknown: list[str] = []
        while True:
            try:
                with self._creating():
                    probe = self._connected.containers.create(
                        self.settings.image,
                        command=["--help"],
                        cap_add=self.cap_add,
                        network_mode="none",
                        labels={LABEL: self.run_id},
                    )
                probe.remove(force=True)
                return unknown
            except docker.errors.APIError as exc:
                match = re.search(r'unknown capability: "?(?:CAP_)?([A-Z_]+)', str(exc))
                if not match or match.group(1) not in self.cap_add:
                    raise RunError(f"docker refused the capability set: {exc}") from exc
                self.cap_add.remove(match.group(1))
                unknown.append(match.group(1))

    # -- units ----------------------------------------------------------------------
    def start(self, units: list[Unit]) -> None:
        self.resolve_privileges()
        self.make_barrier()
        for unit in units:
            self.add_state(unit)

        def create_and_start(unit: Unit) -> None:
            container = self._create(unit)
            try:
                container.start()
            except Exception as exc:
                if "unable to apply caps" in str(exc) and self.privileged:
                    raise RunError(
                        "privileged containers fail on this Docker daemon (unable to apply caps: the daemon "
                        "does not hold every capability, e.g. CAP_SYS_RESOURCE). Use runner.privileged=auto "
                        "(every capability the daemon holds) or runner.privileged=false runner.cap_add=[SYS_ADMIN,...]."
                    ) from exc
                raise RunError(f"container for {unit.name} did not start: {exc}") from exc
            container.reload()
            unit.container_id = container.id
            unit.pid = int(container.attrs["State"]["Pid"]) or None
            if unit.pid:
                cgroup = host.process_cgroup2(unit.pid)
                unit.cgroup_path = str(cgroup) if cgroup else None
            faults.start_thread(self._follow, container, self.states[unit.name], name=f"logs-{unit.name}")

        with ThreadPoolExecutor(max_workers=min(8, len(units))) as pool:
            futures = [pool.submit(create_and_start, u) for u in units]
            try:
                for future in futures:
                    future.result()
            except Exception:  # a unit failed: the pool finishes the others' creates before cleanup
                raise
            except BaseException:  # interrupted: in case the pool's creates are still on their way
                self._cut_short = True
                raise

    def _create(self, unit: Unit):
        import docker

        try:
            with self._creating():
                return self._connected.containers.create(
                    self.settings.image,
                    entrypoint=[unit.argv[0]],
                    command=unit.argv[1:],
                    name=unit.container_name,
                    labels={LABEL: self.run_id, "evt.unit": unit.name, "evt.event": unit.event},
                    network_mode=self.settings.network,
                    privileged=self.privileged,
                    cap_add=self.cap_add or None,
                    security_opt=list(self.settings.security_opt) or None,
                    volumes={str(self.barrier_dir): {"bind": BARRIER_MOUNT, "mode": "ro"}},
                    tmpfs=dict.fromkeys(self.settings.tmpfs, TMPFS_OPTIONS) or None,
                    mem_limit=self.settings.memory,
                    memswap_limit=self.settings.memory,  # no swap beyond the limit
                    detach=True,
                )
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # the name is taken: same run_id as a live or killed run
                raise RunError(
                    f"a container named {unit.container_name} already exists: run_id {self.run_id} belongs to another "
                    f"run, live or killed (`evt cleanup --run-id {self.run_id}` removes a killed one's); "
                    f"use another run_id."
                ) from exc
            if "unknown capability" in str(exc):  # a remembered probe answer that no longer holds
                capcache.forget()
            raise RunError(f"container for {unit.name} could not be created: {exc.explanation or exc}") from exc

    def _follow(self, container, state: UnitState) -> None:
        pending = b""
        try:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    state.feed(line.decode(errors="replace"))
            if pending:
                state.feed(pending.decode(errors="replace"))
            code = int(container.wait().get("StatusCode", -1))
            container.reload()
            if container.attrs["State"].get("OOMKilled"):
                state.note(
                    f"killed by the kernel's OOM killer: the unit needed more than runner.memory={self.settings.memory}"
                )
            self.unit_exited(state, code)
        except Exception as exc:  # container removed under us (cleanup, Ctrl+C)
            state.note(f"(log stream ended: {exc})")
            if state.exit_code is None:
                self.unit_exited(state, -1)

    @contextlib.contextmanager
    def _creating(self):
        """A create request that a signal cuts short may still complete in the daemon. One
        the daemon answered, if only with an error (the capability probe's unknown
        capability), did not: cleanup need not wait for it."""
        import docker

        try:
            yield
        except docker.errors.APIError:
            raise
        except BaseException:
            self._cut_short = True
            raise

    def cleanup(self) -> None:
        if self.client is not None:
            remove_run_containers(self.client, self.run_id)
            # a create request cut short by Ctrl+C can land after the removal: poll a while for it
            deadline = time.monotonic() + (CREATE_SETTLE_S if self._cut_short else 0)
            while time.monotonic() < deadline:
                time.sleep(0.2)
                remove_run_containers(self.client, self.run_id)
        self.remove_barrier()  # after the containers that bind-mount it


def remove_run_containers(client, run_id: str | None = None) -> list[str]:
    """Remove the containers of one run (or of every evt run) by label, in parallel."""
    label = f"{LABEL}={run_id}" if run_id else LABEL
    # ignore_removed: a container that goes away between the listing and its inspection
    # (another run ending) is not an error, it is one less to remove
    containers = client.containers.list(all=True, filters={"label": label}, ignore_removed=True)

    def remove(container) -> str:
        try:
            container.remove(force=True)
        except Exception:  # already gone
            pass
        return container.name

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(remove, containers))
