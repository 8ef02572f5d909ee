"""Process-table helpers for tests that check what outlives what (from /proc, Linux)."""

from __future__ import annotations

from pathlib import Path


def _stat(path: Path) -> list[str] | None:
    """The fields after the command name of a /proc/<pid>/stat file (state, parent, ...), or None."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie has finished)."""
    fields = _stat(Path(f"/proc/{pid}/stat"))
    return fields is not None and fields[0] != "Z"


def children(parents: int | list[int]) -> list[int]:
    """The live child processes of ``parents``."""
    wanted = {parents} if isinstance(parents, int) else set(parents)
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(stat)
        if fields is not None and int(fields[1]) in wanted and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def descendants(root: int) -> list[int]:
    """Every live process below ``root``."""
    found, todo = [], [root]
    while todo:
        below = children(todo.pop())
        found += below
        todo += below
    return found
