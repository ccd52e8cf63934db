"""QoS policies shared through RBAC: a policy's `shared` flag becomes a `*` access_as_shared policy (object type
qos_policy), as networks' did in 0003.

Revision ID: 0004_i14b_qos_rbac
Revises: 0003_i15b
"""
import uuid

from alembic import op
import sqlalchemy as sa


revision = '0004_i14b_qos_rbac'
down_revision = '0003_i15b'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    rbac = sa.table('rbac_policies', *(sa.column(c) for c in ('id', 'project_id', 'object_type', 'object_id',
                                                               'action', 'target_project')))
    rows = [{'id': str(uuid.uuid4()), 'project_id': project, 'object_type': 'qos_policy', 'object_id': oid,
             'action': 'access_as_shared', 'target_project': '*'}
            for oid, project in bind.execute(sa.text("SELECT id, project_id FROM qos_policies WHERE shared"))]
    if rows:
        op.bulk_insert(rbac, rows)
    op.execute("ALTER TABLE qos_policies DROP COLUMN shared")


def downgrade():
    op.add_column('qos_policies', sa.Column('shared', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE qos_policies SET shared = TRUE WHERE id IN (SELECT object_id FROM rbac_policies "
               "WHERE object_type = 'qos_policy' AND action = 'access_as_shared' AND target_project = '*')")
    op.execute("DELETE FROM rbac_policies WHERE object_type = 'qos_policy'")
