"""numpy arrays in this process's shared-memory pool (an extension's, or a Python host's).

An array made with :func:`empty` or :func:`zeros` lies in a slot of this process's pool, so
returning it to the host (or passing it in a call) sends a descriptor, not the bytes: no
copy at all. Any other array is copied once into the pool when it is sent (if it is 64 KiB
or larger; smaller values travel inline).

Ownership: once such an array has been sent, troupe marks it read-only, and no other view of
it may be written either: the receiver reads the same memory. The slot returns to the pool
when the last Python reference here *and* every reference the host took are gone.

Arrays received from the host are read-only views of the host's memory; keeping one (or a
view of it) after the call returns keeps that memory alive until it is collected.
"""

import math

import numpy as np

from . import _native_module

_native = _native_module()

__all__ = ["empty", "zeros", "pool_stats", "slot_of"]


def _shape(shape):
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(n) for n in shape)


def _alloc(shape, dtype, zero):
    shape = _shape(shape)
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    view = _native.pool_alloc(nbytes, zero)
    return np.frombuffer(view, dtype=dtype, count=count).reshape(shape)


def empty(shape, dtype=float):
    """A writable array in the pool, like ``numpy.empty`` (its bytes are unspecified)."""
    return _alloc(shape, dtype, False)


def zeros(shape, dtype=float):
    """A writable array in the pool, like ``numpy.zeros``."""
    return _alloc(shape, dtype, True)


def pool_stats():
    """The pool's counters: ``live_slots``, ``live_bytes``, ``regions``, ``region_bytes``,
    and ``lent`` (slots the host holds) and ``owed`` (releases not yet sent to the host)."""
    return _native.pool_stats()


def slot_of(array):
    """``(region id, offset, local)`` of the pool slot ``array`` starts at, or ``None``."""
    return _native.slot_of(array)
