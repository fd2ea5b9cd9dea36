"""records search: full-text index over message text (SQLite FTS5 trigram, PostgreSQL pg_trgm)

Revision ID: 7a1c0e5f2b01
Revises: 13eb78feb450
Create Date: 2026-11-23 14:45:00

Search finds a message by any of its versions, so both `message.text` and `message_revision.text` are
indexed. Trigrams match any substring of three characters or more, which is what Chinese needs (no word
breaks) and what English users expect of a search box.

SQLite: one external-content FTS5 table per source table (the text is not stored twice), kept in step by
triggers, so every insert and DELETE (including the tests' emptying and ON DELETE CASCADE) updates it.
PostgreSQL: GIN trigram indexes that ILIKE '%…%' uses. The extension is put in `public` when it is not
there yet: a per-schema copy would vanish with that schema and take every other schema's indexes with it.

The names start with `search_index_` (backend.models.chat.SEARCH_INDEX_PREFIX): no model describes them,
and schema comparison leaves them out.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b01'
down_revision = '13eb78feb450'
branch_labels = None
depends_on = None

# (FTS table, content table) on SQLite; (index, table) on PostgreSQL.
SOURCES = (("search_index_message", "message"), ("search_index_revision", "message_revision"))


def sqlite_statements(fts: str, table: str) -> list[str]:
    # External content: FTS5 reads the text from `table` by rowid; a 'delete' must repeat the indexed text.
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5(text, content='{table}', content_rowid='id', "
        "tokenize='trigram', columnsize=0)",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, text) VALUES (new.id, new.text); END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, text) VALUES ('delete', old.id, old.text); END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF text ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, text) VALUES ('delete', old.id, old.text); "
        f"INSERT INTO {fts}(rowid, text) VALUES (new.id, new.text); END",
        # Rows written before this migration.
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


def trigram_schema(bind) -> str:
    """The schema pg_trgm lives in, installing it into `public` (or the current schema) if missing."""
    found = bind.execute(sa.text(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    if found:
        return found
    has_public = bind.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")).scalar()
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm" + (" SCHEMA public" if has_public else ""))
    return bind.execute(sa.text(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()


def upgrade():
    op.create_index('ix_message_tenant_sent', 'message', ['tenant_id', 'sent_at', 'id'], unique=False)
    # Conversation search walks last_message_at; older rows may have messages but no value there yet.
    op.execute("UPDATE conversation SET last_message_at = (SELECT max(sent_at) FROM message "
               "WHERE message.conversation_id = conversation.id) WHERE last_message_at IS NULL")
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for fts, table in SOURCES:
            for statement in sqlite_statements(fts, table):
                op.execute(statement)
    elif bind.dialect.name == "postgresql":
        schema = trigram_schema(bind)
        for index, table in SOURCES:
            op.execute(f'CREATE INDEX {index}_text ON {table} USING gin (text "{schema}".gin_trgm_ops)')


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for fts, _table in SOURCES:
            for trigger in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{trigger}")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
    elif bind.dialect.name == "postgresql":
        # The extension stays: other schemas in the database may use it.
        for index, _table in SOURCES:
            op.execute(f"DROP INDEX IF EXISTS {index}_text")
    op.drop_index('ix_message_tenant_sent', table_name='message')
