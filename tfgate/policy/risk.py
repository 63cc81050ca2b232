"""Risk ranking of a change: how much data it can lose."""

from __future__ import annotations

from tfgate.model import ChangeClass, Risk


def _rank(cls: ChangeClass, *, data_bearing: bool, safety_net_removed: bool, protected: bool) -> Risk:
    """HIGH: a protected change, or a destroy / safety-net removal on a data-bearing type.
    MEDIUM: other destroys, forgets and safety-net removals. LOW: creates and updates. NONE: no-op, read."""
    if protected:
        return Risk.HIGH
    if cls.destroys or safety_net_removed:
        return Risk.HIGH if data_bearing else Risk.MEDIUM
    if cls is ChangeClass.FORGET:
        return Risk.MEDIUM
    if cls in (ChangeClass.CREATE, ChangeClass.UPDATE):
        return Risk.LOW
    return Risk.NONE


_TABLE = {
    (cls, data_bearing, safety, protected): _rank(
        cls, data_bearing=data_bearing, safety_net_removed=safety, protected=protected
    )
    for cls in ChangeClass
    for data_bearing in (False, True)
    for safety in (False, True)
    for protected in (False, True)
}


def rank(cls: ChangeClass, *, data_bearing: bool, safety_net_removed: bool, protected: bool) -> Risk:
    """Risk of a change (see _rank); a table lookup, as it runs for every change of large plans."""
    return _TABLE[cls, data_bearing, safety_net_removed, protected]
