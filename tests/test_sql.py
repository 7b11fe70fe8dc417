"""Loading SQL and applying the schema: idempotent, serialised, from the configured include/ folder."""

import re

import psycopg
import pytest

from billing_digest import sql


def test_apply_schema_twice_changes_nothing(conn):
    def tables():
        return conn.execute("SELECT table_schema, table_name FROM information_schema.tables "
                            "WHERE table_schema IN ('billing', 'digest') ORDER BY 1, 2").fetchall()
    before = tables()
    sql.apply_schema(conn)
    sql.apply_schema(conn)
    assert tables() == before and ("digest", "deliveries") in before


def test_the_include_folder_can_be_moved(tmp_path, monkeypatch):
    (tmp_path / "sql" / "x").mkdir(parents=True)
    (tmp_path / "sql" / "x" / "hello.sql").write_text("SELECT 1")
    monkeypatch.setenv("BILLING_DIGEST_INCLUDE_DIR", str(tmp_path))
    sql.load.cache_clear()
    try:
        assert sql.load("x/hello") == "SELECT 1"
        with pytest.raises(FileNotFoundError):
            sql.load("build/recipients")
    finally:
        monkeypatch.undo()
        sql.load.cache_clear()


def test_every_statement_binds_values_as_parameters():
    for path in (sql.include_dir() / "sql").rglob("*.sql"):
        text = path.read_text()
        # Identifiers (never values) may be composed with psycopg.sql: retention's {table} and {column}.
        identifiers = "psycopg.sql" in text and set(re.findall(r"\{(\w*)\}", text)) <= {"table", "column"}
        assert "{" not in text.replace("{}", "") or path.parent.name == "schema" or identifiers, \
            f"{path}: str.format placeholder?"
        assert "%s" not in text.replace("%%", ""), f"{path}: positional parameter, use %(name)s"


def test_a_schema_error_rolls_everything_back(db_dsn, tmp_path, monkeypatch):
    import shutil

    folder = tmp_path / "include"
    shutil.copytree(sql.include_dir(), folder)
    (folder / "sql" / "schema" / "999_broken.sql").write_text("CREATE TABLE digest.half_done (x int); SELECT nope;")
    monkeypatch.setenv("BILLING_DIGEST_INCLUDE_DIR", str(folder))
    with psycopg.connect(db_dsn) as conn:
        with pytest.raises(psycopg.errors.UndefinedColumn):
            sql.apply_schema(conn)
        conn.rollback()
        assert conn.execute("SELECT to_regclass('digest.half_done')").fetchone()[0] is None
