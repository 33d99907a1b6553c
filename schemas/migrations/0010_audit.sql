-- The audit trail: an append-only, hash-chained log of who decided what.
-- 18.16-compatible DDL (see 0001), so a ClickHouse server of any version
-- keeps it. Written and checked only by analytics/audit:
--   seq            1, 2, 3, ... with no gap
--   at             when the change was made (UTC, seconds)
--   actor          who made it: a person, a token name, or "patchgrid <command>"
--   action         what was done, e.g. policy.apply, exception.approve, feed.load
--   object         what it was done to, e.g. "policy:3", "exception:EX-…"
--   before_digest  sha256 of the object's state before ('' when it had none)
--   after_digest   sha256 of its state after ('' when it is gone)
--   detail         a short human-readable summary (covered by the hash)
--   prev_hash      hash of entry seq-1 ('' for seq 1)
--   hash           sha256 over every column above (analytics/audit.Hash)
-- A plain MergeTree, never a Replacing one: an altered, deleted, duplicated
-- or reordered row stays visible to `patchgrid audit verify`, which
-- recomputes the chain and names the first entry that breaks it.
CREATE TABLE IF NOT EXISTS audit_log (
    seq           UInt64,
    at            DateTime,
    actor         String,
    action        String,
    object        String,
    before_digest String,
    after_digest  String,
    detail        String,
    prev_hash     String,
    hash          String
) ENGINE = MergeTree
ORDER BY seq;
