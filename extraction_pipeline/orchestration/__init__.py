"""Layer 3, orchestration (Dagster): partitions, the asset and its ops, sensors, resources, alerts.

Thin: it decides when and where a file is extracted, never how. Nothing here imports a format
library; the code location must load fast (every run and every sensor tick loads it).
"""
