"""`tracebaton serve` with the collector's log on stderr at DEBUG: retention passes (rows
pruned and stored, commit times) and pins, for tests that wait on them.

    python serve_logged.py serve --db FILE ...      (the arguments of `tracebaton`)
"""

from __future__ import annotations

import logging
import sys

if __name__ == "__main__":  # the decode workers import this module again: they must not serve
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("tracebaton.collector").setLevel(logging.DEBUG)
    from tracebaton._cli import main

    sys.exit(main(sys.argv[1:]))
