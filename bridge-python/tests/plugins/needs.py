"""A test extension doing what real extensions need: numpy with BLAS threads, pool arrays,
subprocesses, its temp dir, a crash."""

import os
import subprocess
import tempfile

import numpy as np

import troupe


class Needs(troupe.Extension):
    def matmul(self, n):
        """A BLAS matrix product (multi-threaded for large ``n``): the trace of ``a @ a.T``."""
        a = np.arange(n * n, dtype=np.float64).reshape(n, n) / (n * n)
        return float(np.trace(a @ a.T))

    def echo(self, array):
        """The array it got, as it got it (the host's pool slot)."""
        return array

    def fresh(self, n):
        """A pool array made here: bytes ``i % 251``."""
        array = troupe.empty(n, np.uint8)
        array[:] = np.arange(n, dtype=np.uint64) % 251
        return array

    def checksum(self, array):
        return int(array.sum(dtype=np.uint64))

    def echo_subprocess(self):
        done = subprocess.run(["/bin/echo", "x"], capture_output=True, check=True)
        return done.stdout.decode()

    def write_tmp(self):
        """Writes a file to ``$TMPDIR`` (and one through ``tempfile``); returns the dir."""
        tmp = os.environ["TMPDIR"]
        with open(os.path.join(tmp, "scratch.txt"), "w") as f:
            f.write("scratch")
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"more")
        return tmp

    def crash(self):
        os._exit(3)

    def pid(self):
        return os.getpid()
