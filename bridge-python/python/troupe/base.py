"""The base class of every troupe extension."""

HOOKS = frozenset(
    {"before_module_loaded", "on_module_loaded", "initialize", "prepare_shutdown"}
)


class Extension:
    """Base class of an extension: subclass it in the extension's module.

    Public methods (no leading underscore, not a hook) are what the host may call; each may
    be ``def`` (runs on the main thread, one at a time) or ``async def`` (runs on the
    extension's asyncio loop, concurrently). The hooks below run in the order the package
    docs give; each may be ``def`` or ``async def``. The class is created without
    arguments.
    """

    __module__ = "troupe"

    def before_module_loaded(self):
        """Runs first, once the instance exists."""

    def on_module_loaded(self, module):
        """Runs second, with the extension's imported module."""

    def initialize(self):
        """Runs last before the host may call: open resources here."""

    def prepare_shutdown(self):
        """Runs when the host stops the extension, before the process exits."""
