"""`python -m hfharvest` runs the same entry point as the `hfharvest` console script."""

from hfharvest.cli import main

main()
