"""Extensions on another host, from a Python program: a real `troupe serve` child on
loopback serves `echo`; the host's manifest names it with `host = ...` and calls it like a
local one, a local extension reaches it as granted, and the host's loss is HostLostError."""

import os
import pathlib
import socket
import subprocess
import threading
import time

import pytest

import troupe

from conftest import PLUGINS

ROOT = pathlib.Path(__file__).resolve().parents[2]


def troupe_binary():
    """The `troupe` binary scripts/test-python built (or TROUPE_BIN)."""
    path = pathlib.Path(os.environ.get("TROUPE_BIN", ROOT / "target" / "debug" / "troupe"))
    if not path.exists():
        pytest.skip(f"no troupe binary at {path}: build it with `cargo build -p troupe-cli`")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """`troupe serve --name py1` serving `echo`; yields its port; killed at the end."""
    port = free_port()
    manifest = tmp_path / "serve.toml"
    manifest.write_text(
        f'[extensions.echo]\nmodule = "remote_echo"\nclass = "RemoteEcho"\npath = "{PLUGINS}"\n'
    )
    child = subprocess.Popen(
        [str(troupe_binary()), "serve", "--name", "py1", "--listen",
         f"tcp/127.0.0.1:{port}", "--manifest", str(manifest)],
        stdout=subprocess.PIPE, text=True,
    )
    ready = threading.Event()

    def read():
        for line in child.stdout:
            if " ready on " in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(120), "troupe serve did not get ready"
        yield child, port
    finally:
        child.kill()
        child.wait()


def client_manifest(tmp_path, port):
    path = tmp_path / "client.toml"
    path.write_text(
        f'[hosts.py1]\nconnect = ["tcp/127.0.0.1:{port}"]\n\n'
        f'[extensions.echo]\nmodule = "remote_echo"\nhost = "py1"\n\n'
        f'[extensions.relay]\nmodule = "remote_echo"\nclass = "Relay"\npath = "{PLUGINS}"\n'
        f'grants = {{ extensions = ["echo"] }}\n'
    )
    return path


def test_a_remote_extension_is_called_like_a_local_one(served, tmp_path):
    child, port = served
    with troupe.Host(client_manifest(tmp_path, port), quiet=True) as host:
        echo = host["echo"]
        assert echo.add(2, 3) == 5
        assert echo.add("re", b="mote") == "remote"
        assert host["relay"].plus_remote(1) == 1001, "a local extension calls it as granted"
        with pytest.raises(troupe.CallTimeoutError):
            echo.with_timeout(0.3).nap(5)
        with pytest.raises(TypeError):
            echo.status()

        child.kill()
        child.wait()
        start = time.monotonic()
        with pytest.raises(troupe.HostLostError) as lost:
            while time.monotonic() - start < 5:
                echo.add(1, 1)
                time.sleep(0.02)
        assert lost.value.host == "py1"


def test_a_host_that_is_not_there_fails_the_start(tmp_path):
    path = client_manifest(tmp_path, free_port())
    host = troupe.Host(path, quiet=True)
    with pytest.raises(troupe.StartError, match="py1"):
        host.start()
