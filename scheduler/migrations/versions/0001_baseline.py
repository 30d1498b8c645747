"""Baseline: the schema as it stood before migrations (issues 1-7)

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-29 16:31:38.522097
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Databases made before migrations existed already hold some of these tables
    # (created from the models at start-up): keep those, create the rest.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "alert" not in existing:
        op.create_table(
            "alert",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("key", sa.String(), nullable=False),
            sa.Column("kind", sa.String(), nullable=False),
            sa.Column("message", sa.String(), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("key"),
        )
        with op.batch_alter_table("alert", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_alert_at"), ["at"], unique=False)
            batch_op.create_index(batch_op.f("ix_alert_kind"), ["kind"], unique=False)

    if "cluster" not in existing:
        op.create_table(
            "cluster",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("cloud", sa.String(), nullable=False),
            sa.Column("region", sa.String(), nullable=False),
            sa.Column("zone", sa.String(), nullable=False),
            sa.Column("instance_type", sa.String(), nullable=False),
            sa.Column("market", sa.String(), nullable=False),
            sa.Column("num_nodes", sa.Integer(), nullable=False),
            sa.Column("price_per_hour", sa.Float(), nullable=False),
            sa.Column("image", sa.String(), nullable=True),
            sa.Column("state", sa.String(), nullable=False),
            sa.Column("attempt_id", sa.Integer(), nullable=True),
            sa.Column("head_address", sa.String(), nullable=True),
            sa.Column("instances_json", sa.String(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("up_at", sa.DateTime(), nullable=True),
            sa.Column("last_used_at", sa.DateTime(), nullable=False),
            sa.Column("ended_at", sa.DateTime(), nullable=True),
            sa.Column("end_reason", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name"),
        )
        with op.batch_alter_table("cluster", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_cluster_attempt_id"), ["attempt_id"], unique=False)
            batch_op.create_index(batch_op.f("ix_cluster_state"), ["state"], unique=False)

    if "job" not in existing:
        op.create_table(
            "job",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("uid", sa.String(), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("state", sa.String(), nullable=False),
            sa.Column("priority", sa.String(), nullable=False),
            sa.Column("spec_json", sa.String(), nullable=False),
            sa.Column("tags_json", sa.String(), nullable=False),
            sa.Column("submitted_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.Column("deadline_at", sa.DateTime(), nullable=True),
            sa.Column("cancel_requested", sa.Boolean(), nullable=False),
            sa.Column("interruptions", sa.Integer(), nullable=False),
            sa.Column("exit_code", sa.Integer(), nullable=True),
            sa.Column("message", sa.String(), nullable=True),
            sa.Column("cost", sa.Float(), nullable=False),
            sa.Column("current_attempt_id", sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("uid"),
        )
        with op.batch_alter_table("job", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_job_name"), ["name"], unique=False)
            batch_op.create_index(batch_op.f("ix_job_state"), ["state"], unique=False)
            batch_op.create_index(batch_op.f("ix_job_submitted_at"), ["submitted_at"], unique=False)

    if "price_feed" not in existing:
        op.create_table(
            "price_feed",
            sa.Column("feed", sa.String(), nullable=False),
            sa.Column("attempted_at", sa.DateTime(), nullable=False),
            sa.Column("refreshed_at", sa.DateTime(), nullable=True),
            sa.Column("regions_csv", sa.String(), nullable=False),
            sa.Column("offerings", sa.Integer(), nullable=False),
            sa.Column("error", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("feed"),
        )

    if "price_offering" not in existing:
        op.create_table(
            "price_offering",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("feed", sa.String(), nullable=False),
            sa.Column("cloud", sa.String(), nullable=False),
            sa.Column("region", sa.String(), nullable=False),
            sa.Column("zone", sa.String(), nullable=False),
            sa.Column("instance_type", sa.String(), nullable=False),
            sa.Column("market", sa.String(), nullable=False),
            sa.Column("accelerator_name", sa.String(), nullable=True),
            sa.Column("accelerator_count", sa.Integer(), nullable=True),
            sa.Column("accelerator_memory_gb", sa.Float(), nullable=True),
            sa.Column("vcpus", sa.Float(), nullable=False),
            sa.Column("memory_gb", sa.Float(), nullable=False),
            sa.Column("price_per_hour", sa.Float(), nullable=False),
            sa.Column("interruption_rate", sa.Float(), nullable=False),
            sa.Column("interruption_source", sa.String(), nullable=False),
            sa.Column("as_of", sa.DateTime(), nullable=False),
            sa.Column("price_source", sa.String(), nullable=False),
            sa.Column("source_detail", sa.String(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("price_offering", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_price_offering_accelerator_name"), ["accelerator_name"], unique=False
            )
            batch_op.create_index(batch_op.f("ix_price_offering_feed"), ["feed"], unique=False)
            batch_op.create_index(
                batch_op.f("ix_price_offering_instance_type"), ["instance_type"], unique=False
            )

    if "spot_price" not in existing:
        op.create_table(
            "spot_price",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("cloud", sa.String(), nullable=False),
            sa.Column("region", sa.String(), nullable=False),
            sa.Column("zone", sa.String(), nullable=False),
            sa.Column("instance_type", sa.String(), nullable=False),
            sa.Column("price_per_hour", sa.Float(), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("cloud", "zone", "instance_type", "at"),
        )
        with op.batch_alter_table("spot_price", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_spot_price_at"), ["at"], unique=False)
            batch_op.create_index(
                batch_op.f("ix_spot_price_instance_type"), ["instance_type"], unique=False
            )

    if "attempt" not in existing:
        op.create_table(
            "attempt",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("job_id", sa.Integer(), nullable=False),
            sa.Column("number", sa.Integer(), nullable=False),
            sa.Column("state", sa.String(), nullable=False),
            sa.Column("cloud", sa.String(), nullable=False),
            sa.Column("region", sa.String(), nullable=False),
            sa.Column("zone", sa.String(), nullable=False),
            sa.Column("instance_type", sa.String(), nullable=False),
            sa.Column("market", sa.String(), nullable=False),
            sa.Column("price_per_hour", sa.Float(), nullable=False),
            sa.Column("num_nodes", sa.Integer(), nullable=False),
            sa.Column("placement_json", sa.String(), nullable=False),
            sa.Column("cluster_address", sa.String(), nullable=True),
            sa.Column("submission_id", sa.String(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("started_at", sa.DateTime(), nullable=True),
            sa.Column("ended_at", sa.DateTime(), nullable=True),
            sa.Column("exit_code", sa.Integer(), nullable=True),
            sa.Column("message", sa.String(), nullable=True),
            sa.Column("cost", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(
                ["job_id"],
                ["job.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("submission_id"),
        )
        with op.batch_alter_table("attempt", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_attempt_job_id"), ["job_id"], unique=False)
            batch_op.create_index(batch_op.f("ix_attempt_state"), ["state"], unique=False)

    if "event" not in existing:
        op.create_table(
            "event",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("job_id", sa.Integer(), nullable=False),
            sa.Column("attempt_id", sa.Integer(), nullable=True),
            sa.Column("from_state", sa.String(), nullable=True),
            sa.Column("to_state", sa.String(), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("reason", sa.String(), nullable=False),
            sa.ForeignKeyConstraint(
                ["job_id"],
                ["job.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("event", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_event_job_id"), ["job_id"], unique=False)

    if "ledger" not in existing:
        op.create_table(
            "ledger",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("attempt_id", sa.Integer(), nullable=False),
            sa.Column("job_id", sa.Integer(), nullable=False),
            sa.Column("cloud", sa.String(), nullable=False),
            sa.Column("region", sa.String(), nullable=False),
            sa.Column("market", sa.String(), nullable=False),
            sa.Column("hours", sa.Float(), nullable=False),
            sa.Column("compute_usd", sa.Float(), nullable=False),
            sa.Column("egress_usd", sa.Float(), nullable=False),
            sa.Column("total_usd", sa.Float(), nullable=False),
            sa.Column("outcome", sa.String(), nullable=False),
            sa.Column("settled_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                ["attempt_id"],
                ["attempt.id"],
            ),
            sa.ForeignKeyConstraint(
                ["job_id"],
                ["job.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("attempt_id"),
        )
        with op.batch_alter_table("ledger", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_ledger_job_id"), ["job_id"], unique=False)
            batch_op.create_index(batch_op.f("ix_ledger_settled_at"), ["settled_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_settled_at"))
        batch_op.drop_index(batch_op.f("ix_ledger_job_id"))

    op.drop_table("ledger")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_job_id"))

    op.drop_table("event")
    with op.batch_alter_table("attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempt_state"))
        batch_op.drop_index(batch_op.f("ix_attempt_job_id"))

    op.drop_table("attempt")
    with op.batch_alter_table("spot_price", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spot_price_instance_type"))
        batch_op.drop_index(batch_op.f("ix_spot_price_at"))

    op.drop_table("spot_price")
    with op.batch_alter_table("price_offering", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_price_offering_instance_type"))
        batch_op.drop_index(batch_op.f("ix_price_offering_feed"))
        batch_op.drop_index(batch_op.f("ix_price_offering_accelerator_name"))

    op.drop_table("price_offering")
    op.drop_table("price_feed")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_submitted_at"))
        batch_op.drop_index(batch_op.f("ix_job_state"))
        batch_op.drop_index(batch_op.f("ix_job_name"))

    op.drop_table("job")
    with op.batch_alter_table("cluster", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cluster_state"))
        batch_op.drop_index(batch_op.f("ix_cluster_attempt_id"))

    op.drop_table("cluster")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_kind"))
        batch_op.drop_index(batch_op.f("ix_alert_at"))

    op.drop_table("alert")
