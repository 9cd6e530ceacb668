"""troupe: write Python extensions that a troupe host runs as supervised actors, and host
them from a Python program.

:class:`Host`, :class:`Pipeline` and friends need the ``troupe-actors`` package (the native
``troupe._host`` module); :func:`empty`, :func:`zeros`, :func:`pool_stats` and
:func:`slot_of` need numpy; :class:`CudaArray` exists only in a troupe built with CUDA.
"""

from collections.abc import Awaitable, Callable, Coroutine, Iterable
from types import ModuleType
from typing import Any, Literal, NotRequired, SupportsInt, TypedDict, final

import numpy.typing as npt

from ._hosting import AsyncHandle as AsyncHandle
from ._hosting import CallStream as CallStream
from ._hosting import ExtensionEvent as ExtensionEvent
from ._hosting import ExtensionEvents as ExtensionEvents
from ._hosting import ExtensionHandle as ExtensionHandle
from ._hosting import Host as Host
from ._hosting import SingletonHandle as SingletonHandle
from ._hosting import StreamHandle as StreamHandle
from .errors import ActorStoppedError as ActorStoppedError
from .errors import BadArgumentsError as BadArgumentsError
from .errors import CallCancelledError as CallCancelledError
from .errors import CallError as CallError
from .errors import CallTimeoutError as CallTimeoutError
from .errors import CrashedError as CrashedError
from .errors import HostLostError as HostLostError
from .errors import MailboxFullError as MailboxFullError
from .errors import ManifestError as ManifestError
from .errors import PermissionDeniedError as PermissionDeniedError
from .errors import PipelineError as PipelineError
from .errors import RemoteError as RemoteError
from .errors import RemoteExceptionError as RemoteExceptionError
from .errors import StartError as StartError
from .errors import TargetNotFoundError as TargetNotFoundError
from .errors import UnknownMethodError as UnknownMethodError
from .pipelines import Pipeline as Pipeline
from .pipelines import PipelineRun as PipelineRun

__all__ = [
    "ActorStoppedError",
    "AsyncHandle",
    "Audio",
    "BadArgumentsError",
    "CallCancelledError",
    "CallError",
    "CallStream",
    "CallTimeoutError",
    "CrashedError",
    "Extension",
    "ExtensionEvent",
    "ExtensionEvents",
    "ExtensionHandle",
    "Host",
    "HostArray",
    "HostLostError",
    "MailboxFullError",
    "ManifestError",
    "PermissionDeniedError",
    "Pipeline",
    "PipelineError",
    "PipelineRun",
    "RemoteError",
    "RemoteExceptionError",
    "SingletonHandle",
    "StartError",
    "StreamHandle",
    "Target",
    "TargetNotFoundError",
    "UnknownMethodError",
    "VideoFrame",
    "empty",
    "pool_stats",
    "slot_of",
    "extension",
    "host",
    "singleton",
    "zeros",
]

_PixelFormat = Literal["gray8", "rgb24", "rgba32", "yuv420p"]
_Hook = None | Awaitable[None]

# ---------------------------------------------------------------- writing extensions

class Extension:
    """Base class of an extension: subclass it in the extension's module.

    Public methods (no leading underscore, not a hook) are what the host may call; each may
    be ``def`` (runs on the main thread, one at a time) or ``async def`` (runs on the
    extension's asyncio loop). The hooks run in the order ``before_module_loaded``,
    ``on_module_loaded``, ``initialize`` (then calls), ``prepare_shutdown``; each may be
    ``def`` or ``async def``. The class is created without arguments.
    """

    def before_module_loaded(self) -> _Hook:
        """Runs first, once the instance exists."""

    def on_module_loaded(self, module: ModuleType) -> _Hook:
        """Runs second, with the extension's imported module."""

    def initialize(self) -> _Hook:
        """Runs last before the host may call: open resources here."""

    def prepare_shutdown(self) -> _Hook:
        """Runs when the host stops the extension, before the process exits."""

class _AsyncTarget:
    """The awaitable form of a :class:`Target` (its ``aio`` attribute; at run time the
    class ``troupe.calls.AsyncTarget``)."""

    def __init__(
        self, kind: Literal["host", "singleton", "extension"], name: str | None = None
    ) -> None: ...
    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Calls ``method`` and awaits its answer; cancelling the await cancels the call."""

    def __getattr__(self, method: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        """``target.aio.method``: an ``async`` function calling ``method``."""

class Target:
    """Something an extension can call: ``target.method(...)`` blocks for the answer,
    ``await target.aio.method(...)`` awaits it. ``target.call("name", ...)`` and
    ``await target.aio.call("name", ...)`` reach any method name. Errors raise
    :class:`CallError` subclasses."""

    #: The awaitable form of this target.
    aio: _AsyncTarget
    def __init__(
        self, kind: Literal["host", "singleton", "extension"], name: str | None = None
    ) -> None: ...
    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Calls ``method`` and blocks until it answers."""

    def __getattr__(self, method: str) -> Callable[..., Any]:
        """``target.method``: a function calling ``method`` and blocking for its answer."""

#: The host program (from an extension).
host: Target

def singleton(name: str) -> Target:
    """The singleton registered under ``name`` on the host (from an extension)."""

def extension(name: str) -> Target:
    """Another extension of the same host, by name (where the manifest grants it)."""

# ---------------------------------------------------------------- values

class Audio:
    """Interleaved samples shaped ``[frames, channels]`` (or ``[frames]`` when mono),
    ``float32`` or ``int16``, with their rate, channel count and start time. Received from
    the host, ``samples`` is a read-only numpy view of shared memory (a
    :class:`HostArray` in a venv without numpy)."""

    samples: npt.NDArray[Any]
    sample_rate: int
    channels: int
    timestamp_ns: int
    def __init__(
        self,
        samples: Any,
        sample_rate: SupportsInt,
        channels: SupportsInt | None = None,
        timestamp_ns: SupportsInt = 0,
    ) -> None:
        """``samples``: a numpy array (or an array troupe takes: DLPack, ``HostArray``);
        ``channels`` defaults to the second dimension of ``samples`` (1 when 1-D)."""

    @property
    def frames(self) -> int:
        """Samples per channel."""

    @property
    def duration(self) -> float:
        """How long the chunk plays, in seconds."""

class VideoFrame:
    """``uint8`` pixels in a format (``"gray8"``, ``"rgb24"``, ``"rgba32"`` or
    ``"yuv420p"``), with the frame's size and presentation time."""

    pixels: npt.NDArray[Any]
    width: int
    height: int
    format: _PixelFormat
    timestamp_ns: int
    def __init__(
        self,
        pixels: Any,
        width: SupportsInt,
        height: SupportsInt,
        format: _PixelFormat = "rgb24",
        timestamp_ns: SupportsInt = 0,
    ) -> None:
        """Raises ``ValueError`` for an unknown ``format``."""

@final
class HostArray:
    """A CPU array the host sent, in a venv without numpy (not constructible from Python).
    ``__dlpack__`` hands the consumer a private, writable copy (``torch.from_dlpack``);
    sent back, it travels as the array it is, without a copy."""

    def __dlpack__(self, stream: Any = None, **options: Any) -> Any:
        """A DLPack capsule of a private copy of the array."""

    def __dlpack_device__(self) -> tuple[int, int]:
        """``(kDLCPU, 0)``."""

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape in elements."""

    @property
    def dtype(self) -> str:
        """The numpy name of the element type (``"float32"``)."""

    @property
    def nbytes(self) -> int:
        """Size in bytes."""

    def tobytes(self) -> bytes:
        """The elements' bytes, C order, little-endian."""

@final
class CudaArray:
    """A CUDA array the host sent, mapped into this process (only in a troupe built with
    CUDA; not constructible from Python). ``__cuda_array_interface__`` (v3) and DLPack let
    torch, cupy or numba use it in place (``torch.as_tensor``, ``torch.from_dlpack``,
    ``cupy.asarray``)."""

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        """The CUDA array interface, version 3 (no stream: the data is ready)."""

    def __dlpack__(self, stream: Any = None, **options: Any) -> Any:
        """A DLPack capsule of the array (no copy; ``copy=True`` is refused)."""

    def __dlpack_device__(self) -> tuple[int, int]:
        """``(kDLCUDA, device)``."""

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape in elements."""

    @property
    def dtype(self) -> str:
        """The numpy name of the element type (``"float32"``)."""

    @property
    def device(self) -> int:
        """The CUDA device ordinal."""

    @property
    def nbytes(self) -> int:
        """Size in bytes."""

    @property
    def ptr(self) -> int:
        """The device address of the first byte."""

class _CudaStats(TypedDict):
    #: CUDA arrays sent to the host and not yet released by it.
    exported: int
    #: Whether a CUDA driver is here that this build can use.
    driver: bool
    #: Driver calls that failed while freeing or releasing CUDA memory (each also logged):
    #: anything but 0 means leaked memory, a mapping left open or a context not restored.
    teardown_errors: int

def cuda_stats() -> _CudaStats:
    """This extension's CUDA exports (in an extension's child only)."""

# ---------------------------------------------------------------- shared-memory pool

class _PoolStats(TypedDict):
    live_slots: int
    live_bytes: int
    regions: int
    region_bytes: int
    #: In an extension's child only: slots of this pool the host holds.
    lent: NotRequired[int]
    #: In an extension's child only: releases of the host's slots not yet sent.
    owed: NotRequired[int]
    #: In an extension's child only: frames / bytes waiting for the host to make room.
    queued_frames: NotRequired[int]
    queued_bytes: NotRequired[int]

def empty(shape: int | Iterable[SupportsInt], dtype: npt.DTypeLike = ...) -> npt.NDArray[Any]:
    """A writable array in this process's shared-memory pool, like ``numpy.empty`` (its
    bytes are unspecified): sent to the host without a copy. ``dtype`` defaults to
    ``float``."""

def zeros(shape: int | Iterable[SupportsInt], dtype: npt.DTypeLike = ...) -> npt.NDArray[Any]:
    """A writable array in the pool, like ``numpy.zeros`` (``dtype`` defaults to
    ``float``)."""

def pool_stats() -> _PoolStats:
    """This process's pool counters."""

def slot_of(array: object) -> tuple[int, int, bool] | None:
    """``(region id, offset, local)`` of the pool slot ``array`` starts at, or ``None``."""

def _native_module() -> Any:
    """The native module of this process (``troupe._native`` or ``troupe._host``)."""
