#!/usr/bin/env bash
# Start Debian's PostgreSQL on 127.0.0.1 for the store and multi-instance tests; print the URL on success, nothing
# on failure. The role may create databases: each multi-instance test starts on a fresh, empty one.
set -u
command -v pg_ctlcluster >/dev/null 2>&1 || { (apt-get install -y -q postgresql >/dev/null 2>&1) || exit 0; }
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
[ -n "$version" ] || exit 0
pg_lsclusters -h 2>/dev/null | grep -q "^$version main" || pg_createcluster "$version" main >/dev/null 2>&1 || exit 0
pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
pg_isready -h 127.0.0.1 -q || exit 0
su postgres -c "psql -q -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='arena') THEN CREATE ROLE arena LOGIN CREATEDB PASSWORD 'arena'; END IF; ALTER ROLE arena CREATEDB; END \\\$\\\$;\"" >/dev/null 2>&1 || exit 0
su postgres -c "psql -q -c 'DROP DATABASE IF EXISTS arena_test' -c 'CREATE DATABASE arena_test OWNER arena'" >/dev/null 2>&1 || exit 0
echo "postgresql+psycopg://arena:arena@127.0.0.1:5432/arena_test"
