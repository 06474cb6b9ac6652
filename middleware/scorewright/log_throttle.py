"""At most so many log lines of one kind a second; the rest are counted, and summarised in one line
when the next second brings another. For what a careless client or a slow machine can repeat at
frame rate (rejected messages, underruns), so the log stays readable."""

from __future__ import annotations

import logging
import time


class Throttle:
    """`allow()` is True for the first `per_second` events of each second; the events refused are
    summarised as "... and N more `what` in the last second" on `logger`."""

    def __init__(self, logger: logging.Logger, what: str, per_second: int = 10) -> None:
        self.logger, self.what, self.per_second = logger, what, per_second
        self.window, self.count, self.suppressed = 0, 0, 0

    def allow(self) -> bool:
        now = int(time.monotonic())
        if now != self.window:
            if self.suppressed:
                self.logger.warning("... and %d more %s in the last second", self.suppressed, self.what)
            self.window, self.count, self.suppressed = now, 0, 0
        self.count += 1
        if self.count > self.per_second:
            self.suppressed += 1
            return False
        return True
