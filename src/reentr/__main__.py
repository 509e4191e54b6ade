"""`python -m reentr`: the same entry point as the `reentr` console script."""

from reentr.cli import main

main()
