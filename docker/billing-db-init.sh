#!/usr/bin/env bash
# Apply include/sql/schema/*.sql (idempotent DDL, in name order) to the billing database.
# Run by the billing-db-init service on every `docker-compose up`, so schema changes reach
# an existing volume too (the same as billing_digest.sql.apply_schema does in Python).
set -euo pipefail
shopt -s nullglob
schema_dir="${SCHEMA_DIR:-/schema}"
files=("$schema_dir"/*.sql)
if (( ${#files[@]} == 0 )); then
    echo "billing-db-init: no schema files under $schema_dir" >&2
    exit 1
fi
for _ in $(seq 60); do pg_isready -q && break; sleep 1; done
for f in "${files[@]}"; do
    echo "billing-db-init: applying ${f##*/}"
    psql -v ON_ERROR_STOP=1 --quiet --single-transaction -f "$f"
done
echo "billing-db-init: schema of ${PGDATABASE} is up to date"
