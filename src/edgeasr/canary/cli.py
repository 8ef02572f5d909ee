"""``edgeasr canary``: the canary stage's commands (temporary re-export while the split is under way)."""

from edgeasr.canary.router import add_canary_parser as add_parser

__all__ = ["add_parser"]
