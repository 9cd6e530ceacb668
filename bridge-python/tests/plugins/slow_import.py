"""A test extension whose import never finishes in time: a start that hangs."""

import time

import troupe

time.sleep(3600)


class SlowImport(troupe.Extension):
    def ping(self):
        return "pong"
