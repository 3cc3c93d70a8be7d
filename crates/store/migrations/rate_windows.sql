-- Rate-limit windows kept by the database, so that limits on login codes and operator keys
-- hold across restarts and between nodes. Shared by both dialects as is.

-- One fixed window per bucket (`code:id:phone:+1555…`, `fail:ip:203.0.113.7`, …): it opens
-- at the first counted attempt and lasts until `expires_at` (Unix ms); `hits` attempts were
-- counted in it. An attempt is counted by one conditional upsert that never takes `hits`
-- past the cap, so concurrent attempts cannot pass it. Expired windows are deleted in passing.
CREATE TABLE rate_windows (
    bucket     TEXT PRIMARY KEY,
    hits       BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX rate_windows_by_expiry ON rate_windows (expires_at);
