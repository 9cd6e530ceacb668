"""troupe bench driver for pyisolate: measures through pyisolate's documented API.

The harness writes this module next to an extension package ``noop_ext`` and runs
``python -c "import troupe_bench_pyisolate as d; d.main()" REQUEST`` in a venv that holds
pyisolate. REQUEST is a JSON object: ``scenario`` (call-roundtrip, calls-per-second,
nested-chain, cold-start, restart, array-handoff), ``results`` (the file to write), ``venvs`` (pyisolate's
venv root) and the scenario's counts. The results file is a JSON object
``{"rows": [{"payload_bytes", "in_flight", "samples_ns", "extra"}], "notes": [...]}``;
the harness computes medians and percentiles itself. A file rather than stdout, because
pyisolate logs to stdout and its children inherit it.

What pyisolate asks for (see the project's DESIGN.md):
- the extension class must be importable in the child, so it lives here and not in
  ``__main__``; only ``async def`` methods are callable;
- the sandbox is DISABLED (bubblewrap is not assumed);
- without the sandbox and without ``share_torch`` the child venv has no pyisolate, so the
  child's PYTHONPATH carries this directory and the host venv's site-packages;
- no dependencies, so pyisolate never tries to put torch into the child venv.
"""

import asyncio
import json
import os
import site
import sys
import time

import pyisolate
from pyisolate import (
    ExtensionBase,
    ExtensionConfig,
    ExtensionManager,
    ExtensionManagerConfig,
    ProxiedSingleton,
    SandboxMode,
)

EXTENSION = "troupe-bench-noop"
HERE = os.path.dirname(os.path.abspath(__file__))


class HostChain(ProxiedSingleton):
    """A host singleton the extension calls: the host half of the nested chain."""

    extension = None

    async def down(self, depth):
        if depth <= 1:
            return 1
        return await HostChain.extension.down(depth - 1) + 1


class BenchExtension(ExtensionBase):
    """The extension: a no-op, an echo, the child half of the chain, and a crash."""

    async def on_module_loaded(self, module):
        self.module = module

    async def noop(self):
        return None

    async def echo(self, data):
        return data

    async def down(self, depth):
        if depth <= 1:
            return 1
        return await HostChain().down(depth - 1) + 1

    async def crash(self):
        os._exit(3)


def load(venvs):
    """A manager and its one extension (the process starts on the first call)."""
    child_path = os.pathsep.join([HERE, *site.getsitepackages()])
    manager = ExtensionManager(BenchExtension, ExtensionManagerConfig(venv_root_path=venvs))
    extension = manager.load_extension(
        ExtensionConfig(
            name=EXTENSION,
            module_path=os.path.join(HERE, "noop_ext"),
            isolated=True,
            dependencies=[],
            apis=[HostChain],
            share_torch=False,
            share_cuda_ipc=False,
            sandbox_mode=SandboxMode.DISABLED,
            env={"PYTHONPATH": child_path},
        )
    )
    HostChain.extension = extension
    return manager, extension


def row(samples, payload_bytes=0, in_flight=1, **extra):
    return {
        "payload_bytes": payload_bytes,
        "in_flight": in_flight,
        "samples_ns": samples,
        "extra": extra,
    }


async def timed(n, warmup, call):
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await call()
        samples.append(time.perf_counter_ns() - start)
    return samples


async def call_roundtrip(extension, req):
    rows = [row(await timed(req["n"], req["warmup"], extension.noop), call="noop")]
    for size in req["payloads"]:
        data = b"\xa5" * size

        async def echo(data=data):
            reply = await extension.echo(data)
            if len(reply) != len(data):
                raise RuntimeError(f"echo returned {len(reply)} bytes for {len(data)}")

        rows.append(row(await timed(req["n"], req["warmup"], echo), size, call="echo"))
    return rows


async def calls_per_second(extension, req):
    calls, runs = req["calls"], req["runs"]
    await timed(0, min(calls, 500), extension.noop)
    rows = []
    for in_flight in req["in_flights"]:

        async def worker(count):
            for _ in range(count):
                await extension.noop()

        shares = [calls // in_flight + (1 if i < calls % in_flight else 0) for i in range(in_flight)]
        samples = []
        for _ in range(runs):
            start = time.perf_counter_ns()
            await asyncio.gather(*(worker(share) for share in shares))
            samples.append((time.perf_counter_ns() - start) // calls)
        rows.append(row(samples, 0, in_flight, call="noop", runs=runs, calls_per_run=calls))
    return rows


async def nested_chain(extension, req):
    depth = req["depth"]

    async def chain():
        reached = await extension.down(depth)
        if reached != depth:
            raise RuntimeError(f"chain reached depth {reached}, not {depth}")

    samples = await timed(req["n"], req["warmup"], chain)
    return [row(samples, 0, 1, depth=depth, hops=2 * depth)]


async def cold_start(req):
    samples = []
    for i in range(req["n"] + 1):  # the first one may build pyisolate's venv: untimed
        start = time.perf_counter_ns()
        manager, extension = load(req["venvs"])
        await extension.noop()
        elapsed = time.perf_counter_ns() - start
        manager.stop_all_extensions()
        if i > 0:
            samples.append(elapsed)
    return [row(samples, call="noop")]


async def restart(extension, req):
    samples = []
    for _ in range(req["n"]):
        start = time.perf_counter_ns()
        try:
            await extension.crash()
        except Exception:  # pyisolate fails the pending call with a bare ConnectionError
            pass
        else:
            raise RuntimeError("crash() returned")
        # pyisolate does not restart a crashed extension by itself: the caller stops it,
        # and the next call starts a new process.
        extension.stop()
        await extension.noop()
        samples.append(time.perf_counter_ns() - start)
    return [row(samples, call="noop", restart="by the caller: stop(), then the next call respawns")]


async def array_handoff(extension, req):
    """numpy arrays (and torch CPU tensors when torch is installed) echoed host -> extension
    -> host, through pyisolate's own serialization."""
    import numpy as np

    rows = []
    for size, n in zip(req["sizes"], req["counts"]):
        array = np.full(size // 4, 1.5, dtype=np.float32)

        async def echo(array=array):
            # pyisolate sends a numpy array as a list: what comes back is a list of floats.
            reply = np.asarray(await extension.echo(array))
            if reply.size != array.size:
                raise RuntimeError(f"echo returned {reply.size} elements for {array.size}")

        if n > 0:
            rows.append(row(await timed(n, 1, echo), size, call="echo", kind="numpy"))
    try:
        import torch
    except ImportError:
        return rows
    for size, n in zip(req["sizes"], req["counts"]):
        tensor = torch.full((size // 4,), 1.5, dtype=torch.float32)

        async def echo_tensor(tensor=tensor):
            reply = await extension.echo(tensor)
            if torch.as_tensor(reply).numel() != tensor.numel():
                raise RuntimeError("echo returned a different tensor")

        rows.append(row(await timed(max(n, 3), 1, echo_tensor), size, call="echo", kind="torch"))
    return rows


SCENARIOS = {
    "array-handoff": array_handoff,
    "call-roundtrip": call_roundtrip,
    "calls-per-second": calls_per_second,
    "nested-chain": nested_chain,
    "restart": restart,
}


async def run(req):
    if req["scenario"] == "cold-start":
        return await cold_start(req)
    manager, extension = load(req["venvs"])
    try:
        await extension.noop()
        return await SCENARIOS[req["scenario"]](extension, req)
    finally:
        manager.stop_all_extensions()


def main():
    req = json.loads(sys.argv[1])
    rows = asyncio.run(run(req))
    notes = [] if pyisolate.__version__ == req["version"] else [
        f"pyisolate {pyisolate.__version__} measured, {req['version']} asked for"
    ]
    tmp = req["results"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump({"rows": rows, "notes": notes}, out)
    os.replace(tmp, req["results"])
