"""Pipelines from Python: described in a manifest or in code, fed from Python, read back as
their outputs come.

::

    pipeline = (
        troupe.Pipeline("speech")
        .input("audio")
        .node("resample", "audio.resample", rate=16000)
        .node("vad", "audio.vad", events=True)
        .callable("label", lambda event: event.get("event"))
        .edge("audio", "resample").edge("resample", "vad").edge("vad", "label")
    )
    with troupe.Host().add_pipeline(pipeline) as host:   # added before start
        run = host.run("speech", feed={"audio": chunks}, outputs=["label"])
        for node, label in run:
            ...

Items fed to an input wait in a bounded queue (32); past it the feeder waits, so a slow
pipeline holds its feeder back, as a slow node holds back its upstream. Outputs wait for the
program in a bounded queue (256) the same way.
"""

import asyncio
import inspect
import threading

from . import _host
from ._hosting import _END, _AwaitedRead, _start_worker

__all__ = ["Pipeline", "PipelineRun"]


class Pipeline:
    """A pipeline described in code: built-in nodes (``troupe nodes`` lists them), methods
    of extensions, Python callables run in the host process, inputs fed from Python, and
    the edges between them. Add it to a host with :meth:`Host.add_pipeline` before
    ``start()``, then run it with :meth:`Host.run`."""

    __module__ = "troupe"

    def __init__(self, name="main", *, error_policy=None, capacity=None, restart=None):
        """``error_policy``: ``"fail"`` or ``"skip"`` (the default for every node);
        ``capacity``: each node's mailbox; ``restart``: how nodes that panic are made anew
        (a policy name, or a dict as in a manifest)."""
        self.name = name
        if isinstance(restart, str):
            restart = {"policy": restart}
        self._options = {"error_policy": error_policy, "capacity": capacity, "restart": restart}
        self._nodes = []
        self._edges = []
        self._inputs = []
        self._callables = {}

    def _taken(self, id):
        ids = {n["id"] for n in self._nodes} | set(self._inputs) | set(self._callables)
        if id in ids:
            raise ValueError(f"pipeline {self.name!r}: node id {id!r} is used twice")

    def input(self, id):
        """A source fed from Python (``host.run(..., feed={id: items})``)."""
        self._taken(id)
        self._inputs.append(id)
        return self

    def node(self, id, type, *, capacity=None, error_policy=None, **params):
        """A built-in node of ``type`` (e.g. ``"audio.vad"``) with ``params``."""
        self._taken(id)
        self._nodes.append(
            {
                "id": id,
                "type": type,
                "params": params,
                "capacity": capacity,
                "error_policy": error_policy,
            }
        )
        return self

    def extension(self, id, extension, method, *, flush=None, generator=None, capacity=None,
                  error_policy=None, concurrency=None, **params):
        """A node calling ``method`` of ``extension`` for each item (its process runs in
        the extension's venv); ``params`` go to each call as keyword arguments.
        ``concurrency`` calls may be in flight at once (outputs keep the input order)."""
        self._taken(id)
        self._nodes.append(
            {
                "id": id,
                "type": "python",
                "extension": extension,
                "method": method,
                "flush": flush,
                "generator": generator,
                "concurrency": concurrency,
                "params": params,
                "capacity": capacity,
                "error_policy": error_policy,
            }
        )
        return self

    def callable(self, id, fn):
        """A node run in the host process: ``fn(item)`` returns one output, ``None`` for
        none, or is a generator yielding several; ``async def`` functions are awaited on
        the host's loop. Calls are made one at a time, in order."""
        self._taken(id)
        if not callable(fn):
            raise TypeError(f"pipeline {self.name!r}: node {id!r}: {fn!r} is not callable")
        self._callables[id] = fn
        return self

    def edge(self, from_, to, *, policy=None, capacity=None):
        """An edge ``from_`` -> ``to``; ``policy`` is ``"backpressure"`` (the default),
        ``"drop_oldest"`` or ``"drop_newest"``."""
        self._edges.append({"from": from_, "to": to, "policy": policy, "capacity": capacity})
        return self

    def _description(self):
        """The manifest's table for this pipeline: inputs are ``host.input`` nodes and
        callables ``host.node`` nodes, which the runtime supplies."""
        nodes = [{"id": id, "type": "host.input"} for id in self._inputs]
        nodes += [{k: v for k, v in n.items() if v is not None and v != {}} for n in self._nodes]
        nodes += [{"id": id, "type": "host.node"} for id in self._callables]
        edges = [{k: v for k, v in e.items() if v is not None} for e in self._edges]
        description = {k: v for k, v in self._options.items() if v is not None}
        description["nodes"] = nodes
        description["edges"] = edges
        return description

    def __repr__(self):
        return f"<troupe.Pipeline {self.name!r}>"


class _CallableNode:
    """A Python callable served as a node: ``process(item)`` answers its list of outputs."""

    def __init__(self, fn):
        self._fn = fn
        if inspect.iscoroutinefunction(fn):
            self.process = self._process_async

    @staticmethod
    def _outputs(result):
        if result is None:
            return []
        if inspect.isgenerator(result):
            return list(result)
        return [result]

    def process(self, item):
        return self._outputs(self._fn(item))

    async def _process_async(self, item):
        return self._outputs(await self._fn(item))


def _add(host, pipeline):
    if not isinstance(pipeline, Pipeline):
        raise TypeError(f"add_pipeline takes a troupe.Pipeline, not {type(pipeline).__name__}")
    host._native.add_pipeline(pipeline.name, pipeline._description())
    if not hasattr(host, "_pipelines"):
        host._pipelines = {}
    host._pipelines[pipeline.name] = pipeline


def _feed_sync(items, input):
    try:
        for item in items:
            if not input.send(item):
                return
    finally:
        input.close()


async def _feed_async(items, input):
    try:
        async for item in items:
            if not input.try_send(item) and not await asyncio.to_thread(input.send, item):
                return
    finally:
        input.close()


def _run(host, pipeline, feed, outputs):
    code = None
    if isinstance(pipeline, Pipeline):
        code, name = pipeline, pipeline.name
    elif pipeline is None:
        names = host._native.pipeline_names()
        if len(names) != 1:
            raise ValueError(f"name the pipeline to run: the host has {names}")
        name = names[0]
    else:
        name = pipeline
    code = getattr(host, "_pipelines", {}).get(name, code)
    inputs = list(code._inputs) if code is not None else []
    inputs += [id for id in feed if id not in inputs]
    callables = dict(code._callables) if code is not None else {}
    native, fed, queues = _host.PipelineRun.start(host._native, name, inputs, outputs)
    missing = set(queues) - set(callables)
    if missing:
        native.cancel()
        raise ValueError(f"pipeline {name!r}: no callable for host.node nodes {sorted(missing)}")
    workers = [_start_worker(_CallableNode(callables[id]), q, id) for id, q in queues.items()]
    feeders = []
    for id, input in fed.items():
        items = feed.get(id)
        if items is None:
            input.close()
        elif hasattr(items, "__aiter__"):
            feeders.append(asyncio.get_running_loop().create_task(_feed_async(items, input)))
        else:
            thread = threading.Thread(
                target=_feed_sync, args=(items, input), name=f"troupe-feed-{id}", daemon=True
            )
            thread.start()
            feeders.append(thread)
    return PipelineRun(native, feeders, workers)


class PipelineRun:
    """A running pipeline. Iterate it (``for node, value in run``, or ``async for``) for its
    outputs as they come, ``interrupt()`` it (barge-in: an interrupt goes to every node
    ahead of its data), ``cancel()`` it, ``wait()`` for its summary."""

    __module__ = "troupe"

    def __init__(self, native, feeders, workers):
        self._native = native
        self._feeders = feeders
        self._workers = workers
        self._awaited = _AwaitedRead(native.next_async)

    def __iter__(self):
        if self._awaited.pending:
            raise RuntimeError(
                "an `async for` over this run was given up on while awaiting an output: "
                "read the rest with `async for` (that output comes first)"
            )
        while True:
            item = self._native.next()
            if item is None:
                return
            yield tuple(item)

    async def _outputs(self):
        while True:
            item = await self._awaited.next()
            if item is _END:
                return
            yield tuple(item)

    def __aiter__(self):
        return self._outputs()

    def interrupt(self):
        """Interrupts every node (ahead of queued data); returns how many took it."""
        return self._native.interrupt()

    def cancel(self):
        """Ends the run early (it ends with a ``Cancelled`` error in its summary)."""
        self._native.cancel()

    def wait(self):
        """Waits for the end and returns the summary: ``{"error", "wall_time_s", "nodes":
        [{"id", "type", "items_in", "items_out", "errors", "restarts", "lost"}], "text"}``.
        Outputs not read by then are dropped."""
        return self._native.wait()

    async def wait_async(self):
        """:meth:`wait`, awaited (on a worker thread)."""
        return await asyncio.to_thread(self._native.wait)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.cancel()
        self.wait()
        return False
