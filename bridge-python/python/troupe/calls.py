"""Calling the host, its singletons and other extensions from an extension."""

_runtime = None


def _current():
    """The runtime calls go through: the child's (``troupe._runtime``), or one installed by
    :mod:`troupe.testing`. Imported on first use, so a Python host (no child runtime) can
    import ``troupe``."""
    global _runtime
    if _runtime is None:
        from . import _runtime as runtime

        _runtime = runtime
    return _runtime.current()


class Target:
    """Something this extension can call: ``target.method(...)`` blocks for the answer,
    ``await target.aio.method(...)`` awaits it. ``target.call("name", ...)`` and
    ``await target.aio.call("name", ...)`` reach any method name."""

    __module__ = "troupe"
    __slots__ = ("_kind", "_name", "aio")

    def __init__(self, kind, name=None):
        self._kind = kind
        self._name = name
        self.aio = AsyncTarget(kind, name)

    def call(self, method, /, *args, **kwargs):
        """Calls ``method`` and blocks until it answers."""
        return _current().call_blocking(self._kind, self._name, method, args, kwargs)

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        kind, name = self._kind, self._name

        def blocking(*args, **kwargs):
            return _current().call_blocking(kind, name, method, args, kwargs)

        blocking.__name__ = blocking.__qualname__ = method
        return blocking

    def __repr__(self):
        return f"<troupe {self._kind}{'' if self._name is None else ' ' + repr(self._name)}>"


class AsyncTarget:
    """The awaitable form of a :class:`Target` (its ``aio`` attribute)."""

    __module__ = "troupe"
    __slots__ = ("_kind", "_name")

    def __init__(self, kind, name=None):
        self._kind = kind
        self._name = name

    async def call(self, method, /, *args, **kwargs):
        """Calls ``method`` and awaits its answer; cancelling the await cancels the call."""
        return await _current().call_async(self._kind, self._name, method, args, kwargs)

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        kind, name = self._kind, self._name

        async def awaitable(*args, **kwargs):
            return await _current().call_async(kind, name, method, args, kwargs)

        awaitable.__name__ = awaitable.__qualname__ = method
        return awaitable


#: The host program.
host = Target("host")


def singleton(name):
    """The singleton registered under ``name`` on the host."""
    return Target("singleton", name)


def extension(name):
    """Another extension of the same host, by name (where the manifest grants it)."""
    return Target("extension", name)
