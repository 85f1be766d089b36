"""Native actions on sockets (loopback only, no packet leaves): create, connect, bind, dup."""

from __future__ import annotations

import os
import socket

from evt.linux import check, libc
from evt.workload.actions.base import Action


class SocketCreate(Action):
    """socket(AF_INET, SOCK_DGRAM) + close: one security_socket_create per op."""

    name = "socket_create"

    def op(self) -> None:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()


class SocketConnect(Action):
    """connect() of a UDP socket to 127.0.0.1:<marker port>: no packet leaves, one connect per op."""

    name = "socket_connect"

    sock: socket.socket | None = None

    def setup(self) -> None:
        super().setup()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def op(self) -> None:
        assert self.sock is not None
        self.sock.connect(("127.0.0.1", self.marker.port))

    def close(self) -> None:
        if self.sock:
            self.sock.close()


class SocketBind(Action):
    """socket + bind(127.0.0.1:0) + close: one security_socket_bind per op."""

    name = "socket_bind"

    def op(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))


class SocketDup(Action):
    """socket(AF_INET, SOCK_DGRAM) + dup() + close both: one socket_dup per op.

    libc's dup(), not os.dup(): Python duplicates with fcntl(F_DUPFD_CLOEXEC), which Tracee's
    socket_dup (a dup/dup2/dup3 exit hook) does not see."""

    name = "socket_dup"

    def op(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            os.close(check(libc.dup(sock.fileno()), "dup"))


ACTIONS = [
    SocketCreate,
    SocketConnect,
    SocketBind,
    SocketDup,
]  # this family's actions, registered by evt.workload.actions
