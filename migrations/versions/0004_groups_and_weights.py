"""Groups and model weights: groups, memberships, group day totals, holds per group,
model weights, and the charged tokens of each usage event.

Existing events were charged what they used: `charged_tokens` starts as
`tokens`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 03:00:00
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('groups',
    sa.Column('id', _ID, nullable=False),
    sa.Column('uuid', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=150), nullable=False),
    sa.Column('daily_limit', sa.BigInteger(), nullable=True),
    sa.Column('weekly_limit', sa.BigInteger(), nullable=True),
    sa.Column('monthly_limit', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_groups')),
    sa.UniqueConstraint('name', name=op.f('uq_groups_name')),
    sa.UniqueConstraint('uuid', name=op.f('uq_groups_uuid'))
    )
    op.create_table('memberships',
    sa.Column('group_id', _ID, nullable=False),
    sa.Column('user_id', _ID, nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_memberships_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_memberships'))
    )
    op.create_index(op.f('ix_memberships_user_id'), 'memberships', ['user_id'], unique=False)
    op.create_table('group_usage_days',
    sa.Column('group_id', _ID, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('tokens', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_group_usage_days_group_id_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'day', name=op.f('pk_group_usage_days'))
    )
    op.create_table('reservation_groups',
    sa.Column('reservation_id', _ID, nullable=False),
    sa.Column('group_id', _ID, nullable=False),
    sa.Column('tokens', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_reservation_groups_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservations.id'], name=op.f('fk_reservation_groups_reservation_id_reservations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('reservation_id', 'group_id', name=op.f('pk_reservation_groups'))
    )
    op.create_index('ix_reservation_groups_live', 'reservation_groups', ['group_id', 'expires_at'], unique=False)
    op.create_table('model_weights',
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('input_weight', sa.String(length=32), nullable=False),
    sa.Column('output_weight', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('model', name=op.f('pk_model_weights'))
    )
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('charged_tokens', sa.BigInteger(), nullable=True))
    op.execute("UPDATE usage_events SET charged_tokens = tokens")
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.alter_column('charged_tokens', existing_type=sa.BigInteger(), nullable=False)


def downgrade():
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_column('charged_tokens')
    op.drop_table('model_weights')
    op.drop_index('ix_reservation_groups_live', table_name='reservation_groups')
    op.drop_table('reservation_groups')
    op.drop_table('group_usage_days')
    op.drop_index(op.f('ix_memberships_user_id'), table_name='memberships')
    op.drop_table('memberships')
    op.drop_table('groups')
