"""Start and stop a canary rollout: the registry's ``canary`` alias and the rollout file.

``start`` puts a version (by default the ``challenger``) under canary against the current
``champion``: the alias ``canary`` is set on it, the rollout file written (the server picks
it up on its next poll, loads the version and routes ``share`` of users to it), and the
start recorded. ``stop`` ends an active rollout by hand, keeping the champion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlref.canary.state import (
    CANARY,
    DecisionKnobs,
    Rollout,
    RolloutError,
    append_decision,
    new_rollout,
    now,
    read_rollout,
    write_rollout,
)

if TYPE_CHECKING:
    from mlref.registry import Registry
    from mlref.settings import Settings


def start(
    settings: Settings,
    share: float,
    *,
    version: str | None = None,
    knobs: DecisionKnobs | None = None,
    registry: Registry | None = None,
    salt: str | None = None,
) -> Rollout:
    """Start a rollout of ``version`` (default: the challenger) on ``share`` of users."""
    from mlref.registry import CHALLENGER, CHAMPION, Registry

    current = read_rollout(settings.workdir)
    if current is not None and current.active:
        raise RolloutError(
            f"rollout {current.rollout_id} of version {current.canary_version} is still "
            "active: stop it first (mlref canary stop)"
        )
    reg = registry or Registry(settings)
    champion = reg.version_of(CHAMPION)
    if champion is None:
        raise RolloutError("no champion to compare with: promote a first model (mlref promote)")
    target = version or reg.version_of(CHALLENGER)
    if target is None:
        raise RolloutError("no challenger registered: train one (mlref train) or pass --version")
    if str(target) == str(champion):
        raise RolloutError(f"version {target} is already the champion: nothing to canary")
    rollout = new_rollout(str(target), str(champion), share, knobs=knobs, salt=salt)
    reg.client.set_registered_model_alias(reg.name, CANARY, str(target))
    reg.client.set_model_version_tag(reg.name, str(target), "mlref.canary", "active")
    write_rollout(settings.workdir, rollout)
    append_decision(
        settings.workdir, {"at": now(), "event": "started", "rollout": rollout.to_dict()}
    )
    return rollout


def stop(settings: Settings, *, registry: Registry | None = None) -> Rollout:
    """End the active rollout by hand; the champion keeps all traffic."""
    from mlref.registry import Registry

    current = read_rollout(settings.workdir)
    if current is None or not current.active:
        raise RolloutError("no active canary rollout to stop")
    ended = current.ended("stopped")
    write_rollout(settings.workdir, ended)
    reg = registry or Registry(settings)
    if reg.version_of(CANARY) is not None:
        reg.client.delete_registered_model_alias(reg.name, CANARY)
    reg.client.set_model_version_tag(reg.name, current.canary_version, "mlref.canary", "stopped")
    append_decision(settings.workdir, {"at": now(), "event": "stopped", "rollout": ended.to_dict()})
    return ended
