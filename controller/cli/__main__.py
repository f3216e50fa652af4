"""`python -m controller.cli` runs the polyfleet command line."""

from controller.cli import main

main()
