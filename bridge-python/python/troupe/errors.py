"""Errors of calls made from an extension, one class per ``CallError`` variant of the host.

=======================  =========================  ===============================
host ``CallError``       Python class               attributes
=======================  =========================  ===============================
``UnknownMethod``        UnknownMethodError         ``method``
``BadArguments``         BadArgumentsError          ``path``, ``reason``
``Remote``               RemoteExceptionError       ``type_name``, ``remote_message``,
                                                    ``remote_traceback``
``Timeout``              CallTimeoutError           ``seconds``
``Cancelled``            CallCancelledError
``ActorStopped``         ActorStoppedError
``MailboxFull``          MailboxFullError
``Crashed``              CrashedError               ``cause``, ``exit_code``,
                                                    ``signal``, ``reason``,
                                                    ``stderr_tail``, ``gave_up_after``
``PermissionDenied``     PermissionDeniedError      ``caller``, ``target``
``NotFound``             TargetNotFoundError        ``target``
``HostLost``             HostLostError              ``host``
=======================  =========================  ===============================

All derive from :class:`CallError` (also named ``RemoteError``): an extension's calls out
and a Python host's calls in raise the same classes. A Python host also raises
:class:`ManifestError`, :class:`StartError` and :class:`PipelineError`.
"""

import traceback as _traceback


class CallError(Exception):
    """A call (from an extension to the host, a singleton or another extension; or from a
    Python host to an extension or singleton) did not return a value."""

    __module__ = "troupe"
    #: The host's ``CallError`` variant this class stands for.
    variant = None


class UnknownMethodError(CallError):
    """The target has no method of that name."""

    __module__ = "troupe"
    variant = "UnknownMethod"

    def __init__(self, method):
        super().__init__(f"unknown method {method!r}")
        self.method = method


class BadArgumentsError(CallError):
    """An argument was missing, of the wrong type or out of range."""

    __module__ = "troupe"
    variant = "BadArguments"

    def __init__(self, path, reason):
        super().__init__(f"bad argument at {path}: {reason}")
        self.path = path
        self.reason = reason


class RemoteExceptionError(CallError):
    """The callee raised; its type name, message and traceback are kept."""

    __module__ = "troupe"
    variant = "Remote"

    def __init__(self, type_name, message, traceback=""):
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.remote_message = message
        self.remote_traceback = traceback
        if traceback:
            self.add_note(f"Remote traceback:\n{traceback.rstrip()}")


class CallTimeoutError(CallError, TimeoutError):
    """No reply came within the call's deadline."""

    __module__ = "troupe"
    variant = "Timeout"

    def __init__(self, seconds):
        super().__init__(f"no reply within {seconds:g} s")
        self.seconds = seconds


class CallCancelledError(CallError):
    """The call was cancelled."""

    __module__ = "troupe"
    variant = "Cancelled"

    def __init__(self):
        super().__init__("call cancelled")


class ActorStoppedError(CallError):
    """The target stopped (or was never running) before it replied."""

    __module__ = "troupe"
    variant = "ActorStopped"

    def __init__(self):
        super().__init__("actor stopped before replying")


class MailboxFullError(CallError):
    """The target's mailbox was full."""

    __module__ = "troupe"
    variant = "MailboxFull"

    def __init__(self):
        super().__init__("mailbox full")


class CrashedError(CallError):
    """The process behind the target ended with the call pending.

    ``cause`` names why (the host's ``ExitCause`` variant: ``"Exited"``, ``"Signaled"``,
    ``"MemoryLimit"``, ``"StartFailed"``, ``"StartTimeout"``, ``"CancelIgnored"``,
    ``"ConnectTimeout"``,
    ``"Handshake"``, ``"Protocol"``, ``"Spawn"``, ``"Sandbox"`` or ``"Unknown"``);
    ``exit_code`` and ``signal`` are set for ``"Exited"`` and ``"Signaled"``; ``reason`` says it in words;
    ``gave_up_after`` is the number of restarts made when the target's supervisor gave up.
    """

    __module__ = "troupe"
    variant = "Crashed"

    def __init__(
        self,
        cause="Unknown",
        exit_code=None,
        signal=None,
        reason=None,
        stderr_tail="",
        gave_up_after=None,
    ):
        text = f"process ended: {reason or cause}"
        if gave_up_after is not None:
            text += f"; gave up after {gave_up_after} restarts"
        super().__init__(text)
        self.cause = cause
        self.exit_code = exit_code
        self.signal = signal
        self.reason = reason
        self.stderr_tail = stderr_tail
        self.gave_up_after = gave_up_after


class PermissionDeniedError(CallError):
    """This extension may not call that target (see the manifest's grants)."""

    __module__ = "troupe"
    variant = "PermissionDenied"

    def __init__(self, caller, target):
        super().__init__(f"{caller} may not call {target}")
        self.caller = caller
        self.target = target


class TargetNotFoundError(CallError, LookupError):
    """Nothing serves that target here: e.g. ``troupe.host`` in an extension run by
    ``troupe run``, whose host offers no service of its own."""

    __module__ = "troupe"
    variant = "NotFound"

    def __init__(self, target):
        super().__init__(f"no {target} here to call")
        self.target = target


class HostLostError(CallError, ConnectionError):
    """The host serving a remote extension was lost with the call pending (or was not
    there); the call ran there at most once."""

    __module__ = "troupe"
    variant = "HostLost"

    def __init__(self, host):
        super().__init__(f"host {host} lost")
        self.host = host


#: The name extension code has always used for :class:`CallError`.
RemoteError = CallError


class ManifestError(ValueError):
    """A manifest (a file, or what a Python host added) is not valid; the message names the
    key (and, for a file, its line) and what is wrong."""

    __module__ = "troupe"


class StartError(RuntimeError):
    """Extensions (or singletons) of a host did not start. ``failures`` lists
    ``(extension, reason, traceback)``; the traceback is that of the exception the
    extension's import or start-up hooks raised, else empty."""

    __module__ = "troupe"

    def __init__(self, message, failures=()):
        super().__init__(message)
        self.failures = [tuple(f) for f in failures]
        for extension, _, tb in self.failures:
            if tb:
                self.add_note(f"[{extension}] {tb.rstrip()}")


class PipelineError(RuntimeError):
    """A pipeline could not be built (unknown node, bad edge, a node that cannot start)."""

    __module__ = "troupe"


_BY_VARIANT = {
    cls.variant: cls
    for cls in (
        UnknownMethodError,
        BadArgumentsError,
        RemoteExceptionError,
        CallTimeoutError,
        CallCancelledError,
        ActorStoppedError,
        MailboxFullError,
        CrashedError,
        PermissionDeniedError,
        TargetNotFoundError,
        HostLostError,
    )
}


def from_wire(variant, fields):
    """The exception for a ``CallError`` the native module handed over as
    ``(variant, fields)``."""
    cls = _BY_VARIANT.get(variant)
    if cls is None:
        return CallError(f"{variant}: {fields}")
    return cls(**fields)


def qualified_name(cls):
    """``ValueError`` for builtins, ``package.module.Class`` otherwise."""
    module = getattr(cls, "__module__", None)
    if module in (None, "builtins", "__main__"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def describe(exc):
    """``(type name, message, formatted traceback)`` of an exception, as the host gets it."""
    return (
        qualified_name(type(exc)),
        str(exc),
        "".join(_traceback.format_exception(exc)),
    )
