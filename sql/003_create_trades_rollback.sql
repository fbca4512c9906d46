DROP INDEX trades_user_id_idx;
DROP TABLE trades;
