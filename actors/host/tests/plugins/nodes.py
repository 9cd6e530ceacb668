"""Methods used as pipeline nodes by pipeline_python_nodes.rs."""

import asyncio
import os
import time

import numpy as np

import troupe


class Nodes(troupe.Extension):
    def initialize(self):
        self.total = 0

    def explode(self, item, factor=10):
        """A generator: two outputs per input."""
        self.total += item
        yield item
        yield item * factor

    def ticks(self, item, n=5, gap=0.3):
        """Yields `n` values `gap` seconds apart, each with the time it was yielded."""
        for k in range(n):
            if k:
                time.sleep(gap)
            yield {"k": k, "t": time.time()}

    async def ticks_async(self, item, n=5, gap=0.3):
        for k in range(n):
            if k:
                await asyncio.sleep(gap)
            yield {"k": k, "t": time.time()}

    def forever(self, item):
        """Yields forever, counting what it yielded."""
        self.yielded = 0
        while True:
            self.yielded += 1
            yield self.yielded

    def yielded_so_far(self):
        return getattr(self, "yielded", 0)

    def explode_flush(self, factor=10):
        yield {"total": self.total}

    def ask_host(self, item):
        """Calls the host, which offers no service of its own here."""
        try:
            troupe.host.ping()
        except troupe.TargetNotFoundError as error:
            return f"{type(error).__name__}: {error.target}"
        return "answered"

    async def slow_double(self, item):
        await asyncio.sleep(0.001 * (item % 3))
        return item * 2

    def evens(self, item):
        """Odd inputs are errors; None is no output."""
        if item % 2:
            raise ValueError(f"{item} is odd")
        return None if item == 0 else item

    def fragile(self, item, marker):
        """Crashes its process once, on item 3."""
        if item == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(9)
        return item

    def hangs_on_three(self, item):
        """Never returns for item 3 (a `def` method: a cancel cannot stop it)."""
        if item == 3:
            time.sleep(3600)
        return item

    def louder(self, audio):
        assert isinstance(audio, troupe.Audio), type(audio)
        assert isinstance(audio.samples, np.ndarray)
        return troupe.Audio(audio.samples * 2, audio.sample_rate, audio.channels, audio.timestamp_ns)

    def negative(self, frame):
        assert isinstance(frame, troupe.VideoFrame), type(frame)
        return troupe.VideoFrame(
            255 - frame.pixels, frame.width, frame.height, frame.format, frame.timestamp_ns
        )
