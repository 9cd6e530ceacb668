"""A hostile extension: it tries to write, shrink or find shared memory it was only lent."""

import ctypes
import mmap
import os

import troupe


def _memory_files():
    """The descriptors this process holds that are troupe's memory files."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("/memfd:troupe"):
            found.append(int(name))
    return found


def _attempt(action):
    """``"ok"`` when ``action`` succeeded, else the error's name."""
    try:
        action()
        return "ok"
    except OSError as error:
        return type(error).__name__


def _write_reopened(path):
    """Opens the memory file anew, read-write, and writes through that."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, b"x", 0)
    finally:
        os.close(fd)


class HostileMemory(troupe.Extension):
    def attack(self, array):
        """Every way to change or shrink the host's lent array short of a crash, and what
        each gave; plus what ``/dev/shm`` lists."""
        fds = _memory_files()
        outcomes = {"memory_files": len(fds), "writeable": bool(array.flags.writeable)}
        for fd in fds:
            size = os.fstat(fd).st_size
            outcomes.setdefault("map_writable", []).append(
                _attempt(lambda: mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
            )
            outcomes.setdefault("truncate", []).append(_attempt(lambda: os.ftruncate(fd, 0)))
            outcomes.setdefault("write", []).append(_attempt(lambda: os.pwrite(fd, b"x", 0)))
            outcomes.setdefault("write_reopened", []).append(
                _attempt(lambda: _write_reopened(f"/proc/self/fd/{fd}"))
            )
        try:
            array.flags.writeable = True
            outcomes["make_writeable"] = "ok"
        except ValueError:
            outcomes["make_writeable"] = "ValueError"
        try:
            outcomes["shm_names"] = [n for n in os.listdir("/dev/shm") if n.startswith("troupe")]
        except OSError as error:
            # Sandboxed: /dev/shm is not even readable.
            outcomes["shm_names"] = type(error).__name__
        return outcomes

    def scribble(self, array):
        """Writes over the lent array by address (the child faults: it is mapped read-only)."""
        ctypes.memset(array.ctypes.data, 0, array.nbytes)
        return "wrote"

    def ping(self):
        return "pong"
