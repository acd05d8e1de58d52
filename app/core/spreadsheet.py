"""CSV rows for exports that people open in spreadsheets: a cell that a spreadsheet would run as
a formula (it starts with = + - @, a tab or a carriage return) is prefixed with ' and shown as
text."""

import csv
import io
from collections.abc import Sequence

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value  # shown as text, never evaluated
    return value


def csv_row(values: Sequence[object]) -> bytes:
    """One CSV line (with its line ending) of formula-safe cells."""
    out = io.StringIO()
    csv.writer(out).writerow([_csv_cell(value) for value in values])
    return out.getvalue().encode()
