-- API tokens: who may call the HTTP API, with which role, until when.
-- 18.16-compatible DDL (see 0001), so the server backend has it too.
-- Written only by analytics/auth, which appends a new version of the row
-- for every change (create: version 1; revoke: version 2):
--   token_id     the public part of the token (pgt_<token_id>_<secret>),
--                shown by `patchgrid token list`
--   token_hash   hex SHA-256 of the whole token; the token itself is never
--                stored (it is printed once, at creation)
--   role         viewer, analyst, approver or admin (analytics/auth)
--   expires_at   the token is refused from then on
--   revoked_at   epoch (1970-01-01 00:00:00) until revoked
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id    String,
    version     UInt32,
    name        String,
    role        String,
    token_hash  String,
    created_by  String,
    created_at  DateTime,
    expires_at  DateTime,
    revoked_at  DateTime,
    revoked_by  String
) ENGINE = ReplacingMergeTree(version)
ORDER BY token_id;
