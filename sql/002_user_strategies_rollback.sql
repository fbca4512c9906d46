-- Portable rollback; PostgreSQL uses 002_user_strategies_rollback.postgres.sql instead.
DROP TABLE user_strategies;
