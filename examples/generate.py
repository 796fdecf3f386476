"""Generates the sample CSVs (small, realistically dirty) and large files for benchmarks.

Deterministic: the same arguments always give the same bytes.

    python examples/generate.py                      # examples/data/*.csv + dimensions
    python examples/generate.py --job customers --rows 10000000 --out bench/output/customers.csv
    python examples/generate.py --job customers --size-mb 1024 --out bench/output/customers.csv
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE_ROWS = {"customers": 200, "orders": 400, "products": 40}

COUNTRIES = [
    ("US", "United States", "Americas"),
    ("GB", "United Kingdom", "Europe"),
    ("DE", "Germany", "Europe"),
    ("FR", "France", "Europe"),
    ("JP", "Japan", "Asia"),
    ("BR", "Brazil", "Americas"),
    ("IN", "India", "Asia"),
    ("NL", "Netherlands", "Europe"),
    ("FI", "Finland", "Europe"),
    ("AU", "Australia", "Oceania"),
    ("CA", "Canada", "Americas"),
    ("ES", "Spain", "Europe"),
]
FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Hedy",
    "Katherine",
    "Tim",
    "Barbara",
    "Edsger",
    "José",
    "Zoë",
    "Søren",
    "Łukasz",
    "Ngozi",
    "Yuki",
    "Priya",
    "Chen",
    "Olga",
    "Mohammed",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Lamarr",
    "Johnson",
    "Berners-Lee",
    "Liskov",
    "Dijkstra",
    "García",
    "Müller",
    "O'Brien",
    "Nakamura",
    "Okafor",
    "Sharma",
    "Wang",
    "Ivanova",
    "Haddad",
    "Smith",
]
CATEGORIES = ["books", "electronics", "garden", "toys", "kitchen", "sports"]
STATUSES = ["active", "inactive", "Active", "ACTIVE", "churned"]
ORDER_STATUSES = ["paid", "shipped", "cancelled", "refunded", "pending"]
START = date(2023, 1, 1)


def _quote(value: str) -> str:
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _line(values: list[str]) -> str:
    return ",".join(_quote(v) for v in values) + "\n"


def customers(rng: random.Random, n: int) -> Iterator[str]:
    yield _line(
        [
            "customer_id",
            "first_name",
            "last_name",
            "email",
            "country_code",
            "signup_date",
            "updated_at",
            "lifetime_value",
            "status",
        ]
    )
    for i in range(1, n + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        signup = START + timedelta(days=rng.randrange(700))
        updated = datetime.combine(signup, datetime.min.time()) + timedelta(
            hours=rng.randrange(24 * 60)
        )
        email = f"{first}.{last}{i}@example.com".lower().replace("'", "")
        value = f"{rng.uniform(0, 5000):.2f}"
        country = rng.choice(COUNTRIES)[0]
        signup_text = signup.isoformat()
        roll = rng.random()
        if roll < 0.04:
            email = f"  {email.upper()} "  # padded and mixed case
        elif roll < 0.06:
            signup_text = rng.choice(["2024-13-45", "not a date", "31/02/2024"])  # invalid
        elif roll < 0.08:
            signup_text = signup.strftime("%d/%m/%Y")  # another valid format
        elif roll < 0.10:
            value = rng.choice(["abc", "N/A", "", "1,234.50"])  # non-numeric
        elif roll < 0.11:
            country = "XX"  # not in the countries dimension
        elif roll < 0.12:
            email = "N/A"
        row = [
            str(i),
            first,
            last,
            email,
            country,
            signup_text,
            updated.isoformat(timespec="seconds"),
            value,
            rng.choice(STATUSES),
        ]
        if roll > 0.995:
            yield ",".join(row[:5]) + "\n"  # malformed: a truncated line
            continue
        yield _line(row)
        if roll > 0.97:  # the same customer again, updated later
            later = updated + timedelta(days=rng.randrange(1, 90))
            row[6] = later.isoformat(timespec="seconds")
            row[7] = f"{float(row[7]) + 10 if row[7].replace('.', '', 1).isdigit() else 0:.2f}"
            yield _line(row)


def orders(rng: random.Random, n: int) -> Iterator[str]:
    yield _line(
        [
            "order_id",
            "customer_id",
            "product_id",
            "order_date",
            "quantity",
            "amount",
            "currency",
            "status",
        ]
    )
    customers_n = max(n // 2, 1)
    for i in range(1, n + 1):
        day = START + timedelta(days=rng.randrange(720))
        quantity = str(rng.randint(1, 5))
        amount = f"{rng.uniform(3, 900):.2f}"
        roll = rng.random()
        if roll < 0.03:
            amount = rng.choice(["twelve", "", "12.3.4"])
        elif roll < 0.05:
            quantity = "-1"
        row = [
            f"O{i:08d}",
            str(rng.randint(1, customers_n)),
            f"P{rng.randint(1, 40):04d}",
            day.isoformat(),
            quantity,
            amount,
            rng.choice(["EUR", "USD", "GBP", "usd"]),
            rng.choice(ORDER_STATUSES),
        ]
        if roll > 0.996:
            row.append("unexpected")  # malformed: an extra field
        yield _line(row)


def products(rng: random.Random, n: int) -> Iterator[str]:
    yield _line(["product_id", "name", "category", "price", "active"])
    for i in range(1, n + 1):
        price = f"{rng.uniform(2, 400):.2f}"
        if rng.random() < 0.05:
            price = "free"
        name = f"{rng.choice(['Deluxe', 'Basic', 'Pro', 'Mini'])} {rng.choice(CATEGORIES)} item {i}"
        yield _line(
            [
                f"P{i:04d}",
                name,
                rng.choice(CATEGORIES),
                price,
                rng.choice(["true", "false", "yes", "1"]),
            ]
        )


def countries() -> str:
    return "".join([_line(["code", "name", "region"]), *(_line(list(c)) for c in COUNTRIES)])


JOBS: dict[str, Callable[[random.Random, int], Iterator[str]]] = {
    "customers": customers,
    "orders": orders,
    "products": products,
}


def write(
    job: str, out: Path, rows: int | None = None, size_mb: float | None = None, seed: int = 7
) -> int:
    """Writes one job's CSV; stops at `rows` data rows or at about `size_mb`. Returns bytes."""
    rng = random.Random(f"{job}-{seed}")
    limit = int(size_mb * 1024 * 1024) if size_mb else None
    total = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    generator = JOBS[job](rng, rows if rows is not None else 10**12)
    with out.open("w", encoding="utf-8", newline="") as handle:
        buffer: list[str] = []
        for line in generator:
            buffer.append(line)
            total += len(line)
            if len(buffer) >= 10_000:
                handle.write("".join(buffer))
                buffer = []
            if limit is not None and total >= limit:
                break
        handle.write("".join(buffer))
    return out.stat().st_size


def write_samples() -> None:
    for job, rows in SAMPLE_ROWS.items():
        write(job, HERE / "data" / f"{job}.csv", rows=rows)
    (HERE / "dimensions").mkdir(exist_ok=True)
    (HERE / "dimensions" / "countries.csv").write_text(countries(), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", choices=sorted(JOBS))
    parser.add_argument("--rows", type=int)
    parser.add_argument("--size-mb", type=float)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.job is None:
        write_samples()
        return
    out = args.out or HERE / "data" / f"{args.job}.csv"
    size = write(args.job, out, rows=args.rows, size_mb=args.size_mb, seed=args.seed)
    print(f"wrote {out} ({size / 1e6:.1f} MB)")  # noqa: T201


if __name__ == "__main__":
    main()
