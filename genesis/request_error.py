"""The error of a bad submission field, shared by the submit validation and the algorithms
(which check their own options) without either importing the other."""

from __future__ import annotations


class RequestError(ValueError):
    """``field`` names the bad input; the message says how to fix it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message
