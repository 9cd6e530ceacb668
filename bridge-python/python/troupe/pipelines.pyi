"""Pipelines from Python: described in a manifest or in code, fed from Python, read back as
their outputs come (see :meth:`troupe.Host.run`)."""

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Literal, Self, TypedDict

__all__ = ["Pipeline", "PipelineRun"]

_ErrorPolicy = Literal["fail", "skip", "fail_pipeline", "skip_item"]
_EdgePolicy = Literal["backpressure", "drop_oldest", "drop_newest"]

class _NodeSummary(TypedDict):
    id: str
    type: str
    items_in: int
    items_out: int
    errors: int
    restarts: int
    lost: int

class _RunSummary(TypedDict):
    """What :meth:`PipelineRun.wait` returns."""

    #: Why the run failed (a ``Cancelled`` error after ``cancel()``), else ``None``.
    error: str | None
    wall_time_s: float
    nodes: list[_NodeSummary]
    #: The summary as text.
    text: str

class Pipeline:
    """A pipeline described in code: built-in nodes (``troupe nodes`` lists them), methods
    of extensions, Python callables run in the host process, inputs fed from Python, and
    the edges between them. Every builder method returns the pipeline. Add it to a host
    with :meth:`Host.add_pipeline` before ``start()``, then run it with :meth:`Host.run`."""

    name: str
    def __init__(
        self,
        name: str = "main",
        *,
        error_policy: _ErrorPolicy | None = None,
        capacity: int | None = None,
        restart: Mapping[str, Any] | None = None,
    ) -> None:
        """``error_policy``: the default of every node; ``capacity``: each node's mailbox;
        ``restart``: how nodes that panic are made anew (a dict as in a manifest:
        ``{"policy": "permanent", "max_restarts": 3, "within_s": 10}``)."""

    def input(self, id: str) -> Self:
        """A source fed from Python (``host.run(..., feed={id: items})``)."""

    def node(
        self,
        id: str,
        type: str,
        *,
        capacity: int | None = None,
        error_policy: _ErrorPolicy | None = None,
        **params: Any,
    ) -> Self:
        """A built-in node of ``type`` (e.g. ``"audio.vad"``) with ``params``."""

    def extension(
        self,
        id: str,
        extension: str,
        method: str,
        *,
        flush: bool | None = None,
        generator: bool | None = None,
        capacity: int | None = None,
        error_policy: _ErrorPolicy | None = None,
        **params: Any,
    ) -> Self:
        """A node calling ``method`` of ``extension`` for each item; ``params`` go to each
        call as keyword arguments."""

    def callable(self, id: str, fn: Callable[[Any], Any]) -> Self:
        """A node run in the host process: ``fn(item)`` returns one output, ``None`` for
        none, or is a generator yielding several; ``async def`` functions are awaited on
        the host's loop. Calls are made one at a time, in order."""

    def edge(
        self,
        from_: str,
        to: str,
        *,
        policy: _EdgePolicy | None = None,
        capacity: int | None = None,
    ) -> Self:
        """An edge ``from_`` -> ``to`` (``policy`` defaults to ``"backpressure"``)."""

class PipelineRun:
    """A running pipeline (made by :meth:`Host.run`). Iterate it (``for node, value in
    run``, or ``async for``) for its outputs as they come, ``interrupt()`` it, ``cancel()``
    it, ``wait()`` for its summary. As a context manager it waits on exit (cancelling
    first if the block raised)."""

    def __init__(self, native: Any, feeders: list[Any], workers: list[Any]) -> None: ...
    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """``(node, value)`` for each output, blocking for the next; ends with the run."""

    def __aiter__(self) -> AsyncIterator[tuple[str, Any]]:
        """``(node, value)`` for each output, awaited."""

    def interrupt(self) -> int:
        """Interrupts every node (ahead of queued data); returns how many took it."""

    def cancel(self) -> None:
        """Ends the run early (it ends with a ``Cancelled`` error in its summary)."""

    def wait(self) -> _RunSummary:
        """Waits for the end and returns the summary; outputs not read by then are
        dropped."""

    async def wait_async(self) -> _RunSummary:
        """:meth:`wait`, awaited (on a worker thread)."""

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
