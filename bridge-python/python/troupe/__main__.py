"""Entry point of an extension's child process: ``python -m troupe``."""

from troupe._runtime import main

main()
