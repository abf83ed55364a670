"""Alembic migrations, shipped inside the package so they run from any working directory."""
