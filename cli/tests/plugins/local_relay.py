"""A local extension that calls `math`, served by another host, through troupe's host."""

import troupe


class LocalRelay(troupe.Extension):
    def plus_remote(self, item):
        # `math` runs on another host; the grant in the manifest lets this call through.
        return troupe.extension("math").add(item, 1000)

    def forbidden(self, item):
        return troupe.extension("math").add(item, 1)
