"""User metadata on the way in: `check_metadata` validates what a caller attaches to a file, and
the index keeps a record of every field's type (`field_types`, `record_field_types`), which
filters.py uses to encode values and check `where` filters."""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Optional

from .catalog import Catalog
from .errors import InvalidInputError
from .filters import ISO_SUFFIX, RESERVED_KEYS, field_types_of, merge_field_types

__all__ = ["check_metadata", "field_types", "record_field_types"]


def check_metadata(metadata: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Validate user metadata: string keys, scalar values, no reserved names."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"metadata must be a dict, got {type(metadata).__name__}")
    out: Dict[str, Any] = {}
    for k, v in metadata.items():
        if not isinstance(k, str) or not k or k.startswith("$"):
            raise InvalidInputError(f"metadata key {k!r} must be a non-empty string not starting with '$'")
        if k in RESERVED_KEYS:
            raise InvalidInputError(f"metadata key {k!r} is reserved; reserved keys: {sorted(RESERVED_KEYS)}")
        if k.endswith(ISO_SUFFIX):
            raise InvalidInputError(f"metadata key {k!r}: the suffix {ISO_SUFFIX!r} is reserved for stored "
                                    "dates; rename the field")
        if v is None:
            continue
        if not isinstance(v, (str, int, float, bool)):
            raise InvalidInputError(f"metadata value for {k!r} must be a string, number or bool, "
                                    f"got {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise InvalidInputError(f"metadata value for {k!r} must be a finite number, got {v!r}")
        if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
            raise InvalidInputError(f"metadata value for {k!r} is too large for the store (64-bit "
                                    "integers); give it as a string")
        out[k] = v
    return out


def field_types(catalog: Catalog) -> Dict[str, str]:
    """The type of every user metadata field seen in this index (see filters.py)."""
    return json.loads(catalog.get_meta("fields") or "{}")


def record_field_types(catalog: Catalog, metadata: Dict[str, Any]) -> Dict[str, str]:
    """Merge the types of `metadata`'s fields into the index's record, and return the record."""
    new = field_types_of(metadata)
    return catalog.update_meta_json("fields", lambda known: merge_field_types(known, new), {})
