"""The child process's runtime: start-up, dispatch of the host's calls, calls out.

Receiving is a turn that one thread holds at a time (kept in the native module, see its
``serve`` module): the main thread while it waits for work, or any thread blocked in a call
out while nobody else receives. The thread holding the turn handles what it receives:
replies go to whoever waits for them; a ``def`` method the host calls runs inline on that
thread (so ``def`` methods run one at a time, like an actor's handlers), and ``async def``
methods and hooks run on one asyncio loop in a second thread (started on first need). A
``def`` generator the host streams from runs on a thread of its own after its first call
(see *streaming calls* below), so its body may interleave with other methods. A
thread blocked in a call out takes the turn whenever it is free, so a ``def`` method that
waits for a thread of its own calling the host does not deadlock, and host -> extension ->
host nesting works on any thread. An awaitable call out waits on a future of its loop.

The main thread's loop itself runs in the native module (``_native.serve``): it calls plain
``def`` methods and sends their answers without running the Python code below, and hands
everything else to :meth:`Runtime.handle`, :meth:`Runtime.deliver_reply` and
:meth:`Runtime.finish_call`. Sending never waits.
"""

import asyncio
import functools
import importlib
import inspect
import os
import signal
import sys
import threading
import traceback
import types

from . import _native
from .base import HOOKS, Extension
from .errors import describe, from_wire, qualified_name

# How long the main thread waits for a frame before looking again at an async hook it runs.
_HOOK_POLL_SECONDS = 0.005

_GENERATOR = types.GeneratorType
_ASYNC_GENERATOR = types.AsyncGeneratorType

# What `_native.reply` raises for a value it cannot convert.
_CONVERSION_ERRORS = (TypeError, ValueError, OverflowError)

_CURRENT = None


def current():
    """The runtime of this extension process."""
    if _CURRENT is None:
        raise RuntimeError(
            "troupe.host, troupe.singleton() and troupe.extension() work only inside an "
            "extension process started by a troupe host"
        )
    return _CURRENT


def _outcome(outcome):
    ok, payload = outcome
    if ok:
        return payload
    if ok is None:
        # The host's value has no Python form here (e.g. an array without numpy).
        raise TypeError(payload)
    raise from_wire(*payload)


def _settle(future, outcome):
    if not future.done():
        future.set_result(outcome)


async def _invoke(make):
    return await make()


async def _collect(agen):
    return [item async for item in agen]


class _Stream:
    """Credit of one streaming call of the host's: items the child may still send. Guarded
    by ``cond``, which a ``def`` generator's thread waits on; an ``async def`` one waits on
    ``event`` instead."""

    __slots__ = ("credit", "cancelled", "event", "cond")

    def __init__(self, window):
        self.credit = window
        self.cancelled = False
        self.event = None  # an asyncio.Event, for a stream served on the loop
        self.cond = threading.Condition()

    def ready(self):
        return self.credit > 0 or self.cancelled


def _items(result):
    """An iterator over what a streaming call's result stands for: a generator, what it
    yields; a list or tuple, one item each; ``None``, none; anything else, itself."""
    if type(result) is _GENERATOR:
        return result
    if result is None:
        return iter(())
    if isinstance(result, (list, tuple)):
        return iter(result)
    return iter((result,))


def _target_text(kind, name):
    return "troupe.host" if kind == "host" else f"troupe.{kind}({name!r})"


class Runtime:
    """Dispatch state of the one extension this process runs."""

    def __init__(self):
        self.main_thread = threading.current_thread()
        self.lock = threading.Lock()
        self.waiters = {}  # call id -> deliver(outcome), for calls this child made
        self.methods = {}  # name -> (bound method, is_async)
        self.tasks = {}  # host call id -> asyncio.Task (touched on the loop thread only)
        self.streams = {}  # host call id -> _Stream, for streaming calls being served
        self.loop = None
        self.loop_thread = None
        self.instance = None
        self.shutdown_requested = False

    # -- start-up ---------------------------------------------------------------------

    def start(self, info):
        """Loads the extension and runs its start-up hooks, in the documented order."""
        sys.path[0:0] = [p for p in info["sys_path"]]
        module = importlib.import_module(info["module"])
        cls = find_extension_class(module, info["class"])
        instance = cls()
        self.instance = instance
        self.run_hook(instance.before_module_loaded)
        self.run_hook(instance.on_module_loaded, module)
        self.run_hook(instance.initialize)
        self.methods = public_methods(instance)
        _native.started(sorted(self.methods))

    def run_hook(self, hook, *args):
        """Runs a hook; an ``async def`` one on the loop thread, receiving meanwhile."""
        result = hook(*args)
        if inspect.isawaitable(result):
            return self.wait_on_loop(result)
        return result

    def wait_on_loop(self, awaitable):
        future = asyncio.run_coroutine_threadsafe(_invoke(lambda: awaitable), self.ensure_loop())
        while not future.done():
            frame = self.next_frame(future.done, _HOOK_POLL_SECONDS)
            if frame is not None:
                self.handle(frame)
        return future.result()

    # -- receiving --------------------------------------------------------------------

    def next_frame(self, done, timeout=None):
        """Takes the receive turn and returns the next frame to handle; ``None`` once
        ``done()`` is true (checked while waiting for the turn), when ``timeout`` seconds
        passed, or when the frame was a reply or a shutdown request.

        Replies are delivered (and a shutdown request recorded) *before* the turn is given
        up: a thread that waits for the turn and then finds its box still empty would
        otherwise take the turn and wait for a reply that already came."""
        if not _native.turn_take(done):
            return None
        frame = None
        try:
            frame = _native.recv(timeout)
            if frame is not None:
                kind = frame[0]
                if kind == "reply":
                    self.deliver_reply(frame)
                    frame = None
                elif kind == "shutdown":
                    self.shutdown_requested = True
                    _native.stop_serving()
                    frame = None
        finally:
            _native.turn_give()
        return frame

    def deliver_reply(self, frame):
        with self.lock:
            deliver = self.waiters.pop(frame[1], None)
        if deliver is not None:
            deliver((frame[2], frame[3]))

    def serve_forever(self):
        """Serves the host until it asks to shut down (the loop runs in the native module:
        see the module docs)."""
        plain = {name: fn for name, (fn, is_async) in self.methods.items() if not is_async}
        _native.serve(self, plain)

    def handle(self, frame):
        """A frame `next_frame` returned (replies and shutdown it has handled itself)."""
        kind = frame[0]
        if kind == "call":
            self.serve(frame[1], frame[2], frame[3], frame[4])
        elif kind == "stream":
            self.serve_stream(frame[1], frame[2], frame[3], frame[4], frame[5])
        elif kind == "credit":
            self.add_credit(frame[1], frame[2])
        elif kind == "cancel":
            self.cancel(frame[1])
        elif kind == "closed":
            exit_now(0)

    def serve(self, id, method, args, kwargs):
        fn, is_async = self.methods[method]
        if is_async:
            self.spawn(id, lambda: fn(*args, **kwargs))
            return
        try:
            result = fn(*args, **kwargs)
            kind = type(result)  # exact types: this runs for every call
            if kind is _GENERATOR:
                # Each value a generator yields is one output (pipeline nodes).
                result = list(result)
        except Exception as e:
            self.reply_exception(id, e)
            return
        if kind is _ASYNC_GENERATOR:
            self.spawn(id, lambda: _collect(result))
            return
        try:
            _native.reply(id, result)
        except _CONVERSION_ERRORS as e:
            if inspect.isawaitable(result):
                # A `def` that returned an awaitable (e.g. a decorated coroutine).
                self.spawn(id, lambda: result)
            else:
                self.reply_exception(id, e)

    def finish_call(self, id, result, exc):
        """What the native loop leaves to Python after a plain method returned: an
        exception, a generator, an async generator, an awaitable, or a value that does not
        convert."""
        if exc is not None:
            self.reply_exception(id, exc)
            return
        kind = type(result)
        if kind is _GENERATOR:
            try:
                result = list(result)
            except Exception as e:
                self.reply_exception(id, e)
                return
        elif kind is _ASYNC_GENERATOR:
            self.spawn(id, lambda: _collect(result))
            return
        try:
            _native.reply(id, result)
        except _CONVERSION_ERRORS as e:
            if inspect.isawaitable(result):
                # A `def` that returned an awaitable (e.g. a decorated coroutine).
                self.spawn(id, lambda: result)
            else:
                self.reply_exception(id, e)

    def reply_exception(self, id, exc):
        _native.reply_error(id, *describe(exc))

    # -- streaming calls --------------------------------------------------------------
    #
    # Each value a generator yields (each item of a returned list) goes to the host as soon
    # as it exists, while the host's credit lasts: the generator is not resumed until there
    # is credit for its next value, so a slow consumer downstream holds it at its `yield`.
    # A `def` generator runs on a thread of its own (as an `async def` one runs on the loop),
    # so the receiving thread stays free: a generator waiting for credit holds up no other
    # call. A cancel stops a `def` generator at its next `yield` (it is closed) and cancels
    # an `async def` one's task.

    def serve_stream(self, id, method, args, kwargs, window):
        fn, is_async = self.methods[method]
        stream = _Stream(window)
        with self.lock:
            self.streams[id] = stream
        if is_async:
            self.spawn(id, lambda: self._stream_async(id, stream, fn(*args, **kwargs)))
            return
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            self._end_stream(id)
            self.reply_exception(id, e)
            return
        if type(result) is _ASYNC_GENERATOR or inspect.isawaitable(result):
            self.spawn(id, lambda: self._stream_async(id, stream, result))
            return
        threading.Thread(
            target=self._stream_sync,
            args=(id, stream, result),
            name=f"troupe-stream-{id}",
            daemon=True,
        ).start()

    def _stream_sync(self, id, stream, result):
        """Runs on the stream's own thread."""
        items = _items(result)
        try:
            while True:
                with stream.cond:
                    stream.cond.wait_for(stream.ready)
                if stream.cancelled:
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()
                    _native.reply_cancelled(id)
                    return
                try:
                    item = next(items)
                except StopIteration:
                    break
                self._send_item(id, stream, item)
        except Exception as e:
            self.reply_exception(id, e)
            return
        finally:
            self._end_stream(id)
        _native.reply(id, None)

    async def _stream_async(self, id, stream, result):
        """Runs on the loop as the call's task: what it returns (None) answers the call."""
        try:
            if type(result) is not _ASYNC_GENERATOR and inspect.isawaitable(result):
                result = await result
            if type(result) is _ASYNC_GENERATOR:
                try:
                    while True:
                        await self._credit(stream)
                        try:
                            item = await result.__anext__()
                        except StopAsyncIteration:
                            return None
                        self._send_item(id, stream, item)
                finally:
                    await result.aclose()
            items = _items(result)
            for item in items:
                await self._credit(stream)
                self._send_item(id, stream, item)
            return None
        finally:
            self._end_stream(id)

    async def _credit(self, stream):
        while True:
            with stream.cond:
                if stream.credit > 0:
                    return
                if stream.event is None:
                    stream.event = asyncio.Event()
                stream.event.clear()
            await stream.event.wait()

    def _send_item(self, id, stream, item):
        _native.send_item(id, item)
        with stream.cond:
            stream.credit -= 1

    def _end_stream(self, id):
        with self.lock:
            self.streams.pop(id, None)

    def add_credit(self, id, items):
        with self.lock:
            stream = self.streams.get(id)
        if stream is None:
            return
        with stream.cond:
            stream.credit += items
            stream.cond.notify_all()
            event = stream.event
        if event is not None:
            self.loop.call_soon_threadsafe(event.set)

    # -- the asyncio thread -----------------------------------------------------------

    def ensure_loop(self):
        if self.loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=self._run_loop, args=(loop,), name="troupe-asyncio", daemon=True
            )
            self.loop, self.loop_thread = loop, thread
            thread.start()
        return self.loop

    @staticmethod
    def _run_loop(loop):
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def spawn(self, id, make):
        """Runs ``await make()`` as a task on the loop; its outcome answers call ``id``."""
        self.ensure_loop().call_soon_threadsafe(self._start_task, id, make)

    def _start_task(self, id, make):
        task = self.loop.create_task(_invoke(make))
        self.tasks[id] = task
        task.add_done_callback(functools.partial(self._finish_task, id))

    def _finish_task(self, id, task):
        if self.tasks.get(id) is task:
            del self.tasks[id]
        try:
            if task.cancelled():
                _native.reply_cancelled(id)
                return
            exc = task.exception()
            if exc is not None:
                self.reply_exception(id, exc)
                return
            try:
                _native.reply(id, task.result())
            except _CONVERSION_ERRORS as e:
                self.reply_exception(id, e)
        except ConnectionError:
            pass  # the host is gone; the main thread exits

    def cancel(self, id):
        """The host cancels its call ``id``: its task is cancelled, a ``def`` generator it
        streams stops at its next ``yield`` (any other ``def`` method runs to its end)."""
        with self.lock:
            stream = self.streams.get(id)
        if stream is not None:
            with stream.cond:
                stream.cancelled = True
                stream.cond.notify_all()
        if self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._cancel_task, id)
            except RuntimeError:
                pass  # the loop is closed: nothing runs any more

    def _cancel_task(self, id):
        task = self.tasks.get(id)
        if task is not None:
            task.cancel()

    # -- calls out --------------------------------------------------------------------

    def call_blocking(self, kind, name, method, args, kwargs):
        """Calls out and blocks until the answer comes."""
        thread = threading.current_thread()
        if thread is self.loop_thread:
            target = _target_text(kind, name)
            raise RuntimeError(
                f"{target}.{method}() blocks, and this is the asyncio thread that runs async "
                f"methods: use `await {target}.aio.{method}(...)` here"
            )
        box = []
        # Filled by the thread holding the receive turn, before it gives the turn up (which
        # wakes this thread to look at the box).
        deliver = box.append

        with self.lock:
            id = _native.call(kind, name, method, args, kwargs)
            self.waiters[id] = deliver
        # Receive while nobody else does: nested calls from the host run inline here, and
        # replies for other waiters go into their boxes.
        handle = self.handle
        filled = box.__len__
        while not box:
            frame = self.next_frame(filled)
            if frame is not None:
                handle(frame)
        return _outcome(box[0])

    async def call_async(self, kind, name, method, args, kwargs):
        """Calls out and awaits the answer; cancelling the await cancels the call."""
        if threading.current_thread() is self.main_thread:
            target = _target_text(kind, name)
            raise RuntimeError(
                f"`await {target}.aio.{method}()` cannot run on the main thread, which must "
                f"receive its reply: call {target}.{method}() there, or await it from an "
                "async def method"
            )
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def deliver(outcome):
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:
                pass  # that loop is closed; nobody waits

        with self.lock:
            id = _native.call(kind, name, method, args, kwargs)
            self.waiters[id] = deliver
        try:
            outcome = await future
        except asyncio.CancelledError:
            with self.lock:
                waiting = self.waiters.pop(id, None) is not None
            if waiting:
                try:
                    _native.cancel(id)
                except ConnectionError:
                    pass
            raise
        return _outcome(outcome)

    # -- shutdown ---------------------------------------------------------------------

    def shutdown(self):
        """``prepare_shutdown``, then ``ShutdownDone``."""
        if self.instance is not None:
            try:
                self.run_hook(self.instance.prepare_shutdown)
            except Exception:
                traceback.print_exc()
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        _native.shutdown_done()


def find_extension_class(module, name):
    """The ``Extension`` subclass ``name`` of ``module``, or its only one."""
    if name:
        cls = getattr(module, name, None)
        if not (isinstance(cls, type) and issubclass(cls, Extension)):
            raise LookupError(
                f"{module.__name__}.{name} is not a troupe.Extension subclass"
                if cls is not None
                else f"module {module.__name__} has no class {name}"
            )
        return cls
    found = [
        v
        for v in vars(module).values()
        if isinstance(v, type)
        and issubclass(v, Extension)
        and v is not Extension
        and v.__module__ == module.__name__
    ]
    if len(found) == 1:
        return found[0]
    if not found:
        raise LookupError(f"module {module.__name__} defines no troupe.Extension subclass")
    names = ", ".join(sorted(c.__qualname__ for c in found))
    raise LookupError(
        f"module {module.__name__} defines several troupe.Extension subclasses ({names}): "
        "name the one to load in the extension's configuration (class)"
    )


def public_methods(instance):
    """``{name: (bound method, is_async)}`` of what the host may call."""
    cls = type(instance)
    methods = {}
    for name in dir(cls):
        if name.startswith("_") or name in HOOKS:
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, (staticmethod, classmethod)) or inspect.isfunction(static):
            pass
        elif isinstance(static, type) or not callable(static):
            continue  # properties, constants, nested classes
        fn = getattr(instance, name)
        methods[name] = (fn, inspect.iscoroutinefunction(fn))
    return methods


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def exit_now(code):
    """Leaves at once (the host is gone, or start-up failed): no hooks, no waiting for
    threads."""
    _flush()
    os._exit(code)


def _unbuffer():
    # The host forwards stdout and stderr line by line.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True, write_through=True)
        except Exception:
            pass


def main():
    """``python -m troupe``: connect, start, serve, shut down."""
    global _CURRENT
    _unbuffer()
    # Ctrl-C in a terminal reaches the whole process group: the host decides when its
    # extensions stop (and stops them gracefully), so the child does not die of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _native.connect()
    except (ConnectionError, RuntimeError) as e:
        print(f"troupe: {e}", file=sys.stderr)
        exit_now(2)
    # Processes this extension starts are not troupe children (the descriptors are
    # close-on-exec already).
    os.environ.pop("TROUPE_FDS", None)
    runtime = Runtime()
    _CURRENT = runtime
    frame = _native.recv()
    if frame[0] == "shutdown":
        _native.shutdown_done()
        exit_now(0)
    if frame[0] != "start":
        exit_now(0)
    try:
        runtime.start(frame[1])
    except BaseException as e:
        try:
            _native.start_failed(*describe(e))
        finally:
            exit_now(1)
    runtime.serve_forever()
    runtime.shutdown()
    _flush()
    sys.exit(0)
