"""What a gate run shares: the marker and fixture names, how a gate test is recognised, and
the run's state in ``config.stash``.

It sits below ``mlgates.plugin`` (the entry point), ``mlgates.session`` (the machinery) and
``mlgates.fixture`` (the ``mlgates`` object), so each imports it one way and none of them
imports another to reach a shared name. Like the entry point it imports pytest and the
standard library only: it is loaded for every pytest run, gates on or off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mlgates.config import GatesConfig

MARKER = "mlgate"
FIXTURE = "mlgates"


def is_gate_item(item: pytest.Item) -> bool:
    """A gate test: marked ``mlgate`` or using the ``mlgates`` fixture."""
    return item.get_closest_marker(MARKER) is not None or FIXTURE in getattr(
        item, "fixturenames", ()
    )


@dataclass
class RunState:
    config: GatesConfig
    report_path: Path | None = None
    markdown_path: Path | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    written: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    workers: int | None = None


state_key = pytest.StashKey[RunState]()
