"""The base of every config section (gateway/config.py and the sinks' own):
a pydantic model that refuses unknown keys, so a typo never falls back to a
default silently."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
