"""Alembic environment: runs on the connection Database.migrate() hands over."""

from alembic import context

from empathic.store.partitions import schema_filter
from empathic.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=schema_filter(connection.dialect.name),
)
context.run_migrations()
