-- Trading strategies per user. SQLite variant: CHECK stands in for the enum, TEXT holds the JSON.
CREATE TABLE user_strategies (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  exchange     TEXT NOT NULL CHECK (exchange IN ('binance', 'kraken', 'coinbase')),
  symbol       TEXT NOT NULL CHECK (symbol GLOB '[A-Z0-9]*/[A-Z0-9]*'),
  strategy     TEXT NOT NULL,
  config       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config) AND json_type(config) = 'object'),
  max_position NUMERIC NOT NULL CHECK (max_position > 0),
  risk_pct     NUMERIC NOT NULL DEFAULT 1 CHECK (risk_pct > 0 AND risk_pct <= 100),
  enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at   TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT user_strategies_unique UNIQUE (user_id, exchange, symbol, strategy)
);
