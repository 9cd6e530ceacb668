"""An extension served to other hosts by `troupe serve` in the remote-call tests."""

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
