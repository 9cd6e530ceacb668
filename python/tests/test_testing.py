"""troupe.testing: an extension exercised in-process, with fake singletons and host."""

import pytest

import troupe
from troupe.testing import run_extension


class Greeter(troupe.Extension):
    def initialize(self):
        self.greeting = troupe.singleton("config").get("greeting")
        self.closed = False

    def greet(self, name):
        return f"{self.greeting}, {name}"

    async def shout(self, name):
        return (await troupe.host.aio.upper(self.greet(name))) + "!"

    def lookup(self, key):
        return troupe.extension("store").get(key)

    def prepare_shutdown(self):
        self.closed = True


class Config:
    def get(self, key):
        return {"greeting": "hi"}[key]


class Host:
    async def upper(self, text):
        return text.upper()


class Store:
    def get(self, key):
        raise KeyError(key)


def test_hooks_run_and_calls_reach_the_fakes():
    with run_extension(Greeter, singletons={"config": Config()}, host=Host()) as greeter:
        assert greeter.greet("ada") == "hi, ada"
        assert greeter.shout("ada") == "HI, ADA!"
        assert ("host", None, "upper", ("hi, ada",), {}) in greeter.runtime.calls
        instance = greeter.instance
    assert instance.closed


def test_a_fakes_exception_arrives_as_a_remote_exception():
    with run_extension(
        Greeter, singletons={"config": Config()}, extensions={"store": Store()}
    ) as greeter:
        with pytest.raises(troupe.RemoteExceptionError) as raised:
            greeter.lookup("k")
    assert raised.value.type_name == "KeyError"


def test_a_missing_target_and_method_are_typed_errors():
    with pytest.raises(troupe.TargetNotFoundError):
        with run_extension(Greeter):
            pass
    with run_extension(Greeter, singletons={"config": Config()}) as greeter:
        with pytest.raises(troupe.UnknownMethodError):
            greeter.initialize()
        with pytest.raises(troupe.TargetNotFoundError):
            greeter.shout("x")
