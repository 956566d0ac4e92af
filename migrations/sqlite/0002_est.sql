-- EST (RFC 7030): labels (a path segment that selects a profile) and HTTP Basic credentials.

CREATE TABLE est_labels (
    label                   TEXT PRIMARY KEY,
    profile_name            TEXT NOT NULL,
    require_channel_binding BIGINT NOT NULL DEFAULT 0,
    created_at              BIGINT NOT NULL,
    created_by              TEXT NOT NULL
);

CREATE TABLE est_credentials (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    label         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    expires_at    BIGINT,
    uses_left     BIGINT,
    revoked_at    BIGINT,
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL
);
