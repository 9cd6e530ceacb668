"""Unit-test an extension in-process, without a host, child process or venv.

::

    from troupe.testing import run_extension

    class Config:
        def get(self, key):
            return {"greeting": "hi"}[key]

    def test_greets():
        with run_extension(Greeter, singletons={"config": Config()}) as greeter:
            assert greeter.greet("ada") == "hi, ada"
            assert greeter.call("shout", "ada") == "HI, ADA!"   # async def: awaited here

Inside, ``troupe.host``, ``troupe.singleton(name)`` and ``troupe.extension(name)`` reach the
fakes given (plain Python objects, with ``def`` or ``async def`` methods); a missing target
raises :class:`TargetNotFoundError`, a missing method :class:`UnknownMethodError`, and an
exception a fake raises arrives as :class:`RemoteExceptionError` with its type name and
traceback, as it would from a real host. The hooks run as in a child: ``before_module_loaded``,
``on_module_loaded``, ``initialize`` on entry, ``prepare_shutdown`` on exit.

What differs from a real host: values are not converted (an object that could not cross
passes here), arrays are not made read-only, and calls are not run in another process.
"""

import asyncio
import contextlib
import importlib
import inspect
import sys
import threading
import types

from . import calls
from .base import HOOKS, Extension
from .errors import RemoteExceptionError, TargetNotFoundError, UnknownMethodError, describe

__all__ = ["ExtensionUnderTest", "FakeRuntime", "run_extension"]


class FakeRuntime:
    """Serves an extension's calls out from fakes: ``host`` (an object), ``singletons`` and
    ``extensions`` (``{name: object}``)."""

    def __init__(self, host=None, singletons=None, extensions=None):
        self.host = host
        self.singletons = dict(singletons or {})
        self.extensions = dict(extensions or {})
        #: Every call made: ``(kind, name, method, args, kwargs)``.
        self.calls = []

    def _method(self, kind, name, method):
        if kind == "host":
            target = self.host
        elif kind == "singleton":
            target = self.singletons.get(name)
        else:
            target = self.extensions.get(name)
        label = kind if name is None else f"{kind} {name}"
        if target is None:
            raise TargetNotFoundError(label)
        fn = None if method.startswith("_") else getattr(target, method, None)
        if fn is None or not callable(fn):
            raise UnknownMethodError(method)
        return fn

    @staticmethod
    def _remote(exc):
        return RemoteExceptionError(*describe(exc))

    def call_blocking(self, kind, name, method, args, kwargs):
        self.calls.append((kind, name, method, args, kwargs))
        fn = self._method(kind, name, method)
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = _run(result)
            return result
        except Exception as exc:
            raise self._remote(exc) from exc

    async def call_async(self, kind, name, method, args, kwargs):
        self.calls.append((kind, name, method, args, kwargs))
        fn = self._method(kind, name, method)
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        except Exception as exc:
            raise self._remote(exc) from exc


def _run(awaitable):
    """Runs ``awaitable`` to its end from synchronous code (on a thread of its own when an
    event loop already runs on this one)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_awaited(awaitable))
    result = {}

    def run():
        try:
            result["value"] = asyncio.run(_awaited(awaitable))
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


async def _awaited(awaitable):
    return await awaitable


class _RuntimeModule:
    """Stands in for ``troupe._runtime`` in :mod:`troupe.calls`."""

    def __init__(self, runtime):
        self._runtime = runtime

    def current(self):
        return self._runtime


class ExtensionUnderTest:
    """An extension instance with its hooks run: ``ext.method(...)`` calls it (an
    ``async def`` method is awaited to its end), ``ext.instance`` is the object itself,
    ``ext.runtime`` the :class:`FakeRuntime` (``ext.runtime.calls`` records its calls out)."""

    __class_getitem__ = classmethod(types.GenericAlias)

    def __init__(self, instance, runtime):
        self.instance = instance
        self.runtime = runtime

    def call(self, method, /, *args, **kwargs):
        """Calls public method ``method`` as the host would."""
        if method.startswith("_") or method in HOOKS:
            raise UnknownMethodError(method)
        fn = getattr(self.instance, method, None)
        if fn is None or not callable(fn):
            raise UnknownMethodError(method)
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = _run(result)
        return result

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda *args, **kwargs: self.call(method, *args, **kwargs)


def _hook(instance, name, *args):
    result = getattr(instance, name)(*args)
    if inspect.isawaitable(result):
        _run(result)


@contextlib.contextmanager
def run_extension(extension, *, host=None, singletons=None, extensions=None):
    """Runs ``extension`` (an :class:`Extension` subclass, or a module name whose only
    subclass is taken) in this process with its calls out served by the fakes given; yields
    an :class:`ExtensionUnderTest`."""
    module = None
    if isinstance(extension, str):
        module = importlib.import_module(extension)
        found = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Extension) and obj is not Extension
            and obj.__module__ == module.__name__
        ]
        if len(found) != 1:
            raise TypeError(f"module {extension!r} defines {len(found)} Extension subclasses")
        extension = found[0]
    if not (isinstance(extension, type) and issubclass(extension, Extension)):
        raise TypeError(f"run_extension takes an Extension subclass, not {extension!r}")
    runtime = FakeRuntime(host, singletons, extensions)
    saved = calls._runtime
    calls._runtime = _RuntimeModule(runtime)
    try:
        instance = extension()
        _hook(instance, "before_module_loaded")
        _hook(instance, "on_module_loaded", module or sys.modules.get(extension.__module__))
        _hook(instance, "initialize")
        try:
            yield ExtensionUnderTest(instance, runtime)
        finally:
            _hook(instance, "prepare_shutdown")
    finally:
        calls._runtime = saved
