"""Errors of calls (the ``CallError`` hierarchy, one class per variant of the host's
``CallError``) and the errors a Python host raises (:class:`ManifestError`,
:class:`StartError`, :class:`PipelineError`)."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

class CallError(Exception):
    """A call (from an extension to the host, a singleton or another extension; or from a
    Python host to an extension or singleton) did not return a value."""

    #: The host's ``CallError`` variant this class stands for (``None`` on this base class).
    variant: ClassVar[str | None]

class UnknownMethodError(CallError):
    """The target has no method of that name."""

    variant: ClassVar[str]
    method: str
    def __init__(self, method: str) -> None: ...

class BadArgumentsError(CallError):
    """An argument was missing, of the wrong type or out of range."""

    variant: ClassVar[str]
    #: Where the bad argument sits (``args[1]['x']``).
    path: str
    reason: str
    def __init__(self, path: str, reason: str) -> None: ...

class RemoteExceptionError(CallError):
    """The callee raised; its type name, message and traceback are kept."""

    variant: ClassVar[str]
    #: The remote exception's qualified type name (``ValueError``, ``pkg.mod.Error``).
    type_name: str
    remote_message: str
    #: The remote traceback, formatted (may be empty).
    remote_traceback: str
    def __init__(self, type_name: str, message: str, traceback: str = "") -> None: ...

class CallTimeoutError(CallError, TimeoutError):
    """No reply came within the call's deadline."""

    variant: ClassVar[str]
    seconds: float
    def __init__(self, seconds: float) -> None: ...

class CallCancelledError(CallError):
    """The call was cancelled."""

    variant: ClassVar[str]
    def __init__(self) -> None: ...

class ActorStoppedError(CallError):
    """The target stopped (or was never running) before it replied."""

    variant: ClassVar[str]
    def __init__(self) -> None: ...

class MailboxFullError(CallError):
    """The target's mailbox was full."""

    variant: ClassVar[str]
    def __init__(self) -> None: ...

class CrashedError(CallError):
    """The process behind the target ended with the call pending.

    ``cause`` is the host's ``ExitCause`` variant (``"Exited"``, ``"Signaled"``,
    ``"MemoryLimit"``, ``"StartFailed"``, ``"StartTimeout"``, ``"CancelIgnored"``,
    ``"ConnectTimeout"``, ``"Handshake"``, ``"Protocol"``, ``"Spawn"``, ``"Sandbox"`` or
    ``"Unknown"``); ``exit_code`` / ``signal`` are set for ``"Exited"`` / ``"Signaled"``.
    """

    variant: ClassVar[str]
    cause: str
    exit_code: int | None
    signal: int | None
    #: Why, in words.
    reason: str | None
    #: The last lines the process wrote to stderr.
    stderr_tail: str
    #: The number of restarts made when the target's supervisor gave up, else ``None``.
    gave_up_after: int | None
    def __init__(
        self,
        cause: str = "Unknown",
        exit_code: int | None = None,
        signal: int | None = None,
        reason: str | None = None,
        stderr_tail: str = "",
        gave_up_after: int | None = None,
    ) -> None: ...

class PermissionDeniedError(CallError):
    """This caller may not call that target (see the manifest's grants)."""

    variant: ClassVar[str]
    caller: str
    target: str
    def __init__(self, caller: str, target: str) -> None: ...

class TargetNotFoundError(CallError, LookupError):
    """Nothing serves that target here."""

    variant: ClassVar[str]
    target: str
    def __init__(self, target: str) -> None: ...

class HostLostError(CallError, ConnectionError):
    """The host serving a remote extension was lost with the call pending."""

    variant: ClassVar[str]
    host: str
    def __init__(self, host: str) -> None: ...

#: The name extension code has always used for :class:`CallError`.
RemoteError = CallError

class ManifestError(ValueError):
    """A manifest (a file, or what a Python host added) is not valid; the message names the
    key (and, for a file, its line) and what is wrong."""

class StartError(RuntimeError):
    """Extensions (or singletons) of a host did not start."""

    #: ``(extension, reason, traceback)`` of each that did not start; the traceback is
    #: empty unless the extension's import or a start-up hook raised.
    failures: list[tuple[str, str, str]]
    def __init__(self, message: str, failures: Iterable[Sequence[str]] = ()) -> None: ...

class PipelineError(RuntimeError):
    """A pipeline could not be built (unknown node, bad edge, a node that cannot start)."""

def from_wire(variant: str, fields: Mapping[str, Any]) -> CallError:
    """The exception for a ``CallError`` the native module handed over as
    ``(variant, fields)``."""

def qualified_name(cls: type) -> str:
    """``ValueError`` for builtins, ``package.module.Class`` otherwise."""

def describe(exc: BaseException) -> tuple[str, str, str]:
    """``(type name, message, formatted traceback)`` of an exception, as the host gets it."""
