"""Crawl include/exclude patterns, matched with RE2: linear time whatever the pattern, so a
pattern such as `^/(a+)+$` cannot stall a worker (Python's backtracking engine takes exponential
time on it). RE2 has no backreferences or lookaround; such a pattern is refused when given."""

from functools import lru_cache

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported to the caller, not logged


class PatternError(ValueError):
    """The pattern is not valid RE2 syntax."""


@lru_cache(maxsize=1024)
def compiled(pattern: str) -> "re2._Regexp":
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as error:
        reason = (
            error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else error
        )
        raise PatternError(
            f"{pattern!r} is not a valid pattern ({reason}); patterns use RE2 syntax, "
            "which has no backreferences or lookaround"
        ) from None


def matches(patterns: tuple[str, ...], path: str) -> bool:
    """Whether any of the patterns matches somewhere in the path."""
    return any(compiled(pattern).search(path) for pattern in patterns)
