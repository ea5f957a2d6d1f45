"""``python -m prist_builder`` runs the ``prist`` command line."""

from prist_builder.cli import main

main()
