"""troupe: write Python extensions that a troupe host runs as supervised actors, and host
them from a Python program.

Hosting (with the ``troupe-actors`` package installed): :class:`Host` loads extensions from a
manifest or from Python, each in its own process and venv, calls them blocking
(``host["stats"].describe()``) or awaited (``await host["stats"].aio.describe()``), serves
Python objects to them as singletons, and runs pipelines (:class:`Pipeline`) fed from Python.
:mod:`troupe.testing` runs an extension in-process, without a host, for unit tests.

Writing extensions:

Each extension runs in its own process, inside its own virtualenv, connected to the host
(a Rust program) by a socket pair it inherits when the host starts it. Subclass :class:`Extension`; its public methods (no
leading underscore, not a lifecycle hook) are what the host may call, ``def`` or
``async def``::

    import troupe

    class Greeter(troupe.Extension):
        def initialize(self):
            self.greeting = troupe.singleton("config").get("greeting")

        def greet(self, name):
            return f"{self.greeting}, {name}"

        async def shout(self, name):
            return (await troupe.host.aio.upper(name)) + "!"

Start-up order (the host starts the child as ``python -m troupe``):

1. the directories of ``StartInfo.sys_path`` go in front of ``sys.path``;
2. the extension's module is imported;
3. its :class:`Extension` subclass is found (the one ``StartInfo.class`` names, else the
   only subclass defined in the module);
4. an instance is created (no arguments);
5. ``before_module_loaded()``;
6. ``on_module_loaded(module)``;
7. ``initialize()``;
8. the host is told ``Started`` with the public methods; calls may come from then on.

A failure in any step reaches the host as ``StartFailed`` (type, message, traceback) and the
child exits. On ``Shutdown``, ``prepare_shutdown()`` runs, the host is told
``ShutdownDone`` and the child exits. Every hook may be ``def`` or ``async def``.

Threads: the main thread receives from the host and runs ``def`` methods inline, one at a
time; ``async def`` methods and hooks run on one asyncio loop in a second thread.

Calling out: ``troupe.host.method(...)`` blocks, ``await troupe.host.aio.method(...)``
awaits; the same for ``troupe.singleton("name")`` and ``troupe.extension("name")``. While a
``def`` method waits on the main thread, calls that arrive are served inline, so
host -> extension -> host -> extension chains do not deadlock. A blocking call on the
asyncio thread is refused (use the ``aio`` form there).

Values: None, bool, int (64-bit), float, str, bytes/bytearray/memoryview, list/tuple,
dict with str keys, numpy arrays and scalars, :class:`Audio`, :class:`VideoFrame`. Arrays
from the host arrive as read-only numpy views of shared memory (no copy);
``troupe.empty(shape, dtype)`` / ``troupe.zeros(shape, dtype)`` make arrays in shared memory
that go back to the host without a copy (see :mod:`troupe.pool`). A torch CPU tensor (any
object with ``__dlpack__`` on the CPU) is taken as a numpy view of it. CUDA arrays from the
host arrive as :class:`CudaArray` (``__cuda_array_interface__`` v3 and DLPack: wrap it with
``torch.as_tensor``, ``torch.from_dlpack`` or ``cupy.asarray``, no copy); a CUDA tensor
returned (``__cuda_array_interface__`` or DLPack on a CUDA device) goes to the host as a
CUDA IPC handle, and this process keeps the tensor alive until the host is done with it
(``troupe.cuda_stats()``). Anything else
raises ``TypeError`` naming the type and where it sits (``args[1]['x'][0]``).

Errors: an exception a method raises reaches the host with its type, message and
traceback; errors of calls made from here are raised as :class:`RemoteError` subclasses.
"""

import os as _os

# A strict sandbox's Landlock ruleset: enforced before any other troupe code runs.
if "TROUPE_LANDLOCK_FD" in _os.environ:
    from ._sandbox import enforce as _enforce

    _enforce(int(_os.environ.pop("TROUPE_LANDLOCK_FD")))

from .base import Extension
from .calls import Target, extension, host, singleton
from .errors import (
    ActorStoppedError,
    BadArgumentsError,
    CallCancelledError,
    CallError,
    CallTimeoutError,
    CrashedError,
    HostLostError,
    MailboxFullError,
    ManifestError,
    PermissionDeniedError,
    PipelineError,
    RemoteError,
    RemoteExceptionError,
    StartError,
    TargetNotFoundError,
    UnknownMethodError,
)
from .media import Audio, VideoFrame


_HOSTING = {
    "Host": "_hosting",
    "ExtensionHandle": "_hosting",
    "CallStream": "_hosting",
    "StreamHandle": "_hosting",
    "ExtensionEvent": "_hosting",
    "ExtensionEvents": "_hosting",
    "SingletonHandle": "_hosting",
    "AsyncHandle": "_hosting",
    "Pipeline": "pipelines",
    "PipelineRun": "pipelines",
}


def _native_module():
    """The native module of this process: ``_native`` in an extension's child, ``_host`` in
    a Python host (the ``troupe-actors`` package)."""
    try:
        from . import _native
    except ImportError:
        from . import _host as _native
    return _native


def __getattr__(name):
    # The pool helpers need numpy: import them only when asked for.
    if name in ("empty", "zeros", "pool_stats", "slot_of"):
        from . import pool

        return getattr(pool, name)
    if name in _HOSTING:
        try:
            from . import _host  # noqa: F401
        except ImportError:
            raise ImportError(
                f"troupe.{name} needs troupe's host module, which this installation lacks: "
                "install the troupe-actors package (pip install troupe-actors, or from a "
                "checkout: pip install .)"
            ) from None
        import importlib

        return getattr(importlib.import_module(f".{_HOSTING[name]}", __name__), name)
    if name == "HostArray":
        return _native_module().HostArray
    if name in ("CudaArray", "cuda_stats"):
        _native = _native_module()

        if not hasattr(_native, name):
            raise AttributeError(
                f"troupe.{name} is not available: this troupe was built without CUDA support"
            )
        return getattr(_native, name)
    raise AttributeError(f"module 'troupe' has no attribute {name!r}")


__all__ = [
    # (CudaArray and cuda_stats are not listed: a troupe without CUDA, or a Python host, has
    # none; use troupe.CudaArray.)
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
    "ExtensionHandle",
    "ExtensionEvent",
    "ExtensionEvents",
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
