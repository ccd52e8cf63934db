"""rbac policies and address scopes; `shared` of networks, subnet pools and security groups moves into policies

Revision ID: 0003_i15a_rbac
Revises: 0002
"""
import uuid

from alembic import op
import sqlalchemy as sa


revision = '0003_i15a_rbac'
down_revision = '0002'
branch_labels = None
depends_on = None

SHARED_TABLES = (('networks', 'network'), ('subnetpools', 'subnetpool'), ('securitygroups', 'security_group'))


def upgrade():
    op.create_table('address_scopes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_address_scopes_project_id', 'address_scopes', ['project_id'])
    op.create_table('rbac_policies',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target_project', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('object_type', 'object_id', 'action', 'target_project',
                        name='uniq_rbac0object0action0target')
    )
    op.create_index('ix_rbac_policies_project_id', 'rbac_policies', ['project_id'])
    op.create_index('ix_rbac_policies_object_id', 'rbac_policies', ['object_id'])
    op.create_index('ix_rbac_target', 'rbac_policies', ['object_type', 'action', 'target_project'])
    bind = op.get_bind()
    rbac = sa.table('rbac_policies', *(sa.column(c) for c in ('id', 'project_id', 'object_type', 'object_id',
                                                               'action', 'target_project')))
    rows = []
    for table, kind in SHARED_TABLES:
        for oid, project in bind.execute(sa.text(f"SELECT id, project_id FROM {table} WHERE shared")):
            rows.append((oid, project, kind, 'access_as_shared'))
    for oid, project in bind.execute(sa.text("SELECT id, project_id FROM networks WHERE external")):
        rows.append((oid, project, 'network', 'access_as_external'))
    if rows:
        op.bulk_insert(rbac, [{'id': str(uuid.uuid4()), 'project_id': p, 'object_type': k, 'object_id': o,
                               'action': a, 'target_project': '*'} for o, p, k, a in rows])
    for table, _kind in SHARED_TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN shared")


def downgrade():
    for table, kind in SHARED_TABLES:
        op.add_column(table, sa.Column('shared', sa.Boolean(), nullable=False, server_default=sa.false()))
        op.execute(f"UPDATE {table} SET shared = TRUE WHERE id IN (SELECT object_id FROM rbac_policies "
                   f"WHERE object_type = '{kind}' AND action = 'access_as_shared' AND target_project = '*')")
    op.drop_table('rbac_policies')
    op.drop_table('address_scopes')
