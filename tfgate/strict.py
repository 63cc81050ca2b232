"""Strict readers for small documents (manifests, hook input, approvals): a key given twice is an error.

JSON and YAML both let the last of two equal keys win silently, so a document can say two things at
once; a gate must refuse such input rather than guess which one was meant.
"""

from __future__ import annotations

import json
from functools import lru_cache

TYPE_CHECKING = False  # no `typing` at run time: the agent hook reads its input through json_loads
if TYPE_CHECKING:
    from typing import Any


class DuplicateKeyError(ValueError):
    """A mapping names the same key twice."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"duplicate key {key!r}")
        out[key] = value
    return out


def json_loads(data: bytes | str) -> Any:
    """``json.loads`` that refuses duplicate keys (raises ValueError, as json does for bad input)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data, object_pairs_hook=_no_duplicates)


def yaml_load(data: bytes | str) -> Any:
    """``yaml.safe_load`` (the C loader when available) that refuses duplicate mapping keys."""
    import yaml

    return yaml.load(data, Loader=_strict_yaml_loader())


@lru_cache(maxsize=1)
def _strict_yaml_loader() -> type:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor` merges; keys given beside it override it, as YAML intends
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        line = key_node.start_mark.line + 1
                        raise DuplicateKeyError(f"duplicate key {key!r} (line {line})")
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader
