"""A test extension for load: trivial methods, and one that stops reading."""

import time

import troupe


class Bursts(troupe.Extension):
    def work(self, i, payload=None):
        return i

    async def work_async(self, i, payload=None):
        return i

    def hang(self, seconds):
        # A `def` method runs on the thread that receives: while it sleeps, nothing in
        # this child reads the host's frames.
        time.sleep(seconds)
        return "woke"
