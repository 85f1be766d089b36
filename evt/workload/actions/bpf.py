"""Native actions on BPF: loading a program."""

from __future__ import annotations

import ctypes
import os
import platform

from evt.linux import check, libc
from evt.workload.actions.base import Action

libc.syscall.restype = ctypes.c_long

BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SOCKET_FILTER = 1
NR_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine())


class _BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("regs", ctypes.c_uint8), ("off", ctypes.c_int16), ("imm", ctypes.c_int32)]


class _BpfProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
        ("_rest", ctypes.c_uint8 * 64),  # later fields of union bpf_attr, all zero
    ]


class BpfProgLoad(Action):
    """BPF_PROG_LOAD of `r0 = 0; exit` (a socket filter) + close: one security_bpf_prog per op."""

    name = "bpf_prog_load"

    def setup(self) -> None:
        super().setup()
        if NR_BPF is None:
            raise OSError(f"bpf syscall number unknown on {platform.machine()}")
        self._insns = (_BpfInsn * 2)(_BpfInsn(0xB7, 0, 0, 0), _BpfInsn(0x95, 0, 0, 0))
        self._license = ctypes.create_string_buffer(b"GPL")
        self._attr = _BpfProgLoadAttr(
            prog_type=BPF_PROG_TYPE_SOCKET_FILTER,
            insn_cnt=2,
            insns=ctypes.addressof(self._insns),
            license=ctypes.addressof(self._license),
            prog_name=f"evt_{self.marker.token}".encode(),
        )

    def op(self) -> None:
        fd = check(
            libc.syscall(NR_BPF, BPF_PROG_LOAD, ctypes.byref(self._attr), ctypes.sizeof(self._attr)),
            "bpf(BPF_PROG_LOAD)",
        )
        os.close(fd)


ACTIONS = [BpfProgLoad]  # this family's actions, registered by evt.workload.actions
