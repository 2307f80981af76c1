"""The base of every config section (gateway/config.py and the sinks' own):
a pydantic model that refuses unknown keys, so a typo never falls back to a
default silently; a section with a retry backoff has its bounds in order."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # secrets this section takes from the environment: variable -> option
    ENV: ClassVar[dict[str, str]] = {}

    @model_validator(mode="after")
    def _backoff_in_order(self) -> Section:
        low, high = getattr(self, "backoff_min_s", None), getattr(self, "backoff_max_s", None)
        if low is not None and high is not None and high < low:
            raise ValueError("backoff_max_s is below backoff_min_s")
        return self
