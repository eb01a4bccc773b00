"""How long a test waits for a condition before it fails: every deadline a test sets is
multiplied by `PATIENCE` (EMPATHIC_TEST_PATIENCE, default 3). A deadline only bounds how long
a failing test takes to say so; a passing one returns as soon as its condition holds, so a
loaded machine (the README's suite at a load of 12 took 18 minutes) gets the time it needs."""

from __future__ import annotations

import os

PATIENCE = max(1.0, float(os.environ.get("EMPATHIC_TEST_PATIENCE", "3")))


def patient(seconds: float) -> float:
    return seconds * PATIENCE
