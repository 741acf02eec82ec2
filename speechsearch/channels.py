"""Channels of a multi-channel recording: the user's channel -> role mapping, and the streams a
file is transcribed as (each labelled channel on its own, or the mix).

A call recorded in stereo often holds one speaker per channel ("agent,customer"). Transcribing
each labelled channel on its own gives every segment its channel and its speaker (the role); a
file without a mapping, or a mono file, is mixed down and transcribed once.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .errors import InvalidInputError

__all__ = ["parse_channels", "plan_streams"]

Stream = Tuple[Optional[int], Optional[str]]  # (channel, role); (None, None): the mix of all channels


def parse_channels(value: Any, where: str = "channels") -> Dict[int, str]:
    """A channel -> role mapping from ``{"0": "agent", "1": "customer"}``, ``"agent,customer"``
    (roles in channel order) or ``"0=agent,1=customer"``."""
    if value is None or value == "" or value == {}:
        return {}
    items: List[Tuple[Any, Any]]
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        items = [tuple(p.split("=", 1)) if "=" in p else (i, p) for i, p in enumerate(parts)]  # type: ignore[misc]
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        raise InvalidInputError(f"{where}: expected a dict like {{0: 'agent', 1: 'customer'}} or a string "
                                f"like 'agent,customer', got {type(value).__name__}")
    out: Dict[int, str] = {}
    for k, v in items:
        try:
            ch = int(str(k).strip())
        except ValueError:
            raise InvalidInputError(f"{where}: channel {k!r} is not a channel number (0, 1, ...)") from None
        if ch < 0 or not isinstance(v, str) or not v.strip():
            raise InvalidInputError(f"{where}: channel {k!r} needs a non-empty role name, like 'agent'")
        out[ch] = v.strip()
    return out


def plan_streams(path: str, channels: Dict[int, str], n: int, warnings: List[str]) -> List[Stream]:
    """Which audio streams of `path` (a file of `n` channels) to transcribe: each channel of the
    `channels` mapping on its own, or the mix. A mapping naming a channel the file lacks is an
    error; a mapping given for a mono file is noted in `warnings` and the file mixed."""
    if channels and n > 1:
        missing = sorted(c for c in channels if c >= n)
        if missing:
            raise InvalidInputError(f"{path}: channel(s) {missing} are labelled but the file has only "
                                    f"{n} channel(s); fix the channels mapping for this file")
        return sorted(channels.items())
    if channels:
        warnings.append("a channels mapping was given but the file is mono; channels mixed")
    return [(None, None)]
