"""``python -m pipeline.cli`` runs the ``track-archive`` command."""

from . import main

main()
