"""Unit-test an extension in-process, without a host, child process or venv.

::

    with run_extension(Greeter, singletons={"config": Config()}) as greeter:
        assert greeter.greet("ada") == "hi, ada"

Inside, ``troupe.host``, ``troupe.singleton(name)`` and ``troupe.extension(name)`` reach the
fakes given; errors arrive as they would from a real host (``TargetNotFoundError``,
``UnknownMethodError``, ``RemoteExceptionError``).
"""

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar, overload

from . import Extension

__all__ = ["ExtensionUnderTest", "FakeRuntime", "run_extension"]

_E = TypeVar("_E", bound=Extension)

class FakeRuntime:
    """Serves an extension's calls out from fakes: ``host`` (an object), ``singletons`` and
    ``extensions`` (``{name: object}``)."""

    host: Any
    singletons: dict[str, Any]
    extensions: dict[str, Any]
    #: Every call made: ``(kind, name, method, args, kwargs)``; ``kind`` is ``"host"``,
    #: ``"singleton"`` or ``"extension"``, ``name`` is ``None`` for the host.
    calls: list[tuple[str, str | None, str, tuple[Any, ...], dict[str, Any]]]
    def __init__(
        self,
        host: object | None = None,
        singletons: Mapping[str, object] | None = None,
        extensions: Mapping[str, object] | None = None,
    ) -> None: ...
    def call_blocking(
        self,
        kind: str,
        name: str | None,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any: ...
    async def call_async(
        self,
        kind: str,
        name: str | None,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any: ...

class ExtensionUnderTest(Generic[_E]):
    """An extension instance with its hooks run: ``ext.method(...)`` calls it (an
    ``async def`` method is awaited to its end), ``ext.instance`` is the object itself,
    ``ext.runtime`` the :class:`FakeRuntime` (``ext.runtime.calls`` records its calls out).

    Generic in the stub only: write ``ExtensionUnderTest[Greeter]`` in annotations that are
    not evaluated (``from __future__ import annotations``, or quoted)."""

    instance: _E
    runtime: FakeRuntime
    def __init__(self, instance: _E, runtime: FakeRuntime) -> None: ...
    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Calls public method ``method`` as the host would."""

    def __getattr__(self, method: str) -> Callable[..., Any]: ...

@overload
def run_extension(
    extension: type[_E],
    *,
    host: object | None = None,
    singletons: Mapping[str, object] | None = None,
    extensions: Mapping[str, object] | None = None,
) -> AbstractContextManager[ExtensionUnderTest[_E]]:
    """Runs the :class:`Extension` subclass ``extension`` in this process, its calls out
    served by the fakes given; yields an :class:`ExtensionUnderTest`."""

@overload
def run_extension(
    extension: str,
    *,
    host: object | None = None,
    singletons: Mapping[str, object] | None = None,
    extensions: Mapping[str, object] | None = None,
) -> AbstractContextManager[ExtensionUnderTest[Extension]]:
    """Runs the only :class:`Extension` subclass of module ``extension`` (a module name)."""
