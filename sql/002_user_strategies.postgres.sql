-- Trading strategies per user. PostgreSQL variant: an enum for the exchange and JSONB for the settings.
CREATE TYPE exchange_type AS ENUM ('binance', 'kraken', 'coinbase');

CREATE TABLE user_strategies (
  id           BIGSERIAL PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  exchange     exchange_type NOT NULL,
  symbol       TEXT NOT NULL CHECK (symbol ~ '^[A-Z0-9]+/[A-Z0-9]+$'),
  strategy     TEXT NOT NULL,
  config       JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(config) = 'object'),
  max_position NUMERIC(18, 8) NOT NULL CHECK (max_position > 0),
  risk_pct     NUMERIC(5, 2) NOT NULL DEFAULT 1 CHECK (risk_pct > 0 AND risk_pct <= 100),
  enabled      BOOLEAN NOT NULL DEFAULT true,
  created_at   TIMESTAMP NOT NULL DEFAULT now(),
  -- one strategy of a kind per user, exchange and market
  CONSTRAINT user_strategies_unique UNIQUE (user_id, exchange, symbol, strategy)
);
