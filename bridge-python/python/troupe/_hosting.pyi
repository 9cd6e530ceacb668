"""troupe for Python programs: host extensions, serve singletons, call them (the Python
half of :class:`troupe.Host`; the native half is ``troupe._host``)."""

import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from types import TracebackType
from typing import Any, Literal, Self, TypedDict, overload

from .pipelines import Pipeline, PipelineRun

__all__ = [
    "AsyncHandle",
    "CallStream",
    "ExtensionEvent",
    "ExtensionEvents",
    "ExtensionHandle",
    "Host",
    "SingletonHandle",
    "StreamHandle",
]

_StrPath = str | os.PathLike[str]
_RestartPolicy = Literal["permanent", "transient", "temporary"]
_SandboxLevel = Literal["off", "default", "strict"]

class _ExtensionStatus(TypedDict):
    """What :meth:`ExtensionHandle.status` returns."""

    state: Literal["running", "starting", "restarting", "stopped", "gave_up"]
    #: The running instance's number (1 for the first), 0 when none runs.
    instance: int
    restarts: int
    #: How the last instance ended, in words, if one did.
    last_exit: str | None

class AsyncHandle:
    """The awaitable form of a handle (its ``aio`` attribute): ``await handle.aio.m(...)``.
    Cancelling the await cancels the call."""

    def __init__(self, target: Any, timeout: float | None = None) -> None: ...
    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Calls ``method`` and awaits its answer."""

    def __getattr__(self, method: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        """``handle.aio.method``: an ``async`` function calling ``method``."""

class CallStream:
    """The items of a streaming call (a generator method's), each as it is yielded; the
    generator runs at most 16 items ahead of the reader; an error raises its
    ``CallError`` class and ends the stream. The call starts at the first read; ``close()``
    (or leaving ``with``) abandons it."""

    def __iter__(self) -> Iterator[Any]: ...
    def __aiter__(self) -> AsyncIterator[Any]: ...
    def close(self) -> None:
        """Abandons the call: the generator stops at its next ``yield``."""

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...

class StreamHandle:
    """The streaming form of a handle (its ``stream`` attribute):
    ``for item in handle.stream.m(...)``."""

    def __init__(self, target: Any, timeout: float | None = None) -> None: ...
    def call(self, method: str, /, *args: Any, **kwargs: Any) -> CallStream:
        """Calls ``method`` for a stream of items."""

    def __getattr__(self, method: str) -> Callable[..., CallStream]:
        """``handle.stream.method``: a function returning the call's :class:`CallStream`."""

class _Handle:
    """What :class:`ExtensionHandle` and :class:`SingletonHandle` share."""

    #: The awaitable form of this handle.
    aio: AsyncHandle
    #: The streaming form of this handle (generator methods).
    stream: StreamHandle
    def __init__(self, target: Any, timeout: float | None = None) -> None: ...
    @property
    def name(self) -> str:
        """The target's name."""

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Calls ``method`` and blocks (without the GIL) for its answer."""

    def with_timeout(self, seconds: float | None) -> Self:
        """The same target, with a deadline of ``seconds`` for every call made through it
        (``None``: the target's default); past it a call raises ``CallTimeoutError``."""

    def __getattr__(self, method: str) -> Callable[..., Any]:
        """``handle.method``: a function calling ``method`` and blocking for its answer."""

class ExtensionHandle(_Handle):
    """A running extension: ``ext.method(...)`` blocks for the answer,
    ``await ext.aio.method(...)`` awaits it. Errors raise ``CallError`` subclasses."""

    @property
    def pid(self) -> int | None:
        """The running child's process id, or ``None`` while none runs."""

    @property
    def methods(self) -> list[str] | None:
        """The methods the running extension offers, or ``None`` while none runs."""

    def status(self) -> _ExtensionStatus:
        """Where the extension's supervisor stands."""

    def events(self) -> ExtensionEvents:
        """The extension's supervision events from now on."""

class ExtensionEvent:
    """Something an extension's supervisor did (see ``kind``)."""

    kind: Literal["started", "exited", "restarting", "stopped", "gave_up", "missed"]
    extension: str | None
    #: ``started``: the instance's number, from 1.
    instance: int | None
    #: ``restarting``: restarts in the window, this one included; ``gave_up``: restarts made.
    attempt: int | None
    #: ``restarting``: the backoff before the next instance.
    delay_s: float | None
    #: ``exited`` and ``gave_up``: how the (last) instance ended, in words.
    reason: str | None
    exit_code: int | None
    signal: int | None
    #: ``missed``: how many events this reader fell behind by (they were dropped for it).
    missed: int | None
    def __init__(
        self,
        kind: str,
        extension: str | None = None,
        instance: int | None = None,
        attempt: int | None = None,
        delay_s: float | None = None,
        reason: str | None = None,
        exit_code: int | None = None,
        signal: int | None = None,
        missed: int | None = None,
    ) -> None: ...

class ExtensionEvents:
    """A subscription to one extension's events: iterate it (blocking or ``async for``);
    iteration ends after the extension is done for good (``stopped`` or ``gave_up``)."""

    def next(self, timeout: float | None = None) -> ExtensionEvent | None:
        """The next event, or ``None`` when ``timeout`` passes first or none can come."""

    def __iter__(self) -> Iterator[ExtensionEvent]: ...
    def __aiter__(self) -> AsyncIterator[ExtensionEvent]: ...

class SingletonHandle(_Handle):
    """A singleton of the host, called from the host program."""

class Host:
    """Extensions (each a child process in its own venv) and singletons of a Python
    program. ``with troupe.Host(...) as host:`` starts it (if not started) and shuts it
    down on exit; ``host["name"]`` is ``host.extension("name")``."""

    def __init__(
        self,
        manifest: _StrPath | None = None,
        *,
        singletons: Mapping[str, object] | None = None,
        service: object | None = None,
        quiet: bool = False,
    ) -> None:
        """``manifest``: a TOML file (its extensions, singletons and pipelines);
        ``singletons``: ``{name: object}`` served to extensions that are granted them;
        ``service``: an object serving ``troupe.host.method(...)`` calls from extensions;
        ``quiet``: no venv progress lines on stderr."""

    def add_extension(
        self,
        name: str,
        module: str,
        *,
        path: _StrPath | None = None,
        cls: str | None = None,
        dependencies: Iterable[str] | None = None,
        pyproject: _StrPath | None = None,
        python: _StrPath | None = None,
        system_site_packages: bool | None = None,
        restart: _RestartPolicy | Mapping[str, Any] | None = None,
        memory_limit_mb: int | None = None,
        call_timeout_ms: int | None = None,
        start_timeout_ms: int | None = None,
        cancel_grace_ms: int | None = None,
        sandbox: _SandboxLevel | Mapping[str, Any] | None = None,
        singletons: Iterable[str] = (),
        extensions: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> Self:
        """Adds extension ``name``: the ``Extension`` subclass in ``module`` (found on
        ``path``; ``cls`` names it when the module has several), in a venv with
        ``dependencies``. The options are the manifest's keys: ``restart`` is a policy name
        or a dict (``{"policy": ..., "max_restarts": 3, "within_s": 30}``); ``sandbox`` a
        level name or a dict; ``singletons`` and ``extensions`` are what it is granted to
        call. Raises ``ManifestError`` for a bad option. On a running host it starts at
        once and this returns when it runs (or raises ``StartError``)."""

    def stop_extension(self, name: str) -> bool:
        """Stops extension ``name`` gracefully and forgets it; returns whether it ran."""

    @overload
    def add_singleton(self, name: str, obj: object, *, kind: None = None) -> Self:
        """Adds singleton ``name`` served by the Python object ``obj`` (its public
        methods; ``def`` ones run one at a time, in order, ``async def`` ones on the host's
        loop)."""

    @overload
    def add_singleton(self, name: str, obj: None = None, *, kind: str, **params: Any) -> Self:
        """Adds singleton ``name`` of a built-in ``kind`` (``"kv"``) with ``params``."""

    def add_pipeline(self, pipeline: Pipeline) -> Self:
        """Adds a :class:`Pipeline` described in code (before ``start()``)."""

    def start(self) -> Self:
        """Builds every venv (cached), starts the singletons and extensions and waits for
        their start-up hooks; raises ``StartError`` (after stopping the rest) if one does
        not come up."""

    def extension(self, name: str) -> ExtensionHandle:
        """The running extension ``name`` (``KeyError`` if there is none)."""

    def __getitem__(self, name: str) -> ExtensionHandle:
        """``host[name]``: :meth:`extension`."""

    def singleton(self, name: str) -> SingletonHandle:
        """Singleton ``name``, to call from the host program (``KeyError`` if none)."""

    @property
    def extensions(self) -> list[str]:
        """The names of the running extensions."""

    @property
    def running(self) -> bool:
        """Whether the host runs."""

    def run(
        self,
        pipeline: str | Pipeline | None = None,
        *,
        feed: Mapping[str, Iterable[Any] | AsyncIterable[Any]] | None = None,
        outputs: Iterable[str] = (),
    ) -> PipelineRun:
        """Starts a pipeline (a name of the manifest's, a :class:`Pipeline` added with
        ``add_pipeline``, or ``None`` for the only one): ``feed`` maps input ids to
        iterables (or async iterables, which need a running event loop) of items,
        ``outputs`` names the nodes whose outputs come back."""

    def shutdown(self) -> None:
        """Stops every extension gracefully and waits for their processes to end."""

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
