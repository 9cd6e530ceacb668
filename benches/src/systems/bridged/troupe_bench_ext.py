"""The extension troupe's harness measures (system `troupe-bridged`): the same methods
pyisolate's driver calls, as plain `def`s."""

import os

import troupe


class BenchExtension(troupe.Extension):
    def noop(self):
        return None

    def echo(self, data):
        return data

    def down(self, depth):
        """The extension's half of the nested chain: ext(5) -> host(4) -> ext(3) ..."""
        if depth <= 1:
            return 1
        return troupe.host.down(depth - 1) + 1

    def crash(self):
        os._exit(13)

    def item(self, value):
        """A pipeline node that passes its input on."""
        return value
