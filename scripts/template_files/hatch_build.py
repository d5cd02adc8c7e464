"""Editable installs: put this project's src/ first on the path.

mlgates' distribution also ships the reference package ``mlref`` (and its editable install
puts mlgates' src/ on the path). A project that keeps the package name ``mlref`` would then
import whichever editable install's .pth file sorts first by name, which depends on the
project's name. This hook adds a .pth that sorts before every hatchling editable .pth
(digits sort before ``_``), so this project's package wins whatever its name.
tests/test_layout.py checks the outcome in a fresh interpreter.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version != "editable":
            return  # a regular wheel carries the package itself
        pth = Path(tempfile.mkdtemp()) / "first.pth"
        pth.write_text(str(Path(self.root, "src").resolve()) + "\n")
        build_data["force_include_editable"][str(pth)] = "00_project_src_first.pth"
