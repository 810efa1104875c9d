"""SQLite schema for jobs and chat settings, versioned with ``PRAGMA user_version`` migrations."""

from __future__ import annotations

# Each entry migrates from version i to i+1; never edit a released entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        platform TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        reply_to TEXT,
        thread_id TEXT,
        origin_extra TEXT NOT NULL DEFAULT '{}',
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        options TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL,
        ticket TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        poll_count INTEGER NOT NULL DEFAULT 0,
        next_poll_at REAL,
        deadline_at REAL NOT NULL,
        queue_position INTEGER,
        result TEXT,
        error TEXT,
        error_code TEXT,
        cost REAL,
        currency TEXT,
        input_duration REAL,
        input_bytes INTEGER,
        dedup_key TEXT,
        progress_message_id TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        submitted_at REAL,
        completed_at REAL,
        delivered_at REAL,
        delivery_message_id TEXT,
        delivery_error TEXT,
        delivery_attempts INTEGER NOT NULL DEFAULT 0,
        deliver_after REAL,
        extra TEXT NOT NULL DEFAULT '{}'
    );
    -- The poller's hot query: unfinished jobs by next poll time.
    CREATE INDEX jobs_due ON jobs (next_poll_at)
        WHERE state IN ('queued', 'submitted');
    -- Finished jobs whose reply has not been accepted yet.
    CREATE INDEX jobs_undelivered ON jobs (deliver_after)
        WHERE state IN ('completed', 'failed')
          AND delivered_at IS NULL AND delivery_error IS NULL;
    CREATE INDEX jobs_chat ON jobs (platform, chat_id, created_at);
    CREATE INDEX jobs_dedup ON jobs (dedup_key) WHERE dedup_key IS NOT NULL;
    CREATE INDEX jobs_active ON jobs (state) WHERE state = 'submitting';
    -- Input audio (kept only until the provider has it) and output audio (voice clips).
    CREATE TABLE job_blobs (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        data BLOB NOT NULL,
        filename TEXT,
        content_type TEXT,
        PRIMARY KEY (job_id, role)
    );
    CREATE TABLE chat_settings (
        platform TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        data TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (platform, chat_id)
    );
    """,
)

MIGRATIONS += (
    # v2: learned provider speed (predictive polling). An exponentially weighted least-squares fit
    # of processing seconds on job size (audio seconds for STT, characters for TTS).
    """
    CREATE TABLE speed_stats (
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        kind TEXT NOT NULL,
        sw REAL NOT NULL,
        sx REAL NOT NULL,
        sy REAL NOT NULL,
        sxx REAL NOT NULL,
        sxy REAL NOT NULL,
        dev REAL NOT NULL,
        samples INTEGER NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (provider, model, kind)
    );
    """,
)

MIGRATIONS += (
    # v3: per-user queries (rate limits, daily caps, /usage, /forget).
    """
    CREATE INDEX jobs_user ON jobs (platform, user_id, created_at);
    CREATE INDEX jobs_created ON jobs (created_at);
    """,
)

MIGRATIONS += (
    # v4: input audio lives only until the provider has it. Dropped by the same statement that
    # moves the job on (submitted, completed, failed), so no code path can forget it and every
    # transition stays a single statement.
    """
    CREATE TRIGGER jobs_drop_input AFTER UPDATE OF state ON jobs
    WHEN NEW.state NOT IN ('queued', 'submitting')
    BEGIN
        DELETE FROM job_blobs WHERE job_id = NEW.id AND role = 'input';
    END;
    """,
)

MIGRATIONS += (
    # v5: speed_stats.dev becomes the *relative* prediction error; restart it from the prior.
    """
    UPDATE speed_stats SET dev = 0.25;
    """,
)

MIGRATIONS += (
    # v6: seconds per queue place, learned from how fast reported queue positions drop.
    """
    ALTER TABLE speed_stats ADD COLUMN place REAL NOT NULL DEFAULT 0;
    ALTER TABLE speed_stats ADD COLUMN places INTEGER NOT NULL DEFAULT 0;
    """,
)

MIGRATIONS += (
    # v7: local engines. ``progress`` is the share of the work a provider reports while it runs
    # (0-1, NULL when it does not measure). ``keep_input`` is set when the job's provider reruns a
    # lost job for free (capability ``rerun_when_lost``): its input audio is kept while SUBMITTED
    # so a run lost to a restart can start again, and dropped once the job ends.
    """
    ALTER TABLE jobs ADD COLUMN progress REAL;
    ALTER TABLE jobs ADD COLUMN keep_input INTEGER NOT NULL DEFAULT 0;
    DROP TRIGGER jobs_drop_input;
    CREATE TRIGGER jobs_drop_input AFTER UPDATE OF state ON jobs
    WHEN NEW.state NOT IN ('queued', 'submitting')
        AND NOT (NEW.state = 'submitted' AND NEW.keep_input)
    BEGIN
        DELETE FROM job_blobs WHERE job_id = NEW.id AND role = 'input';
    END;
    """,
)
