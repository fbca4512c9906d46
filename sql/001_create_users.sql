-- Users of the trading app. Portable SQL: the same file runs on PostgreSQL and SQLite.
CREATE TABLE users (
  id           TEXT PRIMARY KEY,               -- a UUID chosen by the application
  email        TEXT NOT NULL UNIQUE,
  display_name TEXT,
  created_at   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
