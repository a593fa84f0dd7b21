"""Check cells of the labs: compare a student's answer with restorelab's own implementation.

One module per lab (``ch01``, ...), imported by that lab as ``from restorelab.checks import ch01
as checks``. A check whose exercise is still a stub prints "not done yet" instead of failing, so a
lab runs top to bottom before any exercise is done; a wrong answer raises an AssertionError that
says what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable


def run_check(name: str, check: Callable[[], None]) -> bool:
    """Run ``check``; True when it passes, False when the exercise still raises NotImplementedError."""
    try:
        check()
    except NotImplementedError:
        print(f"[ ] {name}: not done yet (the exercise still raises NotImplementedError)")
        return False
    print(f"[x] {name}: correct")
    return True
