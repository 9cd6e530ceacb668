"""A pure-Python extension for the extension-host tests."""

import troupe


class Greeter(troupe.Extension):
    def greet(self, name):
        return f"hello, {name}"

    def ask(self, extension, name):
        """Calls another extension through the host (granted or not)."""
        try:
            return troupe.extension(extension).greet(name)
        except troupe.PermissionDeniedError as e:
            return f"refused: {e}"
