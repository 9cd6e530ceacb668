"""The driver of system `troupe-python-host`: troupe's Python host (`troupe.Host`) calling
the same extension `troupe-bridged` measures, through the package's public API.

Run by the harness as ``python -c "import troupe_bench_python_host as d; d.main()" REQUEST``;
writes ``{"rows": [{"payload_bytes", "in_flight", "samples_ns", "extra"}], "notes": [...]}``
to ``REQUEST["results"]``.
"""

import asyncio
import json
import os
import sys
import time

import troupe


def row(samples, payload_bytes=0, in_flight=1, **extra):
    return {
        "payload_bytes": payload_bytes,
        "in_flight": in_flight,
        "samples_ns": samples,
        "extra": extra,
    }


def timed(n, warmup, call):
    for _ in range(warmup):
        call()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


def call_roundtrip(ext, req):
    """Blocking calls from the host's main thread, one at a time."""
    rows = [row(timed(req["n"], req["warmup"], ext.noop), call="noop")]
    for size in req["payloads"]:
        data = b"\xa5" * size

        def echo(data=data):
            if len(ext.echo(data)) != len(data):
                raise RuntimeError("echo returned other bytes")

        rows.append(row(timed(req["n"], req["warmup"], echo), size, call="echo"))
    return rows


def calls_per_second(ext, req):
    """Awaited calls: `in_flight` coroutines on one asyncio loop share the calls."""
    calls, runs = req["calls"], req["runs"]
    noop = ext.aio.noop

    async def measure():
        rows = []
        for in_flight in req["in_flights"]:

            async def worker(count):
                for _ in range(count):
                    await noop()

            shares = [calls // in_flight + (1 if i < calls % in_flight else 0) for i in range(in_flight)]
            await asyncio.gather(*(worker(min(share, 50)) for share in shares))
            samples = []
            for _ in range(runs):
                start = time.perf_counter_ns()
                await asyncio.gather(*(worker(share) for share in shares))
                samples.append((time.perf_counter_ns() - start) // calls)
            rows.append(row(samples, 0, in_flight, call="noop", runs=runs, calls_per_run=calls))
        return rows

    return asyncio.run(measure())


def array_handoff(ext, req):
    """An array made in the host's pool (`troupe.zeros`) echoed host -> extension -> host:
    descriptors both ways, no copy."""
    rows = []
    for size, n in zip(req["sizes"], req["counts"]):
        array = troupe.zeros(size // 4, "float32")
        array[:] = 1.5

        def echo(array=array):
            if ext.echo(array).shape != array.shape:
                raise RuntimeError("echo returned another shape")

        if n > 0:
            rows.append(row(timed(n, 1, echo), size, call="echo", kind="pool array"))
    return rows


SCENARIOS = {
    "array-handoff": array_handoff,
    "call-roundtrip": call_roundtrip,
    "calls-per-second": calls_per_second,
}


def main():
    req = json.loads(sys.argv[1])
    here = os.path.dirname(os.path.abspath(__file__))
    host = troupe.Host(quiet=True)
    host.add_extension("bench", "troupe_bench_ext", path=here, dependencies=["numpy>=1.26,<3"])
    with host:
        ext = host["bench"]
        ext.noop()
        rows = SCENARIOS[req["scenario"]](ext, req)
    tmp = req["results"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump({"rows": rows, "notes": []}, out)
    os.replace(tmp, req["results"])
