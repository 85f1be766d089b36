"""Native actions on files: open, symlink/unlink, writes, truncate, inotify watches."""

from __future__ import annotations

import os

from evt.linux import check, libc
from evt.workload.actions.base import Action

IN_ACCESS = 0x1


def _touch(path: str) -> None:
    with open(path, "ab"):
        pass


class FileOpen(Action):
    """openat(marker file) + close: one security_file_open per op."""

    name = "file_open"

    def setup(self) -> None:
        super().setup()
        self.path = self.marker.file  # Marker's paths are properties: resolve once, not per op
        _touch(self.path)

    def op(self) -> None:
        os.close(os.open(self.path, os.O_RDONLY))


class Symlink(Action):
    """symlink + unlink of a link in the marker directory: one security_inode_symlink per op."""

    name = "symlink"

    def setup(self) -> None:
        super().setup()
        self.target = self.marker.file
        self.link = f"{self.marker.dir}/link-{os.getpid()}"

    def op(self) -> None:
        os.symlink(self.target, self.link)
        os.unlink(self.link)


class Unlink(Symlink):
    """The same symlink + unlink; the target event is the unlink."""

    name = "unlink"


class MagicWrite(Action):
    """pwrite of an ELF magic at offset 0 of the marker file: one magic_write per op."""

    name = "magic_write"

    fd = -1

    def setup(self) -> None:
        super().setup()
        self.fd = os.open(f"{self.marker.dir}/magic-{os.getpid()}", os.O_WRONLY | os.O_CREAT, 0o600)

    def op(self) -> None:
        os.pwrite(self.fd, b"\x7fELF", 0)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


class Truncate(MagicWrite):
    """ftruncate(fd, 0) of a file in the marker directory: one do_truncate per op."""

    name = "truncate"

    def op(self) -> None:
        os.ftruncate(self.fd, 0)


class InotifyWatch(Action):
    """inotify_add_watch on the marker directory: one security_path_notify per op."""

    name = "inotify_watch"

    fd = -1

    def setup(self) -> None:
        super().setup()
        self.fd = check(libc.inotify_init1(os.O_CLOEXEC), "inotify_init1")
        self._path = self.marker.dir.encode()

    def op(self) -> None:
        check(libc.inotify_add_watch(self.fd, self._path, IN_ACCESS), "inotify_add_watch")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


ACTIONS = [
    FileOpen,
    Symlink,
    Unlink,
    MagicWrite,
    Truncate,
    InotifyWatch,
]  # this family's actions, registered by evt.workload.actions
