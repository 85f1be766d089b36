"""`evt verify`: each trigger checked at the kernel function or tracepoint Tracee attaches
for its event (the hook), on this host when its kernel has kprobes, else in a VM booting a
stock distribution kernel.

Modules, one job each:
  recorded  the catalog's `tracee_hook` and `verified` entries (parsed, and rewritten)
  checker   one bpftrace program counting hook and ground truth per trigger run (any host)
  guest     the VM's side: runs the checker, sends its lines back on a serial port
  kernels   stock kernel packages: names, download with apt, the cache
  image     the VM's root file system (mmdebstrap) and evt's wheel as an initramfs, cached
  vm        qemu: boot, wait, stop, registered for `evt cleanup`
  results   verdicts and verify.csv / verify.json / verify.md
  command   the `evt verify` command: checks its input, picks host or VM, writes the run
"""
