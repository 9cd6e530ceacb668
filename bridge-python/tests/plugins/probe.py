"""A test extension: one method per behaviour the bridge tests check."""

import asyncio
import os
import threading
import time

import troupe

EVENTS = ["module imported"]


class Probe(troupe.Extension):
    def __init__(self):
        self.events = EVENTS
        self.events.append("__init__")
        self.cancelled = 0
        self.hog = None

    # --- lifecycle -------------------------------------------------------------------
    def before_module_loaded(self):
        self.events.append("before_module_loaded")

    def on_module_loaded(self, module):
        self.events.append(f"on_module_loaded:{module.__name__}")

    async def initialize(self):
        await asyncio.sleep(0)
        self.events.append("initialize")

    def prepare_shutdown(self):
        marker = os.environ.get("PROBE_SHUTDOWN_MARKER")
        if marker:
            with open(marker, "w") as f:
                f.write("prepare_shutdown ran")

    def lifecycle(self):
        return self.events

    # --- values ----------------------------------------------------------------------
    def echo(self, *args, **kwargs):
        return [list(args), kwargs]

    def add(self, a, b):
        return a + b

    async def add_async(self, a, b):
        await asyncio.sleep(0)
        return a + b

    def return_set(self):
        return {"a": [1, {2, 3}]}

    def pid(self):
        return os.getpid()

    # --- errors ----------------------------------------------------------------------
    def fail(self, message):
        def deeper():
            raise ValueError(message)

        deeper()

    async def fail_async(self):
        await asyncio.sleep(0)
        raise KeyError("missing key")

    # --- time and cancellation -------------------------------------------------------
    def sleep(self, seconds):
        time.sleep(seconds)
        return "slept"

    async def sleep_async(self, seconds):
        try:
            await asyncio.sleep(seconds)
            return "slept"
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    def cancelled_count(self):
        return self.cancelled

    # --- crashes ---------------------------------------------------------------------
    def exit_now(self, code):
        os._exit(code)

    def segfault(self):
        import ctypes

        ctypes.string_at(0)

    def allocate(self, megabytes):
        self.hog = bytearray(megabytes * 1024 * 1024)
        for i in range(0, len(self.hog), 4096):
            self.hog[i] = 1
        time.sleep(30)
        return "survived"

    # --- calls out -------------------------------------------------------------------
    def recurse(self, depth):
        if depth == 0:
            return 0
        return troupe.host.recurse(depth - 1) + 1

    async def recurse_async(self, depth):
        if depth == 0:
            return 0
        return await troupe.host.aio.recurse_async(depth - 1) + 1

    def kv_roundtrip(self, key, value):
        kv = troupe.singleton("kv")
        kv.put(key, value)
        return kv.get(key)

    def call_forbidden(self):
        try:
            troupe.singleton("secret").get("x")
        except troupe.PermissionDeniedError as e:
            return type(e).__name__
        return "allowed?"

    def call_from_thread(self, a, b):
        result = {}

        def work():
            result["sum"] = troupe.host.add(a, b)

        t = threading.Thread(target=work)
        t.start()
        t.join()
        return result["sum"]
