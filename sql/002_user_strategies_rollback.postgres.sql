-- The enum type goes too, or a later migrate would fail on CREATE TYPE.
DROP TABLE user_strategies;
DROP TYPE exchange_type;
