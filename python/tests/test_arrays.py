"""numpy arrays between a Python host and its extensions, without copies both ways."""

import numpy as np

import troupe


def test_a_pool_array_from_the_host_reaches_the_extension_without_a_copy(host):
    array = troupe.zeros(1 << 20, "float64")
    array[:] = 0.5
    region, offset, local = troupe.slot_of(array)
    assert local
    seen = host["probe"].where(array)
    assert seen["sum"] == 0.5 * (1 << 20)
    # The child views the very slot the host wrote, read-only.
    assert seen["slot"] == [region, offset, False]
    assert not seen["writeable"]
    # Sent, the host's array is read-only too: the receiver reads the same memory.
    assert not array.flags.writeable


def test_a_large_plain_array_is_copied_once_into_shared_memory(host):
    array = np.arange(1 << 18, dtype=np.float32)
    seen = host["probe"].where(array)
    assert seen["sum"] == float(array.sum())
    assert seen["slot"] is not None


def test_an_array_made_in_the_extensions_pool_comes_back_without_a_copy(host):
    result = host["probe"].make(1 << 20, 2.0)
    assert result.dtype == np.float64 and result.shape == (1 << 20,)
    assert float(result[0]) == 2.0 and float(result[-1]) == 2.0
    region, offset, local = troupe.slot_of(result)
    assert not local  # the child's slot, mapped here
    assert not result.flags.writeable


def test_small_arrays_and_dtypes_round_trip(host):
    for dtype in ("int8", "uint16", "int32", "int64", "float32", "float64", "bool"):
        array = np.arange(12).reshape(3, 4).astype(dtype)
        back = host["probe"].echo(array)["args"][0]
        assert back.dtype == array.dtype and back.shape == (3, 4)
        assert np.array_equal(back, array)
