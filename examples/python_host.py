"""Three Python extensions with conflicting dependencies, one Python singleton, calls in
every direction: the Python counterpart of examples/plugin_host.rs.

    pip install .                      # from a checkout: the troupe-actors package
    python examples/python_host.py

- `legacy` is pinned to numpy 1.26, `modern` to numpy 2.x, `pure` has no dependencies:
  each runs in its own process and venv (built once with uv, then reused).
- `kv`, a plain Python object of this program, is a singleton all three call.
- The host sends numpy arrays to both numpy extensions and gets arrays back.
- `modern` calls `pure` through the host (it is granted `pure`).
- `pure` is not granted `legacy`: that call is refused with a permission error.
"""

import asyncio
import pathlib
import time

import numpy as np

import troupe

PLUGINS = pathlib.Path(__file__).resolve().parent / "plugins"


class KeyValue:
    """The singleton: a dict behind put/get/incr/items. Its `def` methods are served one
    at a time, in order, on a thread of the host's, whichever extension calls."""

    def __init__(self):
        self._items = {}

    def put(self, key, value):
        self._items[key] = value

    def get(self, key, default=None):
        return self._items.get(key, default)

    def incr(self, key, by=1):
        self._items[key] = self._items.get(key, 0) + by
        return self._items[key]

    def items(self):
        return dict(self._items)


def show(value):
    if isinstance(value, np.ndarray):
        return f"{value.tolist()} ({value.dtype})"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def main():
    kv = KeyValue()
    host = troupe.Host(singletons={"kv": kv})
    host.add_extension(
        "legacy", "legacy_stats", path=PLUGINS,
        dependencies=["numpy==1.26.4"], singletons=["kv"],
    )
    host.add_extension(
        "modern", "modern_stats", path=PLUGINS,
        dependencies=["numpy>=2,<3"], singletons=["kv"], extensions=["pure"],
    )
    host.add_extension("pure", "pure_text", path=PLUGINS, singletons=["kv"])

    print("preparing three extensions:")
    began = time.monotonic()
    with host:  # start(): builds the venvs (cached), starts the extensions, waits for them
        for name in host.extensions:
            print(f"  [{name}] running, pid {host[name].pid}")
        print(f"all up in {time.monotonic() - began:.2f} s\n")

        print("what each extension sees:")
        for name in host.extensions:
            seen = host[name].describe()
            print(f"  {name:<7} python {seen['python']}  numpy {seen['numpy']}")

        matrix = np.array([[4.0, 3.0], [6.0, 3.0]])
        print("\ncomputing with the matrix [[4, 3], [6, 3]]:")
        legacy, modern, pure = host["legacy"], host["modern"], host["pure"]
        print(f"  legacy (numpy 1.26) determinant -> {show(legacy.determinant(matrix))}")
        samples = np.array([0.5, -2.0, 1.0, 0.25], dtype=np.float32)
        print(f"  legacy normalize [0.5, -2, 1, 0.25] -> {show(legacy.normalize(samples))}")
        print(f"  modern (numpy 2.x, linalg.vecdot) row norms -> {show(modern.row_norms(matrix))}")
        values = np.array([1.0, 4.0, 9.0, 16.0, 25.0])
        print(f"  modern asked pure, through the host -> {modern.summary(values)}")

        try:
            pure.describe_values("not a list")
        except troupe.RemoteExceptionError as e:
            print(f"  pure with a bad argument -> {e.type_name}: {e.remote_message}")
        print(f"  pure calling legacy (not granted) -> {pure.try_legacy()}")

        async def together():
            # Awaited calls: the three run at once, each in its own process.
            return await asyncio.gather(
                legacy.aio.determinant(matrix * 2),
                modern.aio.row_norms(matrix * 2),
                pure.aio.describe_values([2.0, 3.0, 5.0, 7.0]),
            )

        det, norms, text = asyncio.run(together())
        print("\nthree awaited calls at once (matrix * 2):")
        print(f"  legacy determinant -> {show(det)}")
        print(f"  modern row norms -> {show(norms)}")
        print(f"  pure -> {text}")

        print("\nthe kv singleton now holds (asked through the host):")
        for key, value in host.singleton("kv").items().items():
            print(f"  {key} = {value}")

        stopping = time.monotonic()
    print(f"\nstopped all extensions in {(time.monotonic() - stopping) * 1e3:.0f} ms")
    print(f"the same object, read directly: pure.visits = {kv.get('pure.visits')}")


if __name__ == "__main__":
    main()
