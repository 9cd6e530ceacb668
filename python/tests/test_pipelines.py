"""Pipelines from a Python host: fed from Python, outputs streamed back as they come."""

import asyncio
import math
import textwrap
import time

import numpy as np
import pytest

import troupe


def tone(seconds, rate=16000, hz=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * math.pi * hz * t)).astype(np.float32)


def test_a_pipeline_in_code_with_a_callable_and_an_extension_node(plugins):
    pipeline = (
        troupe.Pipeline("numbers")
        .input("numbers")
        .callable("double", lambda n: n * 2)
        .extension("echo", "probe", "echo")
        .callable("unwrap", lambda reply: reply["args"][0])
        .edge("numbers", "double")
        .edge("double", "echo")
        .edge("echo", "unwrap")
    )
    host = troupe.Host(quiet=True)
    host.add_extension("probe", "probe", path=plugins)
    host.add_pipeline(pipeline)
    with host:
        run = host.run("numbers", feed={"numbers": range(50)}, outputs=["unwrap"])
        outputs = [value for node, value in run]
        summary = run.wait()
    assert outputs == [2 * n for n in range(50)]
    assert summary["error"] is None
    nodes = {n["id"]: n for n in summary["nodes"]}
    assert nodes["echo"]["items_in"] == 50


def test_outputs_stream_back_while_the_feed_goes_on():
    seen = []

    def slow_numbers():
        for n in range(5):
            yield n
            time.sleep(0.2)

    pipeline = troupe.Pipeline("slow").input("n").callable("square", lambda n: n * n).edge("n", "square")
    host = troupe.Host(quiet=True).add_pipeline(pipeline)
    with host:
        began = time.monotonic()
        for node, value in host.run("slow", feed={"n": slow_numbers()}, outputs=["square"]):
            seen.append((node, value, time.monotonic() - began))
    assert [v for _, v, _ in seen] == [0, 1, 4, 9, 16]
    # The first output came long before the feed ended (0.8 s in).
    assert seen[0][2] < 0.5


def test_audio_through_builtin_nodes_fed_by_an_async_iterator():
    pipeline = (
        troupe.Pipeline("audio")
        .input("mic")
        .node("gain", "audio.gain", db=-6.0)
        .edge("mic", "gain")
    )

    async def chunks():
        for _ in range(10):
            yield troupe.Audio(tone(0.02), 16000)
            await asyncio.sleep(0)

    async def main():
        host = troupe.Host(quiet=True).add_pipeline(pipeline)
        with host:
            run = host.run("audio", feed={"mic": chunks()}, outputs=["gain"])
            got = [value async for node, value in run]
            return got, await run.wait_async()

    got, summary = asyncio.run(main())
    assert len(got) == 10
    first = got[0]
    assert isinstance(first, troupe.Audio) and first.sample_rate == 16000
    peak = float(np.abs(first.samples).max())
    assert peak == pytest.approx(0.5 * 10 ** (-6 / 20), rel=0.02)
    assert summary["error"] is None


def test_a_manifest_pipeline_with_its_source_fed_from_python(tmp_path):
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        textwrap.dedent(
            """
            [[pipelines.calc.nodes]]
            id = "input"
            type = "data.jsonl_source"
            params = { path = "unused.jsonl" }

            [[pipelines.calc.nodes]]
            id = "calc"
            type = "data.calculator"
            params = { op = "multiply", operand = 10 }

            [[pipelines.calc.edges]]
            from = "input"
            to = "calc"
            """
        )
    )
    (tmp_path / "unused.jsonl").write_text("")
    with troupe.Host(manifest, quiet=True) as host:
        run = host.run(feed={"input": range(3)}, outputs=["calc"])
        ys = [value for _, value in run]
    assert ys == [0, 10, 20]


def test_an_unknown_node_type_is_a_manifest_error():
    pipeline = troupe.Pipeline("bad").input("x").node("n", "audio.no_such_node").edge("x", "n")
    host = troupe.Host(quiet=True).add_pipeline(pipeline)
    with pytest.raises(troupe.ManifestError, match="no_such_node"):
        host.start()


def test_a_failing_callable_node_is_counted_and_the_run_goes_on():
    def picky(n):
        if n == 3:
            raise ValueError("not three")
        return n

    pipeline = troupe.Pipeline("picky", error_policy="skip").input("n").callable("picky", picky).edge("n", "picky")
    with troupe.Host(quiet=True).add_pipeline(pipeline) as host:
        run = host.run("picky", feed={"n": range(6)}, outputs=["picky"])
        values = [v for _, v in run]
        summary = run.wait()
    assert values == [0, 1, 2, 4, 5]
    assert {n["id"]: n for n in summary["nodes"]}["picky"]["errors"] == 1


def test_an_awaited_output_given_up_on_is_not_lost():
    def numbers():
        time.sleep(0.3)
        yield from range(5)

    pipeline = troupe.Pipeline("late").input("n").callable("same", lambda n: n).edge("n", "same")

    async def main():
        with troupe.Host(quiet=True).add_pipeline(pipeline) as host:
            run = host.run("late", feed={"n": numbers()}, outputs=["same"])
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(anext(aiter(run)), 0.05)
            return [value async for _, value in run]

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_a_feed_faster_than_the_pipeline_waits_and_loses_nothing():
    def slow(n):
        time.sleep(0.002)
        return n

    pipeline = troupe.Pipeline("slow2").input("n").callable("slow", slow).edge("n", "slow")
    with troupe.Host(quiet=True).add_pipeline(pipeline) as host:
        run = host.run("slow2", feed={"n": range(300)}, outputs=["slow"])
        assert [v for _, v in run] == list(range(300))
