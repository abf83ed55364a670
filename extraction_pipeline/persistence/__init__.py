"""Layer 2, persistence: typed models, migrations, the blob store and the queries the pipeline needs."""
