"""SQLite schema for jobs and chat settings, versioned with ``PRAGMA user_version`` migrations."""

from __future__ import annotations

# The module itself, not the package: bot.storage imports this schema (no import loop).
import bot.storage.tables as tables

# Each entry migrates from version i to i+1; never edit a released entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    f"""
    {tables.jobs(tables.SQLITE)}
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
    {tables.job_blobs(tables.SQLITE)}
    {tables.settings(tables.SQLITE, "chat")}
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
    # v7: leases (several processes share the work: a step is claimed before it runs), finished
    # jobs by completion time for purge, and cancellation (a final state, like failed).
    """
    ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
    ALTER TABLE jobs ADD COLUMN lease_until REAL;
    CREATE INDEX jobs_completed ON jobs (completed_at) WHERE completed_at IS NOT NULL;
    """,
)

MIGRATIONS += (
    # v8: /usage from a daily rollup kept by triggers (exactly the jobs table's sums per UTC day
    # of creation, so a 30-day answer reads ~30 rows per user instead of every job).
    f"""
    {tables.usage_daily(tables.SQLITE)}
    INSERT INTO usage_daily
        SELECT CAST(created_at / 86400 AS INTEGER) * 86400.0, platform, chat_id, user_id,
               COUNT(*), COALESCE(SUM(CASE WHEN kind = 'stt' THEN input_duration END), 0),
               COALESCE(SUM(json_extract(options, '$.chars')), 0), COALESCE(SUM(cost), 0),
               MAX(currency)
        FROM jobs GROUP BY 1, 2, 3, 4;
    CREATE TRIGGER usage_on_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO usage_daily (day, platform, chat_id, user_id, jobs, audio_seconds, chars,
                                 cost, currency)
        VALUES (CAST(NEW.created_at / 86400 AS INTEGER) * 86400.0, NEW.platform, NEW.chat_id,
                NEW.user_id, 1, CASE WHEN NEW.kind = 'stt' THEN COALESCE(NEW.input_duration, 0)
                ELSE 0 END, COALESCE(json_extract(NEW.options, '$.chars'), 0),
                COALESCE(NEW.cost, 0), NEW.currency)
        ON CONFLICT (day, platform, chat_id, user_id) DO UPDATE SET
            jobs = jobs + 1, audio_seconds = audio_seconds + excluded.audio_seconds,
            chars = chars + excluded.chars, cost = cost + excluded.cost,
            currency = COALESCE(excluded.currency, currency);
    END;
    CREATE TRIGGER usage_on_cost AFTER UPDATE OF cost, currency ON jobs BEGIN
        UPDATE usage_daily SET cost = cost + COALESCE(NEW.cost, 0) - COALESCE(OLD.cost, 0),
            currency = COALESCE(NEW.currency, currency)
        WHERE day = CAST(NEW.created_at / 86400 AS INTEGER) * 86400.0
          AND platform = NEW.platform AND chat_id = NEW.chat_id AND user_id = NEW.user_id;
    END;
    CREATE TRIGGER usage_on_delete AFTER DELETE ON jobs BEGIN
        UPDATE usage_daily SET jobs = jobs - 1,
            audio_seconds = audio_seconds
                - CASE WHEN OLD.kind = 'stt' THEN COALESCE(OLD.input_duration, 0) ELSE 0 END,
            chars = chars - COALESCE(json_extract(OLD.options, '$.chars'), 0),
            cost = cost - COALESCE(OLD.cost, 0)
        WHERE day = CAST(OLD.created_at / 86400 AS INTEGER) * 86400.0
          AND platform = OLD.platform AND chat_id = OLD.chat_id AND user_id = OLD.user_id;
        DELETE FROM usage_daily WHERE jobs <= 0
          AND day = CAST(OLD.created_at / 86400 AS INTEGER) * 86400.0
          AND platform = OLD.platform AND chat_id = OLD.chat_id AND user_id = OLD.user_id;
    END;
    """,
)

MIGRATIONS += (
    # v9: local engines. ``progress`` is the share of the work a provider reports while it runs
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

MIGRATIONS += (
    # v10: long recordings. A recording longer or larger than its model accepts is split at
    # silences into parts, each a durable sub-job of its parent (the ``jobs`` row, which alone
    # counts for limits, usage and replies). A part keeps its audio until the provider has it;
    # its own state, ticket, result and cost make a restart resume without paying a finished
    # part again. ``audio_start``: where the part begins in the recording (seconds).
    tables.script(tables.job_parts(tables.SQLITE)),
)

MIGRATIONS += (
    # v11: summaries and translations. ``unique_key`` names what a job produces (transcript +
    # action + language + model): at most one live job per key, so a button pressed twice (or
    # by two people, or replayed after a crash) never pays twice. A failed or cancelled job gives
    # its key up when the same thing is asked again.
    tables.UNIQUE_KEY,
)

MIGRATIONS += (
    # v12: a person's own settings (transcription language, voice, interface language), which win
    # over the chat's in every chat they use (user > chat > config).
    tables.script(tables.settings(tables.SQLITE, "user")),
)

MIGRATIONS += (
    # v13: /metrics from a count per (state, kind, provider) kept by triggers, exactly the jobs
    # table's GROUP BY, so a scrape reads a few rows instead of every job (at 1M jobs the
    # GROUP BY held the event loop, and with it every job step, for most of a second).
    # A combination that drops to 0 keeps its row (the next job of it reuses it); readers skip it.
    """
    CREATE TABLE job_counts (
        state TEXT NOT NULL,
        kind TEXT NOT NULL,
        provider TEXT NOT NULL,
        jobs INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (state, kind, provider)
    ) WITHOUT ROWID;
    INSERT INTO job_counts (state, kind, provider, jobs)
        SELECT state, kind, provider, COUNT(*) FROM jobs GROUP BY state, kind, provider;
    CREATE TRIGGER job_counts_on_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO job_counts (state, kind, provider, jobs)
        VALUES (NEW.state, NEW.kind, NEW.provider, 1)
        ON CONFLICT (state, kind, provider) DO UPDATE SET jobs = jobs + 1;
    END;
    CREATE TRIGGER job_counts_on_move AFTER UPDATE OF state, kind, provider ON jobs
    WHEN OLD.state IS NOT NEW.state OR OLD.kind IS NOT NEW.kind
        OR OLD.provider IS NOT NEW.provider
    BEGIN
        UPDATE job_counts SET jobs = jobs - 1
        WHERE state = OLD.state AND kind = OLD.kind AND provider = OLD.provider;
        INSERT INTO job_counts (state, kind, provider, jobs)
        VALUES (NEW.state, NEW.kind, NEW.provider, 1)
        ON CONFLICT (state, kind, provider) DO UPDATE SET jobs = jobs + 1;
    END;
    CREATE TRIGGER job_counts_on_delete AFTER DELETE ON jobs BEGIN
        UPDATE job_counts SET jobs = jobs - 1
        WHERE state = OLD.state AND kind = OLD.kind AND provider = OLD.provider;
    END;
    """,
)

MIGRATIONS += (
    # v14: links. A link's job is stored before its audio is downloaded, and learns its length
    # only then: the daily rollup follows a change of ``input_duration`` as it follows the cost.
    """
    CREATE TRIGGER usage_on_duration AFTER UPDATE OF input_duration ON jobs
    WHEN NEW.kind = 'stt' AND OLD.input_duration IS NOT NEW.input_duration
    BEGIN
        UPDATE usage_daily SET audio_seconds = audio_seconds
            + COALESCE(NEW.input_duration, 0) - COALESCE(OLD.input_duration, 0)
        WHERE day = CAST(NEW.created_at / 86400 AS INTEGER) * 86400.0
          AND platform = NEW.platform AND chat_id = NEW.chat_id AND user_id = NEW.user_id;
    END;
    """,
)
