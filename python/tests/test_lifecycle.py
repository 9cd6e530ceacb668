"""Starting, crashing, restarting and stopping extensions from a Python host."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import troupe


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes; /proc says which.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


class Counter:
    """A Python singleton: counts."""

    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n


def wait_gone(pid, seconds=10.0):
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_conflicting_numpy_versions_run_side_by_side(plugins):
    host = troupe.Host(quiet=True)
    host.add_extension("legacy", "probe", path=plugins, dependencies=["numpy==1.26.4"])
    host.add_extension("modern", "probe", path=plugins, dependencies=["numpy>=2,<3"])
    with host:
        assert host["legacy"].versions()["numpy"] == "1.26.4"
        assert host["modern"].versions()["numpy"].startswith("2.")


def test_a_crash_fails_the_call_with_the_exit_code_and_the_extension_restarts(plugins):
    host = troupe.Host(quiet=True)
    host.add_extension("fragile", "probe", path=plugins, restart="permanent")
    with host:
        fragile = host["fragile"]
        first = fragile.pid
        with pytest.raises(troupe.CrashedError) as raised:
            fragile.crash(3)
        assert raised.value.cause == "Exited"
        assert raised.value.exit_code == 3
        deadline = time.monotonic() + 10
        while fragile.status()["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fragile.echo("again") == {"args": ["again"], "kwargs": {}}
        assert fragile.pid != first
        assert fragile.status()["restarts"] >= 1


def test_restart_events_say_how_it_ended_and_that_it_came_back(plugins):
    host = troupe.Host(quiet=True)
    host.add_extension("fragile", "probe", path=plugins, restart="permanent")
    with host:
        fragile = host["fragile"]
        events = fragile.events()
        assert events.next(timeout=0.05) is None
        with pytest.raises(troupe.CrashedError):
            fragile.crash(3)
        seen = []
        for event in events:
            seen.append(event)
            if event.kind == "started":
                break
        kinds = [event.kind for event in seen]
        assert kinds == ["exited", "restarting", "started"], seen
        assert seen[0].exit_code == 3 and seen[0].extension == "fragile"
        assert seen[1].attempt == 1 and seen[1].delay_s >= 0
        assert seen[2].instance == 2


def test_events_are_awaitable_and_end_when_the_extension_is_done(plugins):
    import asyncio

    host = troupe.Host(quiet=True)
    host.add_extension("fragile", "probe", path=plugins, restart="temporary")
    host.start()
    fragile = host["fragile"]
    events = fragile.events()

    async def main():
        os.kill(fragile.pid, signal.SIGKILL)
        seen = []
        async for event in events:
            seen.append(event)
        return seen

    try:
        seen = asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        host.shutdown()
    assert [event.kind for event in seen] == ["exited", "stopped"], seen
    assert seen[0].signal == signal.SIGKILL
    assert events.next(timeout=0.01) is None


def test_events_of_an_extension_already_done_end_at_once(plugins):
    host = troupe.Host(quiet=True)
    host.add_extension("once", "probe", path=plugins, restart="temporary")
    with host:
        once = host["once"]
        with pytest.raises(troupe.CrashedError):
            once.crash(0 + 5)
        deadline = time.monotonic() + 10
        while once.status()["state"] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(once.events()) == []
        assert once.events().next(timeout=0) is None


def test_shutting_down_ends_an_extensions_events(plugins):
    host = troupe.Host(quiet=True)
    host.add_extension("probe", "probe", path=plugins)
    host.start()
    events = host["probe"].events()
    host.shutdown()
    assert [event.kind for event in events][-1] == "stopped"


def test_a_start_up_exception_raises_start_error_with_the_traceback(tmp_path):
    (tmp_path / "broken.py").write_text("import troupe\nraise RuntimeError('cannot load')\n")
    host = troupe.Host(quiet=True)
    host.add_extension("broken", "broken", path=tmp_path)
    with pytest.raises(troupe.StartError) as raised:
        host.start()
    (extension, reason, traceback), = raised.value.failures
    assert extension == "broken"
    assert "cannot load" in reason
    assert "RuntimeError" in traceback


def test_a_bad_option_is_a_manifest_error_naming_the_key(plugins):
    host = troupe.Host(quiet=True)
    host.add_extension("probe", "probe", path=plugins, restart={"policy": "sometimes"})
    with pytest.raises(troupe.ManifestError, match="restart"):
        host.start()


def test_a_grant_to_an_unknown_singleton_is_a_manifest_error(plugins):
    host = troupe.Host(quiet=True)
    host.add_extension("probe", "probe", path=plugins, singletons=["missing"])
    with pytest.raises(troupe.ManifestError, match="missing"):
        host.start()


def test_a_manifest_file_is_loaded_with_its_singletons(tmp_path, plugins):
    manifest = tmp_path / "troupe.toml"
    manifest.write_text(
        textwrap.dedent(
            f"""
            [extensions.probe]
            module = "probe"
            path = "{plugins}"
            grants = {{ singletons = ["kv", "db"] }}

            [singletons.kv]
            kind = "kv"

            [singletons.db]
            kind = "python"
            """
        )
    )

    class Db:
        def lookup(self, key):
            return f"row {key}"

    with pytest.raises(troupe.ManifestError, match="db"):
        troupe.Host(manifest, quiet=True).start()
    with troupe.Host(manifest, singletons={"db": Db()}, quiet=True) as host:
        probe = host["probe"]
        assert probe.ask_singleton("db", "lookup", 7) == "row 7"
        probe.ask_singleton("kv", "put", "k", 1)
        assert host.singleton("kv").get("k") == 1


def run_script(body, plugins):
    """Runs a host program in a fresh interpreter; returns the process (stdout piped)."""
    script = textwrap.dedent(
        f"""
        import signal, sys, troupe
        # Ctrl-C raises KeyboardInterrupt even where the test runner's SIGINT is ignored
        # (a shell's background job).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        host = troupe.Host(quiet=True)
        host.add_extension("probe", "probe", path={str(plugins)!r})
        host.start()
        print(host["probe"].pid, flush=True)
        """
    ) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_interpreter_exit_leaves_no_child_behind(plugins):
    process = run_script("sys.exit(0)\n", plugins)
    pid = int(process.stdout.readline())
    assert process.wait(timeout=60) == 0
    assert wait_gone(pid)


def test_ctrl_c_during_a_blocking_call_stops_the_program_and_its_children(plugins):
    process = run_script(
        """
        try:
            host["probe"].sleep(60)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            raise
        """,
        plugins,
    )
    pid = int(process.stdout.readline())
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    assert process.stdout.readline().strip() == "interrupted"
    assert process.wait(timeout=30) != 0
    assert wait_gone(pid)


def test_a_forked_child_gets_a_clear_error_exits_and_the_parent_goes_on(plugins):
    process = run_script(
        """
        import os
        child = os.fork()
        if child == 0:
            try:
                host["probe"].noop()
                print("child: no error", flush=True)
            except RuntimeError as e:
                print("child:", e, flush=True)
            sys.exit(0)  # runs the exit hooks in the child: they must not hang
        _, status = os.waitpid(child, 0)
        print("child exit", os.waitstatus_to_exitcode(status), flush=True)
        print("parent", host["probe"].echo("x")["args"][0], flush=True)
        """,
        plugins,
    )
    pid = int(process.stdout.readline())
    said = process.stdout.readline()
    assert "does not survive fork()" in said, said
    assert process.stdout.readline().strip() == "child exit 0"
    assert process.stdout.readline().strip() == "parent x"
    assert process.wait(timeout=60) == 0
    assert wait_gone(pid)


def test_a_killed_host_program_takes_its_children_with_it(plugins):
    process = run_script("import time\ntime.sleep(60)\n", plugins)
    pid = int(process.stdout.readline())
    process.kill()
    process.wait(timeout=10)
    assert wait_gone(pid)


def test_a_manifest_may_grant_a_singleton_the_program_serves(tmp_path, plugins):
    manifest = tmp_path / "troupe.toml"
    manifest.write_text(
        f'[extensions.probe]\nmodule = "probe"\npath = "{plugins}"\n'
        'grants = { singletons = ["counter"] }\n'
    )

    with troupe.Host(manifest, singletons={"counter": Counter()}, quiet=True) as host:
        assert host["probe"].ask_singleton("counter", "incr") == 1


TIDY = """
import time, troupe

class Tidy(troupe.Extension):
    def initialize(self):
        time.sleep({start_s})

    def prepare_shutdown(self):
        time.sleep(1.0)
        with open({marker!r}, "a") as f:
            f.write("stopped gracefully\\n")
"""


def tidy_program(tmp_path, start_s, body):
    """A host program whose extension takes `start_s` to start and 1 s to stop, and
    writes `stopped` when it stopped gracefully."""
    marker = tmp_path / "marker"
    (tmp_path / "tidy.py").write_text(TIDY.format(start_s=start_s, marker=str(marker)))
    script = textwrap.dedent(
        f"""
        import signal, sys, troupe
        # Ctrl-C raises KeyboardInterrupt even where the test runner's SIGINT is ignored
        # (a shell's background job).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        host = troupe.Host(quiet=True)
        host.add_extension("tidy", "tidy", path={str(tmp_path)!r}, sandbox="off")
        """
    ) + textwrap.dedent(body)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    return process, marker


def test_ctrl_c_during_shutdown_lets_the_graceful_stop_finish(tmp_path):
    process, marker = tidy_program(
        tmp_path,
        0,
        """
        host.start()
        print(host["tidy"].pid, flush=True)
        try:
            host.shutdown()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            raise
        """,
    )
    pid = int(process.stdout.readline())
    time.sleep(0.3)  # inside prepare_shutdown's second
    process.send_signal(signal.SIGINT)
    assert process.stdout.readline().strip() == "interrupted"
    assert process.wait(timeout=60) != 0
    assert marker.read_text() == "stopped gracefully\n"
    assert wait_gone(pid)


def test_ctrl_c_during_start_stops_what_it_started_gracefully(tmp_path):
    process, marker = tidy_program(
        tmp_path,
        2,
        """
        print("starting", flush=True)
        try:
            host.start()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            raise
        """,
    )
    assert process.stdout.readline().strip() == "starting"
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    assert process.stdout.readline().strip() == "interrupted"
    assert process.wait(timeout=60) != 0
    assert marker.read_text() == "stopped gracefully\n"


def test_extensions_are_added_and_stopped_while_the_host_runs(plugins):
    with troupe.Host(quiet=True) as host:
        assert host.extensions == []
        host.add_extension("later", "probe", path=plugins)
        # A second one, granted to call the first.
        host.add_extension("late", "probe", path=plugins, extensions=["later"])
        late = host["late"]
        assert late.echo(1) == {"args": [1], "kwargs": {}}
        assert late.ask_extension("later", "echo", 2) == {"args": [2], "kwargs": {}}
        with pytest.raises(troupe.ManifestError, match="late"):
            host.add_extension("late", "probe", path=plugins)
        pid = late.pid
        assert host.stop_extension("late") is True
        assert wait_gone(pid)
        with pytest.raises(troupe.ActorStoppedError):
            late.echo(3)
        with pytest.raises(KeyError):
            host["late"]
        assert host.stop_extension("late") is False
        host.add_extension("late", "probe", path=plugins, extensions=["later"])
        assert host["late"].echo(4) == {"args": [4], "kwargs": {}}
        # Stopping one another is granted to call leaves the grant valid; calls fail.
        host.stop_extension("later")
        with pytest.raises(troupe.RemoteExceptionError, match="ActorStoppedError"):
            host["late"].ask_extension("later", "echo", 5)


def test_an_extension_added_while_running_may_call_the_programs_singletons(plugins):
    with troupe.Host(singletons={"counter": Counter()}, quiet=True) as host:
        host.add_extension("late", "probe", path=plugins, singletons=["counter"])
        assert host["late"].ask_singleton("counter", "incr") == 1


def test_an_extension_of_the_manifest_file_cannot_be_added_again(tmp_path, plugins):
    manifest = tmp_path / "troupe.toml"
    manifest.write_text(f'[extensions.probe]\nmodule = "probe"\npath = "{plugins}"\n')
    with troupe.Host(manifest, quiet=True) as host:
        assert host.stop_extension("probe")
        with pytest.raises(troupe.ManifestError, match="declared in"):
            host.add_extension("probe", "probe", path=plugins)


def test_an_extension_added_while_running_that_fails_raises_start_error(tmp_path):
    (tmp_path / "broken.py").write_text("import troupe\nraise RuntimeError('cannot load')\n")
    with troupe.Host(quiet=True) as host:
        with pytest.raises(troupe.StartError) as raised:
            host.add_extension("broken", "broken", path=tmp_path)
        ((extension, reason, traceback),) = raised.value.failures
        assert extension == "broken" and "cannot load" in traceback
        with pytest.raises(KeyError):
            host["broken"]
