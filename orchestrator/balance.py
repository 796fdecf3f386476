"""The row balance sheet: every CSV row ends up in bronze or its rejects, every bronze row
silver read in silver, its quarantine or the duplicates removed. Pure: summaries in, a
sheet out.

What silver read depends on how it refreshed: a full rebuild reads every committed bronze
row; an incremental run reads the rows bronze's commits inserted since the version silver
last read. When that is exactly the commit this execution's bronze made, its rows are
this bronze run's rows; when silver also read earlier commits (a silver run that failed
before), silver's own read is checked against bronze's log by silver itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    left: int
    right: int

    @property
    def ok(self) -> bool:
        return self.left == self.right


@dataclass(frozen=True)
class BalanceSheet:
    figures: dict[str, int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return all(c.ok for c in self.checks)

    def gaps(self) -> list[str]:
        return [f"{c.name}: {c.left} != {c.right}" for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "figures": dict(self.figures),
            "checks": [{**asdict(c), "ok": c.ok} for c in self.checks],
            "balanced": self.balanced,
        }


def balance_sheet(results: dict[str, dict[str, Any]]) -> BalanceSheet:
    """`results` maps layer -> the step summary of the layers this execution ran."""
    figures: dict[str, int] = {}
    checks: list[Check] = []
    bronze, silver = results.get("bronze"), results.get("silver")
    if bronze is not None:
        # Files read in this run (a forgotten file's figures are the rows it took away).
        read = [f for f in bronze.get("files", []) if f.get("status") != "FORGOTTEN"]
        file_rows = sum(f["rows"] + f["rows_rejected"] for f in read)
        figures |= {
            "csv_rows": bronze["rows_in"],
            "bronze_rows": bronze["rows_out"],
            "bronze_rejected": bronze["rows_rejected"],
            "bronze_dataset_rows": bronze["total_rows"],
        }
        checks.append(Check("CSV rows = rows of the files read", bronze["rows_in"], file_rows))
        checks.append(
            Check(
                "CSV rows = bronze rows + rejects",
                bronze["rows_in"],
                bronze["rows_out"] + bronze["rows_rejected"],
            )
        )
    if silver is not None:
        figures |= {
            "silver_input_rows": silver["rows_in"],
            "silver_rows": silver["rows_out"],
            "quarantined": silver["rows_rejected"],
            "duplicates_removed": silver["duplicates_removed"],
            "silver_table_rows": silver.get("total_rows", 0),
        }
        if bronze is not None:
            checks += silver_read(bronze, silver)
        checks.append(
            Check(
                "bronze rows = silver + quarantined + duplicates removed",
                silver["rows_in"],
                silver["rows_out"] + silver["rows_rejected"] + silver["duplicates_removed"],
            )
        )
    return BalanceSheet(figures, checks)


def silver_read(bronze: dict[str, Any], silver: dict[str, Any]) -> list[Check]:
    """What silver read, against what this execution's bronze committed."""
    bronze_version = bronze.get("table_version")
    checks = []
    if bronze_version is not None and silver.get("input_version") is not None:
        checks.append(
            Check("silver read bronze's latest commit", silver["input_version"], bronze_version)
        )
    if silver.get("refresh") != "incremental":
        checks.append(
            Check("silver read every committed bronze row", silver["rows_in"], bronze["total_rows"])
        )
    elif silver.get("input_from_version") == bronze_version:
        checks.append(
            Check(
                "silver read the bronze rows inserted since its last version",
                silver["rows_in"],
                bronze["rows_out"],
            )
        )
    return checks
