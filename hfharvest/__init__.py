"""hfharvest: harvest the Hugging Face Hub catalog, every sort walked to the end and merged."""

import gc

__version__ = "0.1.0"


def tune_gc() -> None:
    """Set the cyclic collector for a process that shapes pages (the walk's, or its worker).

    A walk allocates millions of short-lived, acyclic objects (parsed pages, records): at the
    default threshold of 700 allocations the collector would rescan them without end (about 7 %
    of a 100,000-model run). Cycles are rare here; they are still collected.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
