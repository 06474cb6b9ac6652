"""Errors of game input the director refuses (they become `error` replies, never crashes)."""


class InputError(ValueError):
    """Bad input from the game; `code` goes into the error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
