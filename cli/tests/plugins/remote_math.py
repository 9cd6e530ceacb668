"""An extension served to other hosts by `troupe serve` in the remote-call tests."""

import os
import time

import troupe


class RemoteMath(troupe.Extension):
    def add(self, a, b):
        return a + b

    def noop(self):
        return None

    def sleep(self, seconds):
        time.sleep(seconds)
        return seconds

    def nap(self, seconds):
        time.sleep(seconds)
        return seconds

    def pid(self):
        return os.getpid()

    def whoami(self):
        return os.environ.get("TROUPE_TEST_HOST")

    # As pipeline nodes (`type = "python"` on a client's manifest).
    def slow_double(self, item):
        time.sleep(0.002)
        return item * 2

    def digits(self, item):
        for ch in str(item):
            yield int(ch)

    def digits_flush(self):
        yield -1
