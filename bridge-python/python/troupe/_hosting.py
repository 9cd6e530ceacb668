"""troupe for Python programs: host extensions, serve singletons, call them.

This module is the Python half of :class:`Host`; the native half (``troupe._host``) runs
troupe's runtime on a thread of its own. Blocking calls wait without the GIL (Ctrl-C
abandons them); awaited calls never block the event loop.
"""

import asyncio
import atexit
import collections
import dataclasses
import inspect
import os
import threading
import weakref

from . import _host
from .errors import describe

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

#: What a stream's future resolves to at its end.
_END = object()

_hosts = weakref.WeakSet()
_loop_lock = threading.Lock()
_loop_thread = None
_loop = None


def _resolve(future, ok, payload):
    """Settles ``future`` (on its loop's thread) with a call's result or exception."""
    if future.done():
        return
    if ok:
        future.set_result(payload)
    else:
        future.set_exception(payload)


def _host_loop():
    """The host's own asyncio loop, on a thread of its own: where ``async def`` methods of
    objects served to extensions run."""
    global _loop, _loop_thread
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="troupe-host-loop", daemon=True
            )
            thread.start()
            _loop, _loop_thread = loop, thread
        return _loop


def _answer_from(future, reply):
    if future.cancelled():
        reply.error("asyncio.CancelledError", "the method was cancelled", "")
        return
    exc = future.exception()
    if exc is not None:
        reply.error(*describe(exc))
        return
    try:
        reply.ok(future.result())
    except Exception:
        pass  # answered with a TypeError already


#: The served object's worker on this thread, if it is one: ``(object, queue)``.
_worker = threading.local()


def _serve_object(obj, queue):
    """A served object's worker: ``def`` methods run here one at a time, in order;
    ``async def`` methods run on the host's loop."""
    _worker.serving = (obj, queue)
    while True:
        job = queue.next()
        if job is None:
            return
        _serve_job_safely(obj, job)


def _call_blocking(target, method, args, kwargs, timeout):
    """A blocking call. On a served object's worker, the calls that reach the object while
    it waits are served meanwhile (a chain host -> extension -> host does not deadlock)."""
    serving = getattr(_worker, "serving", None)
    if serving is None:
        return target.call(method, args, kwargs, timeout)
    obj, queue = serving
    id = target.start_on(queue, method, args, kwargs, timeout)
    while (job := queue.next_while(id)) is not None:
        _serve_job_safely(obj, job)
    return queue.answer(id)


def _serve_job_safely(obj, job):
    """:func:`_serve_job`, whatever happens: a failure even in reporting the method's
    failure answers the call and leaves the worker serving."""
    try:
        _serve_job(obj, job)
    except BaseException as e:  # noqa: BLE001 - the worker must outlive any one call
        try:
            job[3].error(type(e).__qualname__, "<an exception that could not be described>", "")
        except BaseException:  # noqa: BLE001
            pass


def _serve_job(obj, job):
    method, args, kwargs, reply = job
    fn = None if method.startswith("_") else getattr(obj, method, None)
    if fn is None or not callable(fn):
        reply.unknown_method(method)
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 - every failure goes to the caller
        reply.error(*describe(e))
        return
    if inspect.isawaitable(result):
        future = asyncio.run_coroutine_threadsafe(_awaited(result), _host_loop())
        future.add_done_callback(lambda f, reply=reply: _answer_from(f, reply))
        return
    try:
        reply.ok(result)
    except Exception:
        pass  # answered with a TypeError already


async def _awaited(awaitable):
    return await awaitable


def _start_worker(obj, queue, name):
    thread = threading.Thread(
        target=_serve_object, args=(obj, queue), name=f"troupe-serve-{name}", daemon=True
    )
    thread.start()
    return thread


_queues = weakref.WeakKeyDictionary()


def _loop_queue(loop):
    """The queue where the runtime leaves ``loop``'s finished calls; the loop drains it on
    its own thread when its eventfd rings."""
    queue = _queues.get(loop)
    if queue is None:
        queue = _host.LoopQueue()
        loop.add_reader(queue.fileno(), queue.drain)
        _queues[loop] = queue
    return queue


class _AwaitedRead:
    """The reads ``async for`` loops over one native stream await. Each reader starts a
    read of its own; a reader cancelled while it awaits loses nothing: its read goes on,
    and the next reader takes it before starting another (so a single reader sees every
    item, in order). ``start(queue, future)`` starts a native read settling ``future``."""

    __slots__ = ("_start", "_orphans")

    def __init__(self, start):
        self._start = start
        self._orphans = collections.deque()

    @property
    def pending(self):
        """Whether a given-up read is under way (a blocking read would overtake it)."""
        return bool(self._orphans)

    async def next(self):
        loop = asyncio.get_running_loop()
        if self._orphans:
            future = self._orphans.popleft()
            if future.get_loop() is not loop:
                self._orphans.appendleft(future)
                raise RuntimeError("this stream is being read on another event loop")
        else:
            future = loop.create_future()
            self._start(_loop_queue(loop), future)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.cancelled():
                self._orphans.append(future)  # the next reader's
            raise


async def _call_async(target, method, args, kwargs, timeout):
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    pending = target.call_async(_loop_queue(loop), future, method, args, kwargs or None, timeout)
    try:
        return await future
    except asyncio.CancelledError:
        pending.cancel()
        raise


class _Handle:
    """What :class:`ExtensionHandle` and :class:`SingletonHandle` share."""

    __slots__ = ("_target", "_timeout", "aio", "stream")

    def __init__(self, target, timeout=None):
        self._target = target
        self._timeout = timeout
        self.aio = AsyncHandle(target, timeout)
        self.stream = StreamHandle(target, timeout)

    @property
    def name(self):
        """The target's name."""
        return self._target.name

    def call(self, method, /, *args, **kwargs):
        """Calls ``method`` and blocks (without the GIL) for its answer."""
        return _call_blocking(self._target, method, args, kwargs or None, self._timeout)

    def with_timeout(self, seconds):
        """The same target, with a deadline of ``seconds`` for every call made through it
        (``None``: the target's default). Past it a call raises :class:`CallTimeoutError`
        and is cancelled in the extension."""
        return type(self)(self._target, seconds)

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        target, timeout = self._target, self._timeout

        def blocking(*args, **kwargs):
            return _call_blocking(target, method, args, kwargs or None, timeout)

        blocking.__name__ = blocking.__qualname__ = method
        return blocking

    def __repr__(self):
        return repr(self._target)


class StreamHandle:
    """The streaming form of a handle (its ``stream`` attribute): ``ext.stream.m(...)``
    calls a generator method and returns its :class:`CallStream`, which yields each item as
    the extension yields it (``for`` or ``async for``)."""

    __module__ = "troupe"
    __slots__ = ("_target", "_timeout")

    def __init__(self, target, timeout=None):
        self._target = target
        self._timeout = timeout

    def call(self, method, /, *args, **kwargs):
        """Calls ``method`` for a stream of items."""
        return CallStream(self._target.stream(method, args, kwargs or None, self._timeout))

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        target, timeout = self._target, self._timeout

        def streamed(*args, **kwargs):
            return CallStream(target.stream(method, args, kwargs or None, timeout))

        streamed.__name__ = streamed.__qualname__ = method
        return streamed


class CallStream:
    """The items of a streaming call, in order, each as soon as the extension yields it;
    then its return value if not ``None``. The extension runs at most 16 items ahead of
    the reader (backpressure); the deadline covers the whole stream; an error raises its
    :class:`CallError` class and ends the stream. The call starts at the first read.
    ``close()`` (or leaving a ``with`` block, or dropping the stream) abandons the call:
    the extension's generator stops at its next ``yield``."""

    __module__ = "troupe"

    def __init__(self, native):
        self._native = native
        self._awaited = _AwaitedRead(native.next_async)

    def __iter__(self):
        if self._awaited.pending:
            raise RuntimeError("an `async for` over this stream awaits an item: read it there")
        while True:
            item = self._native.next()
            if item is None:
                return
            yield item

    async def _items(self):
        while True:
            item = await self._awaited.next()
            if item is _END:
                return
            yield item

    def __aiter__(self):
        return self._items()

    def close(self):
        """Abandons the call; reading ends."""
        self._native.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class AsyncHandle:
    """The awaitable form of a handle (its ``aio`` attribute): ``await handle.aio.m(...)``.
    Cancelling the await cancels the call."""

    __module__ = "troupe"
    __slots__ = ("_target", "_timeout")

    def __init__(self, target, timeout=None):
        self._target = target
        self._timeout = timeout

    async def call(self, method, /, *args, **kwargs):
        """Calls ``method`` and awaits its answer."""
        return await _call_async(self._target, method, args, kwargs, self._timeout)

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        target, timeout = self._target, self._timeout

        async def awaitable(*args, **kwargs):
            return await _call_async(target, method, args, kwargs, timeout)

        awaitable.__name__ = awaitable.__qualname__ = method
        return awaitable


class ExtensionHandle(_Handle):
    """A running extension: ``ext.method(...)`` blocks for the answer,
    ``await ext.aio.method(...)`` awaits it, ``for item in ext.stream.method(...)`` reads a
    generator method's items as they come. Errors raise :class:`CallError` subclasses
    (:class:`RemoteExceptionError` for the extension's own exceptions, with the remote
    type, message and traceback; :class:`CrashedError` with the exit code or signal)."""

    __module__ = "troupe"
    __slots__ = ()

    @property
    def pid(self):
        """The running child's process id, or ``None`` while none runs."""
        return self._target.pid

    @property
    def methods(self):
        """The methods the running extension offers, or ``None`` while none runs."""
        return self._target.methods

    def status(self):
        """``{"state", "instance", "restarts", "last_exit"}``: ``state`` is ``running``,
        ``starting``, ``restarting``, ``stopped`` or ``gave_up``."""
        return self._target.status()

    def events(self):
        """The extension's supervision events from now on (started, exited, restarting,
        stopped, gave up), as :class:`ExtensionEvent`: ``for event in ext.events()``,
        ``async for event in ext.events()``, or ``events.next(timeout=1.0)``. Iteration
        ends after the extension is done for good (``stopped`` or ``gave_up``: shut down,
        or not restarted)."""
        return ExtensionEvents(self._target.events())


@dataclasses.dataclass(frozen=True)
class ExtensionEvent:
    """Something an extension's supervisor did.

    ``kind`` is ``"started"`` (``instance`` counts from 1), ``"exited"`` (``reason``, and
    ``exit_code`` or ``signal`` when its process said), ``"restarting"`` (``attempt`` in the
    restart window, after ``delay_s``), ``"stopped"`` (for good), ``"gave_up"`` (the restart
    limit was hit after ``attempt`` restarts; ``reason`` is the last exit) or ``"missed"``
    (this reader fell behind and ``missed`` events were dropped for it)."""

    __module__ = "troupe"

    kind: str
    extension: str | None = None
    instance: int | None = None
    attempt: int | None = None
    delay_s: float | None = None
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    missed: int | None = None


class ExtensionEvents:
    """A subscription to one extension's events (see :meth:`ExtensionHandle.events`)."""

    __module__ = "troupe"

    def __init__(self, native):
        self._native = native
        self._awaited = _AwaitedRead(native.next_async)
        self._done = False

    def next(self, timeout=None):
        """The next event, or ``None`` when ``timeout`` seconds pass first (``0``: only an
        event already there) or no event can come any more (the extension is done for
        good)."""
        if self._awaited.pending:
            raise RuntimeError("an `async for` over these events awaits one: read them there")
        if self._done:
            return None
        return self._take(self._native.next(timeout))

    def _take(self, read):
        tag, payload = read
        if tag == "closed":
            self._done = True
        if tag != "event":
            return None
        event = ExtensionEvent(**payload)
        if event.kind in _FINAL:
            self._done = True
        return event

    def __iter__(self):
        while not self._done:
            event = self.next(None)
            if event is not None:
                yield event

    async def _events(self):
        while not self._done:
            event = self._take(await self._awaited.next())
            if event is not None:
                yield event

    def __aiter__(self):
        return self._events()


#: Events after which an extension has no more.
_FINAL = ("stopped", "gave_up")




class SingletonHandle(_Handle):
    """A singleton of the host, called from the host program."""

    __module__ = "troupe"
    __slots__ = ()


def _restart(value):
    if isinstance(value, str):
        return {"policy": value}
    return value


class Host:
    """Extensions (each a child process in its own venv) and singletons of a Python
    program.

    ::

        with troupe.Host("troupe.toml", singletons={"db": Database()}) as host:
            print(host["stats"].describe())

    Or add extensions in code, then start::

        host = troupe.Host()
        host.add_extension("legacy", "legacy_stats", path="plugins",
                           dependencies=["numpy==1.26.4"], singletons=["db"])
        host.add_singleton("db", Database())
        host.start()
        ...
        host.shutdown()

    ``start()`` builds every venv (cached), starts the extensions and waits for their
    start-up hooks; it raises :class:`StartError` (after stopping the rest) if one does not
    come up. A host is shut down on exit from its ``with`` block, by ``shutdown()``, and at
    interpreter exit.
    """

    __module__ = "troupe"

    def __init__(self, manifest=None, *, singletons=None, service=None, quiet=False):
        """``manifest``: a TOML file (its extensions, singletons and pipelines);
        ``singletons``: ``{name: object}`` served to extensions that are granted them;
        ``service``: an object serving ``troupe.host.method(...)`` calls from extensions;
        ``quiet``: no venv progress lines on stderr."""
        self._native = _host.Host(os.fspath(manifest) if manifest is not None else None, quiet)
        self._served = {}
        self._handles = {}
        for name, obj in (singletons or {}).items():
            self.add_singleton(name, obj)
        if service is not None:
            self._serve(None, service)
        _hosts.add(self)

    def _serve(self, name, obj):
        queue = self._native.serve(name)
        self._served[name] = _start_worker(obj, queue, name or "host")

    def add_extension(
        self,
        name,
        module,
        *,
        path=None,
        cls=None,
        dependencies=None,
        pyproject=None,
        python=None,
        system_site_packages=None,
        restart=None,
        memory_limit_mb=None,
        call_timeout_ms=None,
        start_timeout_ms=None,
        cancel_grace_ms=None,
        sandbox=None,
        singletons=(),
        extensions=(),
        env=None,
    ):
        """Adds extension ``name``: the :class:`Extension` subclass in ``module`` (found on
        ``path``), in a venv with ``dependencies``. The options are the manifest's keys
        (see the README): ``restart`` is a policy name (``"permanent"``, ``"transient"``,
        ``"temporary"``) or a dict (``{"policy": ..., "max_restarts": 3, "within_s": 30}``);
        ``sandbox`` a level name or a dict; ``singletons`` and ``extensions`` are what it is
        granted to call. Relative paths are taken from the working directory.

        Before :meth:`start` it is started with the rest; on a running host it starts at
        once, and this returns when it runs (or raises :class:`StartError`)."""
        grants = {}
        if singletons:
            grants["singletons"] = list(singletons)
        if extensions:
            grants["extensions"] = list(extensions)
        options = {
            "module": module,
            "path": os.path.abspath(path) if path is not None else None,
            "class": cls,
            "dependencies": list(dependencies) if dependencies is not None else None,
            "pyproject": os.path.abspath(pyproject) if pyproject is not None else None,
            "python": python,
            "system_site_packages": system_site_packages,
            "restart": _restart(restart),
            "memory_limit_mb": memory_limit_mb,
            "call_timeout_ms": call_timeout_ms,
            "start_timeout_ms": start_timeout_ms,
            "cancel_grace_ms": cancel_grace_ms,
            "sandbox": sandbox,
            "grants": grants or None,
            "env": env,
        }
        self._native.add_extension(name, options)
        self._handles.pop(("extension", name), None)
        return self

    def stop_extension(self, name):
        """Stops extension ``name`` gracefully and forgets it (calls through its handles
        raise :class:`ActorStoppedError`; the name may be added again). Returns whether
        there was one (running, restarting or given up). An extension of the manifest file
        stays stopped: it cannot be added again from Python."""
        stopped = self._native.stop_extension(name)
        self._handles.pop(("extension", name), None)
        return stopped

    def add_singleton(self, name, obj=None, *, kind=None, **params):
        """Adds singleton ``name``: served by the Python object ``obj`` (its public
        methods, ``def`` run one at a time in order, ``async def`` on the host's loop), or
        of a built-in ``kind`` (``"kv"``) with ``params``."""
        if (obj is None) == (kind is None):
            raise TypeError("add_singleton: give either an object or kind=...")
        if kind is not None:
            self._native.add_singleton(name, kind, params)
        else:
            if params:
                raise TypeError("add_singleton: params go with kind=..., not with an object")
            self._serve(name, obj)
        return self

    def add_pipeline(self, pipeline):
        """Adds a :class:`Pipeline` described in code (before ``start()``)."""
        from .pipelines import _add

        _add(self, pipeline)
        return self

    def start(self):
        """Starts everything (see the class); returns the host."""
        self._native.start()
        return self

    def extension(self, name):
        """The running extension ``name`` (:class:`ExtensionHandle`)."""
        handle = self._handles.get(("extension", name))
        if handle is None:
            handle = ExtensionHandle(self._native.extension(name))
            self._handles[("extension", name)] = handle
        return handle

    __getitem__ = extension

    def singleton(self, name):
        """Singleton ``name`` (:class:`SingletonHandle`), to call from the host program."""
        handle = self._handles.get(("singleton", name))
        if handle is None:
            handle = SingletonHandle(self._native.singleton(name))
            self._handles[("singleton", name)] = handle
        return handle

    @property
    def extensions(self):
        """The names of the running extensions."""
        return self._native.extension_names()

    @property
    def running(self):
        """Whether the host runs."""
        return self._native.running_now

    def run(self, pipeline=None, *, feed=None, outputs=()):
        """Starts a pipeline (a name of the manifest's, a :class:`Pipeline` added with
        ``add_pipeline``, or ``None`` for the only one): ``feed`` maps input ids to
        iterables (or async iterables) of items, ``outputs`` names the nodes whose outputs
        come back. Returns a :class:`PipelineRun`."""
        from .pipelines import _run

        return _run(self, pipeline, feed or {}, list(outputs))

    def shutdown(self):
        """Stops every extension gracefully and waits for their processes to end."""
        self._handles.clear()
        self._native.shutdown()

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        return False

    def __repr__(self):
        state = "running" if self.running else "not running"
        return f"<troupe.Host {state}>"


@atexit.register
def _at_exit():
    for host in list(_hosts):
        try:
            host.shutdown()
        except BaseException:  # noqa: BLE001 - exiting anyway
            pass
    _host.shutdown_runtime()
