-- Exists only for SQLite: the local file caches the last price per symbol between restarts.
-- PostgreSQL deployments read prices from the market-data service instead, so this version is
-- not part of their plan.
CREATE TABLE price_cache (
  symbol     TEXT PRIMARY KEY,
  price      REAL NOT NULL,
  fetched_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
) WITHOUT ROWID;
