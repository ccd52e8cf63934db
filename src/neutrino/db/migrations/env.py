"""Alembic environment: runs on the connection neutrino hands over (or on NEUTRINO_DB_URL for autogenerate)."""
import os

from alembic import context
from sqlalchemy import create_engine

import neutrino.db.services  # noqa: F401  (service extension tables too)
import neutrino.db.identity  # noqa: F401  (identity tables share the metadata)
from neutrino.db.models import Base

target_metadata = Base.metadata
conn = context.config.attributes.get("connection")
if conn is None:
    engine = create_engine(os.environ.get("NEUTRINO_DB_URL", "sqlite:///neutrino.db"))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
