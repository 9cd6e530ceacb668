"""Served by a `troupe serve` child in test_remote.py; `relay` (local) calls it by name."""

import time

import troupe


class RemoteEcho(troupe.Extension):
    def add(self, a, b):
        return a + b

    def nap(self, seconds):
        time.sleep(seconds)
        return seconds


class Relay(troupe.Extension):
    def plus_remote(self, item):
        return troupe.extension("echo").add(item, 1000)
