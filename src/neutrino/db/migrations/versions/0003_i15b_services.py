"""Service extensions: QoS policies, rules, bindings and defaults; address groups; metering labels, rules, counters

Revision ID: 0003_i15b
Revises: 0003_i15a_rbac
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_i15b'
down_revision = '0003_i15a_rbac'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('address_groups',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('address_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_groups_project_id'), ['project_id'], unique=False)

    op.create_table('meteringlabels',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('meteringlabels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meteringlabels_project_id'), ['project_id'], unique=False)

    op.create_table('qos_policies',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('qos_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qos_policies_project_id'), ['project_id'], unique=False)

    op.create_table('address_associations',
    sa.Column('address_group_id', sa.String(length=36), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['address_group_id'], ['address_groups.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('address_group_id', 'address')
    )
    op.create_table('meteringlabelrules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('metering_label_id', sa.String(length=36), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('remote_ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('source_ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('destination_ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('excluded', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['metering_label_id'], ['meteringlabels.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('meteringlabelrules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meteringlabelrules_metering_label_id'), ['metering_label_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_meteringlabelrules_project_id'), ['project_id'], unique=False)

    op.create_table('qos_network_policy_bindings',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('policy_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['policy_id'], ['qos_policies.id'], ),
    sa.PrimaryKeyConstraint('network_id')
    )
    with op.batch_alter_table('qos_network_policy_bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qos_network_policy_bindings_policy_id'), ['policy_id'], unique=False)

    op.create_table('qos_policies_default',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('policy_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['qos_policies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id')
    )
    with op.batch_alter_table('qos_policies_default', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qos_policies_default_policy_id'), ['policy_id'], unique=False)

    op.create_table('qos_rules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('qos_policy_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('max_kbps', sa.BigInteger(), nullable=True),
    sa.Column('max_burst_kbps', sa.BigInteger(), nullable=True),
    sa.Column('min_kbps', sa.BigInteger(), nullable=True),
    sa.Column('dscp_mark', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['qos_policy_id'], ['qos_policies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('qos_policy_id', 'type', 'direction', name='uniq_qos_rules0policy0type0dir')
    )
    with op.batch_alter_table('qos_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qos_rules_qos_policy_id'), ['qos_policy_id'], unique=False)

    op.create_table('qos_port_policy_bindings',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('policy_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['qos_policies.id'], ),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id')
    )
    with op.batch_alter_table('qos_port_policy_bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qos_port_policy_bindings_policy_id'), ['policy_id'], unique=False)

    op.create_table('meteringcounters',
    sa.Column('label_id', sa.String(length=36), nullable=False),
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('packets', sa.BigInteger(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['label_id'], ['meteringlabels.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('label_id', 'router_id')
    )


def downgrade():
    op.drop_table('meteringcounters')
    with op.batch_alter_table('qos_port_policy_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qos_port_policy_bindings_policy_id'))

    op.drop_table('qos_port_policy_bindings')
    with op.batch_alter_table('qos_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qos_rules_qos_policy_id'))

    op.drop_table('qos_rules')
    with op.batch_alter_table('qos_policies_default', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qos_policies_default_policy_id'))

    op.drop_table('qos_policies_default')
    with op.batch_alter_table('qos_network_policy_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qos_network_policy_bindings_policy_id'))

    op.drop_table('qos_network_policy_bindings')
    with op.batch_alter_table('meteringlabelrules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meteringlabelrules_project_id'))
        batch_op.drop_index(batch_op.f('ix_meteringlabelrules_metering_label_id'))

    op.drop_table('meteringlabelrules')
    op.drop_table('address_associations')
    with op.batch_alter_table('qos_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qos_policies_project_id'))

    op.drop_table('qos_policies')
    with op.batch_alter_table('meteringlabels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meteringlabels_project_id'))

    op.drop_table('meteringlabels')
    with op.batch_alter_table('address_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_groups_project_id'))

    op.drop_table('address_groups')
