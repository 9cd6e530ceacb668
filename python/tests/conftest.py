"""Fixtures for the Python host's tests: real extensions in real venvs (built with uv once,
then cached), called from a real troupe.Host in this process."""

import pathlib

import pytest

import troupe

PLUGINS = pathlib.Path(__file__).parent / "plugins"


class Unprintable(Exception):
    """An exception whose message cannot be made."""

    def __str__(self):
        raise RuntimeError("no message")


class Store:
    """A Python singleton: a key-value store with sync and async methods."""

    def __init__(self):
        self.items = {}

    def put(self, key, value):
        self.items[key] = value

    def get(self, key, default=None):
        return self.items.get(key, default)

    def incr(self, key, by=1):
        self.items[key] = self.items.get(key, 0) + by
        return self.items[key]

    def explode(self):
        raise Unprintable()

    async def slow_get(self, key):
        import asyncio

        await asyncio.sleep(0.01)
        return self.items.get(key)


class Service:
    """What the host program serves to extensions as ``troupe.host``."""

    def __init__(self):
        self.host = None

    def upper(self, text):
        return text.upper()

    def down(self, depth):
        if depth <= 0:
            return 0
        return self.host["probe"].down(depth - 1) + 1


@pytest.fixture(scope="session")
def plugins():
    return PLUGINS


@pytest.fixture(scope="session")
def host():
    """One host for the session: ``probe`` (with numpy 2) granted the ``store``
    singleton, and a host service."""
    service = Service()
    host = troupe.Host(singletons={"store": Store()}, service=service, quiet=True)
    host.add_extension(
        "probe", "probe", path=PLUGINS, dependencies=["numpy>=2,<3"], singletons=["store"]
    )
    host.start()
    service.host = host
    yield host
    host.shutdown()
