"""``python -m kt.cli``."""

from kt.cli import main

main()
