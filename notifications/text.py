"""Text that must stay on one line (an email subject, a team name): what breaks a line, and how to mend it."""

import unicodedata

# Control characters (\r, \n, \t, NUL, ESC…) and the Unicode line and paragraph separators.
LINE_BREAKING = {"Cc", "Zl", "Zp"}


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(char) in LINE_BREAKING for char in text)


def single_line(text: str) -> str:
    """The text on one line: each control character or separator becomes a space, and runs of spaces one."""
    spaced = "".join(" " if unicodedata.category(char) in LINE_BREAKING else char for char in text)
    return " ".join(spaced.split())
