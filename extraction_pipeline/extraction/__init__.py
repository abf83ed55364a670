"""Layer 1, the extraction core: bytes in, result envelope out. No Dagster, no database."""
