"""agent run step budget

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 10:40:18.235786
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agent_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_steps', sa.Integer(), server_default='30', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('agent_runs', schema=None) as batch_op:
        batch_op.drop_column('max_steps')

