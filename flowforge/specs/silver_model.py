"""The validated silver spec: what each column, rule and dedupe option means."""

from __future__ import annotations

from dataclasses import dataclass

from flowforge.fieldpath import FieldPath

DEFAULT_NULL_MARKERS = ("", "NULL", "N/A", "null")
# Unset spec.max_bad_percent: a run that quarantines more than half its rows fails.
DEFAULT_MAX_BAD_PERCENT = 50.0


@dataclass(frozen=True)
class SilverType:
    name: str  # string, integer, decimal, float, boolean, date, timestamp
    precision: int = 0
    scale: int = 0

    def __str__(self) -> str:
        return f"decimal({self.precision},{self.scale})" if self.name == "decimal" else self.name


@dataclass(frozen=True)
class NumberFormat:
    """How a numeric column writes its numbers."""

    decimal: str = "."
    thousands: str = ""  # "": none; " ": any space (plain, no-break or narrow no-break)

    def __str__(self) -> str:
        thousands = "none" if not self.thousands else repr(self.thousands)
        return f"decimal {self.decimal!r}, thousands {thousands}"


# The `locale` shortcut: the separators each name stands for.
LOCALES = {
    "en": NumberFormat(".", ","),
    "de": NumberFormat(",", "."),
    "fr": NumberFormat(",", " "),
}


@dataclass(frozen=True)
class ColumnRule:
    source: str
    target: str
    type: SilverType | None  # None: inferred from every value
    formats: tuple[str, ...] = ()
    trim: bool = True
    case: str = "none"
    null_markers: tuple[str, ...] = DEFAULT_NULL_MARKERS
    required: bool = False
    field: FieldPath = ()  # where the spec gives it: ("columns", 2)
    number: NumberFormat = NumberFormat()


@dataclass(frozen=True)
class Expectation:
    id: str
    type: str
    column: str
    action: str = "warn"
    values: tuple[str, ...] = ()
    min: str | None = None
    max: str | None = None
    pattern: str = ""
    min_length: int | None = None
    max_length: int | None = None
    max_bad_percent: float | None = None
    field: FieldPath = ()  # where the spec gives it: ("columns", 2)


@dataclass(frozen=True)
class Dedupe:
    keys: tuple[str, ...] = ()
    sequence_by: str = ""
    tie_breaker: str = ""
    history: str = ""  # "" (the latest row per key) or "scd2" (every version of a key)


@dataclass(frozen=True)
class Spec:
    columns: tuple[ColumnRule, ...] = ()  # empty: every bronze column, types inferred
    expectations: tuple[Expectation, ...] = ()
    dedupe: Dedupe = Dedupe()
    fail_on_schema_drift: bool = False
    max_bad_percent: float = DEFAULT_MAX_BAD_PERCENT  # of the rows read, quarantined
