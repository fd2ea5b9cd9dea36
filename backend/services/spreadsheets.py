"""CSV that spreadsheet programs open safely: the one guard every export uses (records, reports, statistics).

A cell starting with = + - @ (or a tab or carriage return) is run as a formula by Excel, LibreOffice and
Google Sheets; chat text, names and notes are typed by people, so such a cell gets a leading apostrophe
and is shown as the text it is (CSV injection).
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """The value, with a leading apostrophe when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
