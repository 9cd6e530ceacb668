"""Calls from a Python host: blocking and awaited, errors, timeouts, callbacks."""

import asyncio
import time

import pytest

import troupe


def test_a_blocking_call_returns_the_value(host):
    assert host["probe"].echo(1, "two", [3.0], x={"y": None}) == {
        "args": [1, "two", [3.0]],
        "kwargs": {"x": {"y": None}},
    }


def test_awaited_calls_run_concurrently_without_blocking_the_loop(host):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.create_task(ticker())
        began = time.monotonic()
        naps = await asyncio.gather(*[host["probe"].aio.nap(0.3) for _ in range(5)])
        elapsed = time.monotonic() - began
        tick.cancel()
        return naps, elapsed, ticks

    naps, elapsed, ticks = asyncio.run(main())
    assert naps == [0.3] * 5
    # Five 0.3 s naps overlap in the child's loop, and the host's loop kept ticking.
    assert elapsed < 1.2
    assert ticks >= 10


def test_an_exception_in_the_extension_raises_with_its_type_and_traceback(host):
    with pytest.raises(troupe.RemoteExceptionError) as raised:
        host["probe"].fail("no such thing")
    error = raised.value
    assert isinstance(error, troupe.CallError)
    assert error.type_name == "ValueError"
    assert error.remote_message == "no such thing"
    assert "in fail" in error.remote_traceback


def test_an_unknown_method_is_a_typed_error(host):
    with pytest.raises(troupe.UnknownMethodError) as raised:
        host["probe"].no_such_method()
    assert raised.value.method == "no_such_method"


def test_a_value_that_cannot_cross_names_where_it_sits(host):
    with pytest.raises(TypeError, match=r"args\[0\]\['x'\]"):
        host["probe"].echo({"x": object()})


def test_a_call_past_its_deadline_times_out_and_later_calls_work(host):
    probe = host["probe"].with_timeout(0.2)
    began = time.monotonic()
    with pytest.raises(troupe.CallTimeoutError) as raised:
        probe.sleep(0.6)
    assert time.monotonic() - began < 0.5
    assert raised.value.seconds == pytest.approx(0.2)
    # The hung call is cancelled (or its child restarted): the next call is answered.
    assert host["probe"].echo("after") == {"args": ["after"], "kwargs": {}}


def test_cancelling_an_await_cancels_the_call(host):
    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(host["probe"].aio.nap(5.0), 0.2)
        return await host["probe"].aio.echo("next")

    assert asyncio.run(main()) == {"args": ["next"], "kwargs": {}}


def test_extensions_call_the_hosts_service_and_python_singletons(host):
    probe = host["probe"]
    assert probe.ask_host("upper", "shout") == "SHOUT"
    assert probe.ask_singleton("store", "incr", "hits") == 1
    assert probe.ask_singleton("store", "incr", "hits") == 2
    assert probe.ask_singleton("store", "slow_get", "hits") == 2
    assert host.singleton("store").get("hits") == 2
    assert asyncio.run(probe.aio.ask_host_async("upper", "quiet")) == "QUIET"


def test_an_ungranted_singleton_is_refused(host):
    with pytest.raises(troupe.RemoteExceptionError, match="PermissionDenied|may not call"):
        host["probe"].ask_singleton("nobody", "get", "x")


def test_calls_recurse_host_extension_host(host):
    # host -> probe.down(6) -> host.down(5) -> probe.down(4) -> ... -> 0
    assert host["probe"].down(6) == 6


def test_a_host_service_error_reaches_the_extension_as_its_exception(host):
    with pytest.raises(troupe.RemoteExceptionError, match="UnknownMethod|unknown method"):
        host["probe"].ask_host("no_such_service_method")


def test_status_and_methods_describe_the_running_extension(host):
    probe = host["probe"]
    assert probe.status()["state"] == "running"
    assert "echo" in probe.methods
    assert probe.pid == probe.call("pid")
    assert "probe" in host.extensions


def test_an_unknown_extension_is_a_key_error_naming_the_known_ones(host):
    with pytest.raises(KeyError, match="probe"):
        host["nope"]


def test_a_timeout_out_of_range_is_refused(host):
    with pytest.raises(ValueError, match="timeout"):
        host["probe"].with_timeout(2.0**63).noop()
    with pytest.raises(ValueError, match="timeout"):
        host["probe"].with_timeout(-1).noop()


def test_a_singleton_whose_exception_cannot_be_described_keeps_serving(host):
    with pytest.raises(troupe.RemoteExceptionError):
        host["probe"].ask_singleton("store", "explode")
    host.singleton("store").put("still", "here")
    assert host["probe"].ask_singleton("store", "get", "still") == "here"


def test_a_generator_method_streams_its_items_blocking_and_awaited(host):
    probe = host["probe"]
    assert list(probe.stream.count(5)) == [0, 1, 2, 3, 4]

    async def main():
        return [item async for item in probe.stream.count_async(5)]

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_a_stream_yields_its_items_then_raises_the_generators_error(host):
    items = []
    with pytest.raises(troupe.RemoteExceptionError) as raised:
        for item in host["probe"].stream.count_then_fail(3):
            items.append(item)
    assert items == [0, 1, 2]
    assert raised.value.type_name == "ValueError"


def test_a_slow_reader_holds_the_generator_back(host):
    probe = host["probe"]
    with probe.stream.count(10_000) as items:
        first = next(iter(items))
        time.sleep(0.5)
        ahead = probe.counted_so_far()
    assert first == 0
    # The credit window (16) bounds how far the generator runs ahead, not the 10 000.
    assert 1 <= ahead <= 40


def test_closing_a_stream_stops_the_generator(host):
    probe = host["probe"]
    items = probe.stream.count(1_000_000, 0.001)
    reader = iter(items)
    assert [next(reader) for _ in range(3)] == [0, 1, 2]
    assert not probe.count_was_closed()
    items.close()
    assert list(reader) == []
    deadline = time.monotonic() + 10
    while not probe.count_was_closed() and time.monotonic() < deadline:
        time.sleep(0.02)
    # The generator was closed at a yield (GeneratorExit), not left waiting for credit.
    assert probe.count_was_closed()


def test_two_async_readers_of_one_stream_share_its_items():
    pipeline = troupe.Pipeline("shared").input("n").callable("same", lambda n: n).edge("n", "same")

    async def main():
        with troupe.Host(quiet=True).add_pipeline(pipeline) as host:
            run = host.run("shared", feed={"n": range(200)}, outputs=["same"])

            async def read():
                return [value async for _, value in run]

            return await asyncio.gather(read(), read())

    first, second = asyncio.run(main())
    assert sorted(first + second) == list(range(200))
