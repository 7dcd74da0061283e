"""Ordered schema migrations. Append only: never edit a migration that has shipped."""

MIGRATIONS: list[str] = [
    # 1 — the base schema
    """
    CREATE TABLE outputs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('text', 'image', 'gan', 'speech')),
        prompt      TEXT NOT NULL DEFAULT '',
        params      TEXT NOT NULL DEFAULT '{}',      -- JSON
        model       TEXT NOT NULL,
        adapter     TEXT,
        seed        INTEGER,
        text        TEXT,                            -- text outputs
        file        TEXT,                            -- path relative to the data dir
        user        TEXT,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX outputs_kind_created ON outputs (kind, created_at);

    CREATE TABLE ratings (
        id          TEXT PRIMARY KEY,
        output_id   TEXT NOT NULL REFERENCES outputs (id) ON DELETE CASCADE,
        user        TEXT NOT NULL,
        rating      TEXT NOT NULL CHECK (rating IN ('up', 'down')),
        comment     TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        UNIQUE (output_id, user)
    );

    CREATE TABLE datasets (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('text', 'image', 'audio')),
        num_items   INTEGER NOT NULL,
        stats       TEXT NOT NULL DEFAULT '{}',
        warnings    TEXT NOT NULL DEFAULT '[]',
        created_at  TEXT NOT NULL
    );

    CREATE TABLE jobs (
        id            TEXT PRIMARY KEY,
        kind          TEXT NOT NULL,
        dataset_id    TEXT REFERENCES datasets (id) ON DELETE SET NULL,
        base_model    TEXT,
        params        TEXT NOT NULL DEFAULT '{}',
        status        TEXT NOT NULL CHECK (status IN
                        ('queued', 'running', 'completed', 'failed', 'cancelled', 'interrupted')),
        progress      REAL NOT NULL DEFAULT 0,
        step          INTEGER NOT NULL DEFAULT 0,
        total_steps   INTEGER NOT NULL DEFAULT 0,
        metrics       TEXT NOT NULL DEFAULT '{}',
        artifact_type TEXT,
        artifact_id   TEXT,
        error         TEXT,
        pid           INTEGER,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE INDEX jobs_status ON jobs (status, created_at);

    CREATE TABLE adapters (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        type        TEXT NOT NULL CHECK (type IN ('text_adapter', 'text_model', 'image_lora', 'gan')),
        base_model  TEXT NOT NULL,
        job_id      TEXT REFERENCES jobs (id) ON DELETE SET NULL,
        path        TEXT NOT NULL,                   -- relative to the data dir
        meta        TEXT NOT NULL DEFAULT '{}',
        created_at  TEXT NOT NULL
    );

    CREATE TABLE comparisons (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        prompt      TEXT NOT NULL,
        a_output_id TEXT NOT NULL REFERENCES outputs (id) ON DELETE CASCADE,
        b_output_id TEXT NOT NULL REFERENCES outputs (id) ON DELETE CASCADE,
        winner      TEXT CHECK (winner IN ('a', 'b', 'tie', 'both_bad')),
        user        TEXT,
        created_at  TEXT NOT NULL,
        voted_at    TEXT
    );
    """,
    # 2 — API tokens that admins create in Settings (only a hash is stored)
    """
    CREATE TABLE api_tokens (
        id          TEXT PRIMARY KEY,
        user        TEXT NOT NULL,
        token_hash  TEXT NOT NULL UNIQUE,
        label       TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL,
        revoked_at  TEXT
    );
    """,
    # 3 — admin settings changed while the studio runs (precision per engine, content filter),
    # kept across restarts; the value is JSON
    """
    CREATE TABLE settings (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        updated_by  TEXT
    );
    """,
    # 4 — signed-in browser sessions, revocable on the server: the cookie holds a random token,
    # the row only its hash; signing out deletes the row
    """
    CREATE TABLE sessions (
        id          TEXT PRIMARY KEY,
        token_hash  TEXT NOT NULL UNIQUE,
        user        TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        expires_at  TEXT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (user);
    CREATE INDEX sessions_expires ON sessions (expires_at);
    """,
    # 5 — live experiments: versions (arms) that share a kind's unpinned traffic, which output went
    # to which arm (hidden from everyone but admins), and an audit trail of decisions and promotions
    """
    CREATE TABLE experiments (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('text', 'image', 'speech')),
        arms          TEXT NOT NULL,                  -- JSON [{"model", "adapter"}]
        weights       TEXT NOT NULL,                  -- JSON [float], sums to 1
        min_samples   INTEGER NOT NULL,
        auto_promote  INTEGER NOT NULL DEFAULT 0,
        status        TEXT NOT NULL CHECK (status IN ('running', 'concluded', 'stopped')),
        decision      TEXT NOT NULL DEFAULT '{}',     -- JSON
        promoted      INTEGER NOT NULL DEFAULT 0,
        created_by    TEXT,
        created_at    TEXT NOT NULL,
        ended_at      TEXT
    );
    CREATE UNIQUE INDEX experiments_one_running ON experiments (kind) WHERE status = 'running';

    CREATE TABLE experiment_outputs (
        output_id     TEXT PRIMARY KEY REFERENCES outputs (id) ON DELETE CASCADE,
        experiment_id TEXT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
        arm           INTEGER NOT NULL
    );
    CREATE INDEX experiment_outputs_arm ON experiment_outputs (experiment_id, arm);

    CREATE TABLE audit (
        id          TEXT PRIMARY KEY,
        at          TEXT NOT NULL,
        user        TEXT,
        action      TEXT NOT NULL,
        subject     TEXT,
        detail      TEXT NOT NULL DEFAULT '{}'        -- JSON: the evidence
    );
    CREATE INDEX audit_subject ON audit (subject, at);
    """,
    # 6 — reward models (a `reward` job's artifact) are managed like the other trained versions: the
    # type check of `adapters` widens, which SQLite can only do by rebuilding the table
    """
    CREATE TABLE adapters_new (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        type        TEXT NOT NULL CHECK (type IN ('text_adapter', 'text_model', 'image_lora', 'gan',
                                                  'reward_model')),
        base_model  TEXT NOT NULL,
        job_id      TEXT REFERENCES jobs (id) ON DELETE SET NULL,
        path        TEXT NOT NULL,
        meta        TEXT NOT NULL DEFAULT '{}',
        created_at  TEXT NOT NULL
    );
    INSERT INTO adapters_new (id, name, type, base_model, job_id, path, meta, created_at)
        SELECT id, name, type, base_model, job_id, path, meta, created_at FROM adapters;
    DROP TABLE adapters;
    ALTER TABLE adapters_new RENAME TO adapters;
    """,
    # 7 — trained image models (an `image-scratch` job's artifact: a whole Stable Diffusion folder)
    """
    CREATE TABLE adapters_new (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        type        TEXT NOT NULL CHECK (type IN ('text_adapter', 'text_model', 'image_lora', 'image_model',
                                                  'gan', 'reward_model')),
        base_model  TEXT NOT NULL,
        job_id      TEXT REFERENCES jobs (id) ON DELETE SET NULL,
        path        TEXT NOT NULL,
        meta        TEXT NOT NULL DEFAULT '{}',
        created_at  TEXT NOT NULL
    );
    INSERT INTO adapters_new (id, name, type, base_model, job_id, path, meta, created_at)
        SELECT id, name, type, base_model, job_id, path, meta, created_at FROM adapters;
    DROP TABLE adapters;
    ALTER TABLE adapters_new RENAME TO adapters;
    """,
    # 8 — jobs claimed by any of several studio replicas on one database: who runs it (`host:pid:nonce`),
    # until when its lease holds (renewed while it runs; a lapsed lease means the replica died), and a
    # cancel asked for on a replica other than the one running it
    """
    ALTER TABLE jobs ADD COLUMN owner TEXT;
    ALTER TABLE jobs ADD COLUMN lease_until TEXT;
    ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
    """,
    # 9 — the pages' change counters (studio/services/changes.py), shared by the replicas of one database
    """
    CREATE TABLE changes (
        topic       TEXT PRIMARY KEY,
        version     INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 10 — failed sign-ins per account and per client address (studio/services/signin_throttle.py),
    # shared by the replicas of one database; `last` is the time of the latest failure (Unix seconds)
    """
    CREATE TABLE signin_failures (
        scope       TEXT NOT NULL CHECK (scope IN ('account', 'address')),
        key         TEXT NOT NULL,
        count       INTEGER NOT NULL,
        last        REAL NOT NULL,
        PRIMARY KEY (scope, key)
    );
    CREATE INDEX signin_failures_last ON signin_failures (scope, last);
    """,
    # 11 — trained voices (a `speech-finetune` job's artifact: a SpeechT5 voice folder)
    """
    CREATE TABLE adapters_new (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        type        TEXT NOT NULL CHECK (type IN ('text_adapter', 'text_model', 'image_lora', 'image_model',
                                                  'gan', 'reward_model', 'speech_model')),
        base_model  TEXT NOT NULL,
        job_id      TEXT REFERENCES jobs (id) ON DELETE SET NULL,
        path        TEXT NOT NULL,
        meta        TEXT NOT NULL DEFAULT '{}',
        created_at  TEXT NOT NULL
    );
    INSERT INTO adapters_new (id, name, type, base_model, job_id, path, meta, created_at)
        SELECT id, name, type, base_model, job_id, path, meta, created_at FROM adapters;
    DROP TABLE adapters;
    ALTER TABLE adapters_new RENAME TO adapters;
    """,
]
