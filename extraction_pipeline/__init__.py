"""extraction-pipeline: metadata extraction for engineering documents, orchestrated by Dagster."""

__version__ = "0.1.0"
