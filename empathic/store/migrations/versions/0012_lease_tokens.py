"""leases.token: a fencing token, new at every take that is not a renewal (engine.duties)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A lease held at the upgrade has no token: its holder's fences fail once, and the duty
    # starts again under a token (a channel reconciles first), as after a takeover.
    op.add_column("leases", sa.Column("token", sa.String(length=32), nullable=False, server_default=""))


def downgrade() -> None:
    op.execute("ALTER TABLE leases DROP COLUMN token")
