"""The config models' common ground: ``ConfigError``, the strict base model (unknown keys and
booleans where numbers belong are refused) and the finite-number check."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class ConfigError(ValueError):
    """The config file is missing, unreadable or invalid. The message names the key."""


MAX_WINDOW_SECONDS = 30 * 86_400  # an execution window; far inside what datetime arithmetic holds
_SHOWABLE_KEY = re.compile(r"[A-Za-z0-9_./-]{1,64}")  # config keys, symbols, assets


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        # pydantic would read `max_venue_retries: true` as 1; a boolean where a number belongs is a mistake
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                if isinstance(data.get(name), bool) and info.annotation in (int, float, Decimal):
                    raise ValueError(f"{name}: must be a number, not {str(data[name]).lower()}")
        return data


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("must be a finite number")
    if isinstance(v, Decimal) and not v.is_finite():
        raise ValueError("must be a finite number")
    return v
