-- The platform schema exactly as robot made it before Alembic (PRAGMA user_version 1),
-- with a few rows, for tests/core/test_migrations.py. Do not edit: it is history.
CREATE TABLE users (
    did TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE wikis (
    slug TEXT PRIMARY KEY,
    owner_did TEXT NOT NULL REFERENCES users(did),
    display_name TEXT NOT NULL,
    is_public INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    page_count INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE memberships (
    wiki_slug TEXT NOT NULL REFERENCES wikis(slug) ON DELETE CASCADE,
    user_did TEXT NOT NULL REFERENCES users(did) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (wiki_slug, user_did)
);
CREATE INDEX memberships_by_user ON memberships(user_did);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    wiki_slug TEXT NOT NULL REFERENCES wikis(slug) ON DELETE CASCADE,
    user_did TEXT NOT NULL REFERENCES users(did) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    label TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX tokens_by_wiki ON tokens(wiki_slug);
CREATE TABLE oauth_login_states (
    state TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE oauth_grants (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    user_did TEXT NOT NULL REFERENCES users(did) ON DELETE CASCADE,
    wiki_slug TEXT NOT NULL REFERENCES wikis(slug) ON DELETE CASCADE,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO users VALUES ('did:plc:old', 'old.test', 1700000000);
INSERT INTO users VALUES ('did:plc:friend', 'friend.test', 1700000001);
INSERT INTO wikis VALUES ('oldwiki', 'did:plc:old', 'Old Wiki', 1, 1700000002, 3, 4096);
INSERT INTO memberships VALUES ('oldwiki', 'did:plc:old', 'admin', 1700000002);
INSERT INTO memberships VALUES ('oldwiki', 'did:plc:friend', 'editor', 1700000003);
-- the hash (SHA-256, hex) of the secret robot_oldsecret
INSERT INTO tokens VALUES ('tok_old', 'c5752a0fa847f295bc8dd7ea1d324698ebf8740c387389e3be4be6e252690b50', 'oldwiki', 'did:plc:friend', 'editor', 'agent', 1700000004, NULL, NULL);
PRAGMA user_version = 1;
