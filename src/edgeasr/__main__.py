"""``python -m edgeasr`` runs the command line."""

from edgeasr.cli import main

raise SystemExit(main())
