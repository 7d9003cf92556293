-- Login attempts in flight: counted against the throttle before the password is checked, so
-- parallel guesses cannot all pass a read-then-check. A row outlives a crashed request only
-- until expires_at.
CREATE TABLE login_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    scope_key TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX login_attempts_scope ON login_attempts (scope_key, expires_at);

-- One row per refresh-token family (a login on a device). Access tokens carry its id and are
-- refused once it is revoked (logout, refresh-token reuse, a new login on the device,
-- disabling the account).
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    device_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Families from before this migration: live while any of their tokens is unrevoked.
INSERT INTO sessions (id, user_id, device_id, created_at, revoked_at)
SELECT family_id, MIN(user_id), MIN(device_id), MIN(created_at),
       CASE WHEN COUNT(*) = COUNT(revoked_at) THEN MAX(revoked_at) END
FROM refresh_tokens
GROUP BY family_id;
