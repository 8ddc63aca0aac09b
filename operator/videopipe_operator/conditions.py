"""Kubernetes-style conditions (`type`, `status`, `reason`, `message`, `lastTransitionTime`).

Pure list arithmetic used by the status builders: setting a condition keeps its transition time
when its status did not change, the convention `kubectl wait --for=condition=...` relies on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Json = dict[str, Any]


def _status_text(status: bool | str) -> str:
    if isinstance(status, bool):
        return "True" if status else "False"
    return status


def find(conditions: Iterable[Json] | None, type_: str) -> Json | None:
    for cond in conditions or ():
        if cond.get("type") == type_:
            return cond
    return None


def is_true(conditions: Iterable[Json] | None, type_: str) -> bool:
    cond = find(conditions, type_)
    return bool(cond and cond.get("status") == "True")


def set_condition(
    conditions: Iterable[Json] | None,
    type_: str,
    status: bool | str,
    reason: str,
    message: str,
    now: str,
    observed_generation: int | None = None,
) -> list[Json]:
    """A new list with `type_` set; other conditions kept in their order."""
    text = _status_text(status)
    old = find(conditions, type_)
    since = old["lastTransitionTime"] if old and old.get("status") == text else now
    new: Json = {
        "type": type_,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }
    if observed_generation is not None:
        new["observedGeneration"] = observed_generation
    out = [c for c in conditions or () if c.get("type") != type_]
    index = next((i for i, c in enumerate(conditions or ()) if c.get("type") == type_), len(out))
    out.insert(index, new)
    return out


__all__ = ["find", "is_true", "set_condition"]
