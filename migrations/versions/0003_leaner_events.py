"""Leaner usage events; a commit's event and fingerprint kept on its reservation.

Events lose what no query needs: the `day` column (day totals live in
`usage_days`), the unique index on their uuid, `reservation_id` with its
index (the link is now `reservations.event_id`), and the idempotency index
entries of events without a key (the unique index becomes partial).
Reservations gain `event_id` and `commit_hash` (a retried commit returns the
first result) and index only active holds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 02:00:00
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_KEYED = sa.text("idempotency_key IS NOT NULL")
_ACTIVE = sa.text("state = 'active'")


def upgrade():
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('commit_hash', sa.String(length=64), nullable=True))
        batch_op.drop_index('ix_reservations_live')
    op.execute("UPDATE reservations SET event_id = (SELECT e.id FROM usage_events e "
               "WHERE e.reservation_id = reservations.id)")
    op.create_index('ix_reservations_live', 'reservations', ['user_id', 'expires_at'],
                    unique=False, sqlite_where=_ACTIVE, postgresql_where=_ACTIVE)

    op.execute("UPDATE usage_events SET request_hash = NULL WHERE idempotency_key IS NULL")
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_constraint('uq_usage_events_reservation_id', type_='unique')
        batch_op.drop_constraint('uq_usage_events_uuid', type_='unique')
        batch_op.drop_constraint('uq_usage_events_user_key', type_='unique')
        batch_op.drop_constraint('fk_usage_events_reservation_id_reservations',
                                 type_='foreignkey')
        batch_op.drop_column('reservation_id')
        batch_op.drop_column('day')
    op.create_index('uq_usage_events_user_key', 'usage_events', ['user_id', 'idempotency_key'],
                    unique=True, sqlite_where=_KEYED, postgresql_where=_KEYED)


def downgrade():
    op.drop_index('uq_usage_events_user_key', table_name='usage_events')
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('day', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('reservation_id', sa.BigInteger().with_variant(
            sa.Integer(), 'sqlite'), nullable=True))
    # The local day is not recoverable without the time zone; UTC is the default one.
    op.execute("UPDATE usage_events SET day = date(created_at)")
    op.execute("UPDATE usage_events SET reservation_id = (SELECT r.id FROM reservations r "
               "WHERE r.event_id = usage_events.id)")
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.alter_column('day', nullable=False)
        batch_op.create_foreign_key('fk_usage_events_reservation_id_reservations',
                                    'reservations', ['reservation_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_unique_constraint('uq_usage_events_user_key',
                                          ['user_id', 'idempotency_key'])
        batch_op.create_unique_constraint('uq_usage_events_uuid', ['uuid'])
        batch_op.create_unique_constraint('uq_usage_events_reservation_id', ['reservation_id'])
    op.drop_index('ix_reservations_live', table_name='reservations')
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.create_index('ix_reservations_live', ['user_id', 'state', 'expires_at'],
                              unique=False)
        batch_op.drop_column('commit_hash')
        batch_op.drop_column('event_id')
