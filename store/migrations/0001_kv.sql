-- The store's ordered key space (store/engine_pg.go): one row per key of every bucket.
-- path is the bucket's path: its parent's path followed by its name, length-prefixed (uvarint),
-- so that no bucket's path is a prefix of another's unless it is nested in it; the top-level
-- buckets' parent (the root) has the empty path. A nested bucket is a marker row in its parent
-- (is_bucket, value NULL) that carries the bucket's sequence. bytea compares byte-wise (memcmp,
-- then length), which is bbolt's key order.
CREATE TABLE kv (
    path      bytea   NOT NULL,
    key       bytea   NOT NULL,
    value     bytea,
    seq       bigint  NOT NULL DEFAULT 0,
    is_bucket boolean NOT NULL DEFAULT false,
    PRIMARY KEY (path, key),
    CHECK (is_bucket = (value IS NULL))
);

-- The id of the last write transaction that asked for one (Tx.ID).
CREATE TABLE kv_txid (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    id  bigint  NOT NULL
);
INSERT INTO kv_txid (id) VALUES (0);
