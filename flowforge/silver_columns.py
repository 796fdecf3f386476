"""The silver dataset's audit columns: the contract between silver, which writes them,
and gold, which reads silver (and leaves them out of its profile).
"""

from __future__ import annotations

# Bronze audit columns silver carries, as (bronze name, silver name).
CARRIED_AUDIT = (
    ("_row_hash", "_row_hash"),
    ("_source_key", "_source_key"),
    ("_source_etag", "_source_etag"),
    ("_row_number", "_row_number"),
    ("_ingested_at", "_ingested_at"),
    ("_run_id", "_bronze_run_id"),
)
AUDIT_COLUMNS = (*(silver for _, silver in CARRIED_AUDIT), "_silver_run_id")
