"""A hostile extension: each method tries one way out of its sandbox.

``attack(name, target)`` answers ``"ok"`` when the attack worked and ``"denied: ERRNO"``
(the errno's name) when the system refused it. The test decides which answer each sandbox
level must give.
"""

import ctypes
import errno
import os
import socket
import sys

import troupe

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
CLONE_NEWUSER = 0x10000000
NETLINK_ROUTE = 0


def _denied(code):
    return f"denied: {errno.errorcode.get(code, code)}"


def _check(result):
    if result < 0:
        return _denied(ctypes.get_errno())
    return "ok"


def _in_fork(attack):
    """Runs ``attack`` (returning 0 or an errno) in a forked child, so that a success does
    not change this process."""
    pid = os.fork()
    if pid == 0:
        try:
            code = attack()
        except BaseException:
            code = 255
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return "ok" if code == 0 else _denied(code)


def _unshare_user():
    if _libc.unshare(CLONE_NEWUSER) != 0:
        return ctypes.get_errno()
    return 0


def _ptrace(pid):
    """Attaches without stopping, stops, waits, detaches: the target runs on unharmed."""
    if _libc.ptrace(PTRACE_SEIZE, pid, None, None) != 0:
        return _denied(ctypes.get_errno())
    _libc.ptrace(PTRACE_INTERRUPT, pid, None, None)
    os.waitpid(pid, os.__dict__.get("__WALL", 0x40000000))
    _libc.ptrace(PTRACE_DETACH, pid, None, None)
    return "ok"


class Hostile(troupe.Extension):
    def pid(self):
        return os.getpid()

    def tmpdir(self):
        return os.environ.get("TMPDIR", "")

    def fds(self):
        """This process's open descriptors, with what each one is."""
        found = {}
        for fd in os.listdir("/proc/self/fd"):
            try:
                found[fd] = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                pass  # the directory's own descriptor, closed by now
        return found

    def prefix(self):
        return sys.prefix

    def attack(self, name, target=None):
        try:
            return getattr(self, "_" + name)(target)
        except OSError as e:
            return _denied(e.errno)

    def _read_file(self, path):
        with open(path) as f:
            f.read()
        return "ok"

    def _list_dir(self, path):
        os.listdir(path)
        return "ok"

    def _write_file(self, path):
        with open(path, "w") as f:
            f.write("written by a hostile extension")
        return "ok"

    def _tcp_socket(self, _):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        return "ok"

    def _udp_socket(self, _):
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
        return "ok"

    def _netlink_socket(self, _):
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE).close()
        return "ok"

    def _tcp_connect(self, port):
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return "ok"

    def _abstract_connect(self, name):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect("\0" + name)
        return "ok"

    def _ptrace(self, pid):
        return _ptrace(pid)

    def _signal(self, pid):
        os.kill(pid, 18)  # SIGCONT: harmless, but a signal all the same
        return "ok"

    def _unshare_user(self, _):
        return _in_fork(_unshare_user)

    def _host_environ(self, pid_and_key):
        pid, key = pid_and_key
        with open(f"/proc/{pid}/environ", "rb") as f:
            found = (key.encode() + b"=") in f.read()
        return "ok" if found else "denied: not found"

    def _own_environ(self, key):
        return "ok" if key in os.environ else "denied: not set"

    def _process_vm_readv(self, pid_and_address):
        pid, address = pid_and_address

        class iovec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

        buf = ctypes.create_string_buffer(16)
        local = iovec(ctypes.addressof(buf), 16)
        remote = iovec(address, 16)
        _libc.process_vm_readv.restype = ctypes.c_ssize_t
        n = _libc.process_vm_readv(
            pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, ctypes.c_ulong(0)
        )
        return _check(n)
