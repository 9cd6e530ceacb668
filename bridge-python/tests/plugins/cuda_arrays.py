"""A test extension for CUDA arrays: reads what the host sent, makes device arrays to return,
keeps one, crashes on demand. Uses torch or cupy when importable, else the CUDA driver
through ctypes (so it runs in a venv with no GPU library at all)."""

import ctypes
import os
import signal

import troupe

try:
    import torch

    _LIB = "torch" if torch.cuda.is_available() else None
except ImportError:
    _LIB = None
if _LIB is None:
    try:
        import cupy

        _LIB = "cupy"
    except ImportError:
        _LIB = "driver"


class _Driver:
    """The few driver calls the ctypes path needs, on device 0's primary context."""

    def __init__(self):
        self.cuda = ctypes.CDLL("libcuda.so.1")
        self.check(self.cuda.cuInit(0), "cuInit")
        dev = ctypes.c_int()
        self.check(self.cuda.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
        self.ctx = ctypes.c_void_p()
        self.check(
            self.cuda.cuDevicePrimaryCtxRetain(ctypes.byref(self.ctx), dev),
            "cuDevicePrimaryCtxRetain",
        )

    @staticmethod
    def check(code, call):
        if code != 0:
            raise RuntimeError(f"{call} failed: CUresult {code}")

    def bind(self):
        self.check(self.cuda.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")

    def to_host(self, ptr, nbytes):
        self.bind()
        out = (ctypes.c_ubyte * nbytes)()
        self.check(
            self.cuda.cuMemcpyDtoH_v2(out, ctypes.c_uint64(ptr), ctypes.c_size_t(nbytes)),
            "cuMemcpyDtoH",
        )
        return bytes(out)


class DriverArray:
    """A device allocation made with cuMemAlloc, exposed with the CUDA array interface."""

    def __init__(self, driver, data):
        self.driver = driver
        driver.bind()
        ptr = ctypes.c_uint64()
        driver.check(driver.cuda.cuMemAlloc_v2(ctypes.byref(ptr), len(data)), "cuMemAlloc")
        self.ptr = ptr.value
        driver.check(
            driver.cuda.cuMemcpyHtoD_v2(ctypes.c_uint64(self.ptr), data, len(data)),
            "cuMemcpyHtoD",
        )
        self.__cuda_array_interface__ = {
            "shape": (len(data),),
            "typestr": "|u1",
            "data": (self.ptr, False),
            "version": 3,
            "strides": None,
            "stream": None,
        }

    def __del__(self):
        self.driver.bind()
        self.driver.cuda.cuMemFree_v2(ctypes.c_uint64(self.ptr))


def pattern(n, seed):
    """The bytes the host checks: ``(i * 7 + seed) % 251``."""
    return bytes((i * 7 + seed) % 251 for i in range(n))


class CudaArrays(troupe.Extension):
    def initialize(self):
        self.driver = _Driver() if _LIB == "driver" else None
        self.kept = None

    def library(self):
        return _LIB

    def read(self, array):
        """``[library, type, shape, typestr, checksum of the bytes, the bytes]`` of a received
        array."""
        interface = array.__cuda_array_interface__
        assert interface["version"] == 3 and interface["strides"] is None
        assert array.__dlpack_device__() == (2, array.device)
        if _LIB == "torch":
            tensor = torch.from_dlpack(array)
            assert tensor.data_ptr() == array.ptr, "a view, not a copy"
            as_tensor = torch.as_tensor(array, device="cuda")
            assert as_tensor.data_ptr() == array.ptr
            data = tensor.view(torch.uint8).cpu().numpy().tobytes()
        elif _LIB == "cupy":
            view = cupy.asarray(array)
            assert view.data.ptr == array.ptr
            data = cupy.asnumpy(view.view(cupy.uint8)).tobytes()
        else:
            data = self.driver.to_host(interface["data"][0], array.nbytes)
        return [
            _LIB,
            type(array).__name__,
            list(array.shape),
            interface["typestr"],
            sum(data),
            bytes(data),
        ]

    def make(self, n, seed):
        """A device array of ``n`` bytes of the pattern, made here and returned."""
        data = pattern(n, seed)
        if _LIB == "torch":
            return torch.tensor(list(data), dtype=torch.uint8, device="cuda")
        if _LIB == "cupy":
            return cupy.asarray(bytearray(data), dtype=cupy.uint8)
        return DriverArray(self.driver, data)

    def echo(self, array):
        return array

    def keep(self, array):
        self.kept = array
        return array.nbytes

    def forget(self):
        self.kept = None
        import gc

        gc.collect()

    def stats(self):
        return dict(troupe.cuda_stats())

    def crash(self):
        os.kill(os.getpid(), signal.SIGKILL)
