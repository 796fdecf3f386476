"""The bronze layer: CSV in landing to raw-text Parquet with audit columns and rejects."""
