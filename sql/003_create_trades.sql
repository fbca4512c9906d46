-- Executed trades. user_id stays nullable: trades imported from an exchange may not belong to a user yet.
CREATE TABLE trades (
  id          TEXT PRIMARY KEY,
  user_id     TEXT REFERENCES users (id) ON DELETE SET NULL,
  symbol      TEXT NOT NULL,
  side        TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
  quantity    NUMERIC NOT NULL CHECK (quantity > 0),
  price       NUMERIC NOT NULL CHECK (price > 0),
  executed_at TIMESTAMP NOT NULL
);

CREATE INDEX trades_user_id_idx ON trades (user_id);
