"""An extension for the Python host's tests: echo, sleep, crash, call back, arrays."""

import asyncio
import os
import sys
import time

import troupe


class Probe(troupe.Extension):
    def initialize(self):
        self.calls = 0

    def echo(self, *args, **kwargs):
        self.calls += 1
        return {"args": list(args), "kwargs": kwargs}

    def noop(self):
        return None

    def pid(self):
        return os.getpid()

    def versions(self):
        try:
            import numpy

            numpy_version = numpy.__version__
        except ImportError:
            numpy_version = None
        return {"python": sys.version.split()[0], "numpy": numpy_version}

    def sleep(self, seconds):
        time.sleep(seconds)
        return seconds

    async def nap(self, seconds):
        await asyncio.sleep(seconds)
        return seconds

    def fail(self, message):
        raise ValueError(message)

    def crash(self, code):
        os._exit(code)

    def ask_host(self, method, *args):
        return troupe.host.call(method, *args)

    async def ask_host_async(self, method, *args):
        return await troupe.host.aio.call(method, *args)

    def ask_singleton(self, name, method, *args):
        return getattr(troupe.singleton(name), method)(*args)

    def ask_extension(self, name, method, *args):
        return getattr(troupe.extension(name), method)(*args)

    def down(self, depth):
        """host -> extension -> host -> extension ... until depth reaches 0."""
        if depth <= 0:
            return 0
        return troupe.host.down(depth - 1) + 1

    def where(self, array):
        """Where an array from the host lies: its pool slot (None if it was copied) and sum."""
        return {"slot": troupe.slot_of(array), "sum": float(array.sum()), "writeable": bool(array.flags.writeable)}

    def make(self, n, value):
        """An array made in this child's pool: it goes back without a copy."""
        out = troupe.zeros(n, "float64")
        out[:] = value
        return out

    def count(self, n, delay=0.0):
        self.counted, self.count_closed = 0, False
        try:
            for i in range(n):
                if delay:
                    time.sleep(delay)
                self.counted = i + 1
                yield i
        except GeneratorExit:
            self.count_closed = True
            raise

    def counted_so_far(self):
        return getattr(self, "counted", 0)

    def count_was_closed(self):
        return getattr(self, "count_closed", False)

    async def count_async(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    def count_then_fail(self, n):
        yield from range(n)
        raise ValueError("no more")
