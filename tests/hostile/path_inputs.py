"""Path-like input that must never become part of an object key: the one list every entry
point (gRPC services, CLI, HTTP API) is tested against.

Each entry is (label, value); the label is the pytest id, so a failure names the case.
"""

from __future__ import annotations

MAX_ID_CHARS = 64

TRAVERSAL = [
    ("dotdot", ".."),
    ("dot", "."),
    ("dotdot-slash", "../etc"),
    ("dotdot-deep", "../../../../etc/passwd"),
    ("inner-dotdot", "a/../b"),
    ("slash", "a/b"),
    ("trailing-slash", "a/"),
    ("absolute", "/etc/passwd"),
    ("backslash", "a\\b"),
    ("backslash-dotdot", "..\\..\\windows"),
    ("drive", "C:\\temp"),
    ("home", "~root"),
    ("hidden", ".hidden"),
    ("run-prefix", "run=x"),
    ("s3-url", "s3://bucket/key"),
    ("glob", "a*"),
    ("query", "a?b"),
]
ENCODED = [
    ("pct-slash", "a%2Fb"),
    ("pct-slash-lower", "a%2fb"),
    ("pct-dotdot", "%2e%2e"),
    ("pct-dotdot-slash", "%2e%2e%2fetc"),
    ("pct-backslash", "a%5Cb"),
    ("double-pct", "a%252Fb"),
    ("pct-nul", "a%00b"),
]
CONTROL = [
    ("nul", "a\x00b"),
    ("nul-only", "\x00"),
    ("nul-suffix", "job\x00.csv"),
    ("newline", "a\nb"),
    ("trailing-newline", "job\n"),
    ("crlf", "a\r\nb"),
    ("tab", "a\tb"),
    ("escape", "a\x1b[31mb"),
    ("del", "a\x7fb"),
]
LOOKALIKE = [
    ("division-slash", "a\u2215b"),  # ∕
    ("fullwidth-solidus", "a\uff0fb"),  # ／
    ("fraction-slash", "a\u2044b"),  # ⁄
    ("big-solidus", "a\u29f8b"),  # ⧸
    ("fullwidth-dots", "\uff0e\uff0e"),  # ．．
    ("one-dot-leader", "\u2024\u2024"),  # ․․
    ("fullwidth-backslash", "a\uff3cb"),  # ＼
    ("fullwidth-letters", "\uff41\uff42\uff43"),  # ａｂｃ
    ("cyrillic-a", "\u0430dmin"),  # аdmin
    ("accented", "caf\u00e9"),
    ("zero-width-space", "a\u200bb"),
    ("rtl-override", "a\u202egnp.b"),
    ("combining-dot", "a\u0307"),
    ("bom", "\ufeffjob"),
]
SIZE_AND_BLANK = [
    ("overlong-by-one", "a" * (MAX_ID_CHARS + 1)),
    ("overlong-1k", "a" * 1000),
    ("overlong-100k", "b" * 100_000),
    ("overlong-dotdot", "../" * 400),
    ("space", " "),
    ("spaces", "   "),
    ("leading-space", " job"),
    ("trailing-space", "job "),
    ("inner-space", "a b"),
    ("nbsp", "a\u00a0b"),
    ("ideographic-space", "\u3000"),
    ("leading-dash", "-rf"),
    ("leading-underscore", "_manifest"),
]
EMPTY = [("empty", "")]

HOSTILE_NON_EMPTY: list[tuple[str, str]] = (
    TRAVERSAL + ENCODED + CONTROL + LOOKALIKE + SIZE_AND_BLANK
)
HOSTILE = HOSTILE_NON_EMPTY + EMPTY


def cases(fields: list[str], allow_empty: bool = False) -> list[tuple[str, str, str]]:
    """(field, label, value) for each field and each hostile value, as pytest params.

    `allow_empty`: the field has a meaning when empty (a run_id left empty is generated),
    so the empty string is not hostile there."""
    values = HOSTILE_NON_EMPTY if allow_empty else HOSTILE
    return [(f, label, value) for f in fields for label, value in values]
