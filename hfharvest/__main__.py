"""`python -m hfharvest` runs the same entry point as the `hfharvest` console script."""

from hfharvest.entry import main

main()
