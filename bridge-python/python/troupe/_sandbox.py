"""The ``strict`` sandbox's last step, taken before anything else of troupe runs.

In ``strict``, the child runs inside bubblewrap, which installs the seccomp filters but
cannot apply Landlock (it would refuse bubblewrap's own mounts). The host builds the
Landlock ruleset and passes it here as an inherited descriptor (``TROUPE_LANDLOCK_FD``);
this module adds the one rule only the child can make (the ``/proc`` of its own pid
namespace) and enforces the ruleset. A failure ends the child: it never runs unconfined.
"""

import ctypes
import os
import struct
import sys

# Syscall numbers shared by x86_64 and aarch64 (the generic table).
_LANDLOCK_ADD_RULE = 445
_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_RULE_PATH_BENEATH = 1
# LANDLOCK_ACCESS_FS_EXECUTE | READ_FILE | READ_DIR
_READ = 1 | 4 | 8
_PR_SET_NO_NEW_PRIVS = 38


def _fail(what):
    err = ctypes.get_errno()
    sys.stderr.write(f"troupe: cannot enforce the sandbox ({what}): {os.strerror(err)}\n")
    sys.stderr.flush()
    os._exit(70)


def enforce(fd):
    """Adds ``/proc`` to the ruleset on ``fd``, enforces it on this process, closes it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    proc = os.open("/proc", os.O_PATH | os.O_CLOEXEC)
    attr = ctypes.create_string_buffer(struct.pack("=Qi", _READ, proc), 12)
    if libc.syscall(
        ctypes.c_long(_LANDLOCK_ADD_RULE),
        ctypes.c_int(fd),
        ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH),
        attr,
        ctypes.c_uint(0),
    ):
        _fail("landlock_add_rule /proc")
    os.close(proc)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        _fail("no_new_privs")
    if libc.syscall(ctypes.c_long(_LANDLOCK_RESTRICT_SELF), ctypes.c_int(fd), ctypes.c_uint(0)):
        _fail("landlock_restrict_self")
    os.close(fd)
