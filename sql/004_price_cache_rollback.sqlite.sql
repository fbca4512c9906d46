DROP TABLE price_cache;
