-- ics_hash 0.1.0 -> 0.2.0 (ALTER EXTENSION ics_hash UPDATE). Every change to the extension's
-- SQL objects between the two releases goes here, so that an updated database has exactly
-- the objects of a fresh CREATE EXTENSION (tests/cluster/upgrade.sh extension compares them).
-- 0.2.0 adds PostgreSQL 16 and 18 and installs; its SQL objects are 0.1.0's.

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ics_hash UPDATE TO '0.2.0'" to load this file. \quit
