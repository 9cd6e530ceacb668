"""A python node that talks: print, logging, an exception, and one crash of its process."""

import logging
import os

import troupe

log = logging.getLogger("noisy")


class Noisy(troupe.Extension):
    def initialize(self):
        logging.basicConfig(level=logging.INFO)
        print("noisy: ready", flush=True)

    def handle(self, item, marker):
        if item == 2:
            raise ValueError("two is not welcome")
        if item == 4 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(3)
        log.info("handled %s", item)
        return item
