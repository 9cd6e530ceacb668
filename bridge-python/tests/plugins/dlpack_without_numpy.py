"""CPU tensors that speak DLPack, made with ctypes alone: what a venv with torch and no
numpy returns. Importing numpy here must fail (the venv has none)."""

import ctypes
import struct

import troupe


class _Device(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int)]


class _DType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _Tensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _Device),
        ("ndim", ctypes.c_int),
        ("dtype", _DType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _Managed(ctypes.Structure):
    _fields_ = [
        ("dl_tensor", _Tensor),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
    ]


_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]

# DLPack type codes: 0 int, 1 uint, 2 float.
_CODES = {"f": (2, 32), "d": (2, 64), "i": (0, 32), "q": (0, 64), "B": (1, 8)}


class CpuTensor:
    """A C-contiguous CPU tensor over bytes it owns, exposed through DLPack only."""

    def __init__(self, fmt, values, shape, strides=None):
        self.raw = ctypes.create_string_buffer(struct.pack(f"<{len(values)}{fmt}", *values))
        self.shape = (ctypes.c_int64 * len(shape))(*shape)
        self.strides = None if strides is None else (ctypes.c_int64 * len(strides))(*strides)
        code, bits = _CODES[fmt]
        self.managed = _Managed(
            _Tensor(
                ctypes.cast(self.raw, ctypes.c_void_p),
                _Device(1, 0),
                len(shape),
                _DType(code, bits, 1),
                self.shape,
                self.strides,
                0,
            ),
            None,
            None,
        )

    def __dlpack__(self, *args, **kwargs):
        return _capsule_new(ctypes.addressof(self.managed), b"dltensor", None)

    def __dlpack_device__(self):
        return (1, 0)


class WithoutNumpy(troupe.Extension):
    def has_numpy(self):
        try:
            import numpy  # noqa: F401
        except ImportError:
            return False
        return True

    def small(self):
        return CpuTensor("f", [1.5, 2.5, 3.5, 4.5, 5.5, 6.5], [2, 3])

    def large(self, n):
        # Past the shared-memory threshold: it travels through the pool.
        return CpuTensor("d", [float(i) for i in range(n)], [n])

    def strided(self):
        """Every other element of 0..10, as a 5-element view (stride 2)."""
        return CpuTensor("q", list(range(10)), [5], strides=[2])

    def transposed(self):
        """The transpose of [[0, 1, 2], [3, 4, 5]]: shape 3x2, strides (1, 3)."""
        return CpuTensor("i", list(range(6)), [3, 2], strides=[1, 3])

    def receive(self, arr):
        """What a host array is here, read through DLPack as a consumer (torch) would."""
        capsule = arr.__dlpack__()
        managed = _Managed.from_address(_capsule_pointer(capsule, b"dltensor"))
        t = managed.dl_tensor
        shape = [t.shape[i] for i in range(t.ndim)]
        count = 1
        for d in shape:
            count *= d
        raw = ctypes.string_at(t.data, count * t.dtype.bits // 8)
        values = struct.unpack(f"<{count}f", raw) if (t.dtype.code, t.dtype.bits) == (2, 32) else ()
        # A private copy: writing to it must be allowed (and leave the host's array alone).
        ctypes.memset(t.data, 0, len(raw))
        return {
            "type": type(arr).__name__,
            "shape": list(arr.shape),
            "dtype": arr.dtype,
            "device": list(arr.__dlpack_device__()),
            "dlpack_shape": shape,
            "sum": sum(values),
            "bytes_again": len(arr.tobytes()),
            "still": sum(struct.unpack(f"<{count}f", arr.tobytes())) if values else 0.0,
        }

    def echo(self, arr):
        return arr

    def empty(self):
        return CpuTensor("i", [], [0, 4])
