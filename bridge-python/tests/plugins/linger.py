"""How long the child keeps a call's arguments: each `take*` starts a thread that looks, 1 s
after the call returned (no frame from the host meanwhile), whether its argument still
lives; `report` says what it saw."""

import gc
import threading
import time
import weakref

import troupe


class Linger(troupe.Extension):
    def initialize(self):
        self.seen = None

    def _watch(self, obj):
        ref = weakref.ref(obj)
        self.seen = None

        def probe():
            time.sleep(1.0)
            gc.collect()
            self.seen = ref() is not None

        threading.Thread(target=probe, daemon=True).start()

    def take(self, obj):
        self._watch(obj)

    async def take_async(self, obj):
        self._watch(obj)

    def take_streamed(self, obj):
        self._watch(obj)
        yield 1
        yield 2

    def report(self):
        return self.seen
