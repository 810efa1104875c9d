"""PostgreSQL schema, versioned in ``voicebot_schema``; migrations run under an advisory lock."""

from __future__ import annotations

# The module itself, not the package: bot.storage imports this schema (no import loop).
import bot.storage.tables as tables

# Leases came with PostgreSQL's first schema (SQLite added them in v7).
_LEASES = """,
        lease_owner TEXT,
        lease_until DOUBLE PRECISION"""

# Each entry migrates from version i to i+1; never edit a released entry, append a new one.
# The same tables, columns and meaning as the SQLite schema (v3 here = SQLite v9; a db copy moves
# rows 1:1).
MIGRATIONS: tuple[str, ...] = (
    f"""
    {tables.jobs(tables.POSTGRES, _LEASES)}
    -- Claims: unfinished jobs by next step time, finished ones by delivery time.
    CREATE INDEX jobs_due ON jobs (next_poll_at) WHERE state IN ('queued', 'submitted');
    CREATE INDEX jobs_undelivered ON jobs (deliver_after)
        WHERE state IN ('completed', 'failed')
          AND delivered_at IS NULL AND delivery_error IS NULL;
    CREATE INDEX jobs_chat ON jobs (platform, chat_id, created_at);
    CREATE INDEX jobs_user ON jobs (platform, user_id, created_at);
    CREATE INDEX jobs_created ON jobs (created_at);
    CREATE INDEX jobs_completed ON jobs (completed_at) WHERE completed_at IS NOT NULL;
    CREATE INDEX jobs_dedup ON jobs (dedup_key) WHERE dedup_key IS NOT NULL;
    CREATE INDEX jobs_active ON jobs (state) WHERE state = 'submitting';
    {tables.job_blobs(tables.POSTGRES)}
    {tables.settings(tables.POSTGRES, "chat")}
    CREATE TABLE speed_stats (
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        kind TEXT NOT NULL,
        sw DOUBLE PRECISION NOT NULL,
        sx DOUBLE PRECISION NOT NULL,
        sy DOUBLE PRECISION NOT NULL,
        sxx DOUBLE PRECISION NOT NULL,
        sxy DOUBLE PRECISION NOT NULL,
        dev DOUBLE PRECISION NOT NULL,
        samples DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        place DOUBLE PRECISION NOT NULL DEFAULT 0,
        places DOUBLE PRECISION NOT NULL DEFAULT 0,
        PRIMARY KEY (provider, model, kind)
    );
    -- Input audio lives only until the provider has it: dropped by the statement that moves the
    -- job on, so no code path can forget it.
    CREATE FUNCTION voicebot_drop_input() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM job_blobs WHERE job_id = NEW.id AND role = 'input';
        RETURN NULL;
    END $$;
    CREATE TRIGGER jobs_drop_input AFTER UPDATE OF state ON jobs FOR EACH ROW
        WHEN (NEW.state NOT IN ('queued', 'submitting')) EXECUTE FUNCTION voicebot_drop_input();
    """,
)

MIGRATIONS += (
    # v2: /usage from a daily rollup kept by a trigger (the jobs table's sums per UTC day).
    f"""
    {tables.usage_daily(tables.POSTGRES)}
    CREATE FUNCTION voicebot_usage() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        sign INTEGER;
        j jobs;
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            UPDATE usage_daily SET cost = cost + COALESCE(NEW.cost, 0) - COALESCE(OLD.cost, 0),
                currency = COALESCE(NEW.currency, currency)
            WHERE day = floor(NEW.created_at / 86400) * 86400 AND platform = NEW.platform
              AND chat_id = NEW.chat_id AND user_id = NEW.user_id;
            RETURN NULL;
        END IF;
        IF TG_OP = 'INSERT' THEN sign := 1; j := NEW; ELSE sign := -1; j := OLD; END IF;
        INSERT INTO usage_daily AS u (day, platform, chat_id, user_id, jobs, audio_seconds,
                                      chars, cost, currency)
        VALUES (floor(j.created_at / 86400) * 86400, j.platform, j.chat_id, j.user_id, sign,
                sign * CASE WHEN j.kind = 'stt' THEN COALESCE(j.input_duration, 0) ELSE 0 END,
                sign * COALESCE((j.options::jsonb ->> 'chars')::bigint, 0),
                sign * COALESCE(j.cost, 0), j.currency)
        ON CONFLICT (day, platform, chat_id, user_id) DO UPDATE SET
            jobs = u.jobs + excluded.jobs, audio_seconds = u.audio_seconds + excluded.audio_seconds,
            chars = u.chars + excluded.chars, cost = u.cost + excluded.cost,
            currency = COALESCE(excluded.currency, u.currency);
        DELETE FROM usage_daily WHERE jobs <= 0 AND day = floor(j.created_at / 86400) * 86400
          AND platform = j.platform AND chat_id = j.chat_id AND user_id = j.user_id;
        RETURN NULL;
    END $$;
    CREATE TRIGGER jobs_usage AFTER INSERT OR DELETE OR UPDATE OF cost, currency ON jobs
        FOR EACH ROW EXECUTE FUNCTION voicebot_usage();
    """,
)

MIGRATIONS += (
    # v3: local engines (SQLite v9). ``progress``: the share of the work a provider reports while
    # it runs. ``keep_input``: the provider reruns a lost job for free, so its input audio is kept
    # while SUBMITTED (an INTEGER 0/1 as in SQLite, so both backends run the same statements).
    """
    ALTER TABLE jobs ADD COLUMN progress DOUBLE PRECISION;
    ALTER TABLE jobs ADD COLUMN keep_input INTEGER NOT NULL DEFAULT 0;
    DROP TRIGGER jobs_drop_input ON jobs;
    CREATE TRIGGER jobs_drop_input AFTER UPDATE OF state ON jobs FOR EACH ROW
        WHEN (NEW.state NOT IN ('queued', 'submitting')
              AND NOT (NEW.state = 'submitted' AND NEW.keep_input <> 0))
        EXECUTE FUNCTION voicebot_drop_input();
    """,
)

MIGRATIONS += (
    # v4: long recordings (SQLite v10): the parts a long recording is split into, each a durable
    # sub-job of its ``jobs`` row (see the SQLite migration for the columns).
    tables.script(tables.job_parts(tables.POSTGRES)),
)

MIGRATIONS += (
    # v5: summaries and translations (SQLite v11): at most one live job per ``unique_key``.
    tables.UNIQUE_KEY,
)

MIGRATIONS += (
    # v6: a person's own settings (SQLite v12), which win over the chat's (user > chat > config).
    tables.script(tables.settings(tables.POSTGRES, "user")),
)

MIGRATIONS += (
    # v7: /metrics from counts per (state, kind, provider) kept by triggers (SQLite v13). Every
    # job step moves a job between two of these few rows, so one row per combination would make
    # every process's steps queue on its lock: each connection adds into a shard of its own
    # (backend pid mod 16; a shard may go negative) and readers sum the shards. Inserts and
    # deletes are counted per statement (transition tables), so a purge or a bulk load writes
    # each counts row once, not once per job: many versions of one row in one transaction would
    # make each further update of it slower. The triggers come before the backfill: creating
    # them locks out writers until the migration commits, so no job is counted twice or missed.
    """
    CREATE TABLE job_counts (
        state TEXT NOT NULL,
        kind TEXT NOT NULL,
        provider TEXT NOT NULL,
        shard INTEGER NOT NULL DEFAULT 0,
        jobs BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (state, kind, provider, shard)
    );
    CREATE FUNCTION voicebot_job_moved() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        mine INTEGER := pg_backend_pid() % 16;
    BEGIN
        -- Both rows in one statement, in key order, so two steps never lock them crosswise.
        INSERT INTO job_counts AS c (state, kind, provider, shard, jobs)
        SELECT d.state, d.kind, d.provider, mine, d.jobs
        FROM (VALUES (NEW.state, NEW.kind, NEW.provider, 1),
                     (OLD.state, OLD.kind, OLD.provider, -1)) AS d (state, kind, provider, jobs)
        ORDER BY d.state, d.kind, d.provider
        ON CONFLICT (state, kind, provider, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs;
        RETURN NULL;
    END $$;
    CREATE FUNCTION voicebot_jobs_added_or_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        mine INTEGER := pg_backend_pid() % 16;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO job_counts AS c (state, kind, provider, shard, jobs)
            SELECT state, kind, provider, mine, COUNT(*) FROM added
            GROUP BY state, kind, provider ORDER BY state, kind, provider
            ON CONFLICT (state, kind, provider, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs;
        ELSE
            INSERT INTO job_counts AS c (state, kind, provider, shard, jobs)
            SELECT state, kind, provider, mine, -COUNT(*) FROM removed
            GROUP BY state, kind, provider ORDER BY state, kind, provider
            ON CONFLICT (state, kind, provider, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER jobs_count_added AFTER INSERT ON jobs REFERENCING NEW TABLE AS added
        FOR EACH STATEMENT EXECUTE FUNCTION voicebot_jobs_added_or_removed();
    CREATE TRIGGER jobs_count_removed AFTER DELETE ON jobs REFERENCING OLD TABLE AS removed
        FOR EACH STATEMENT EXECUTE FUNCTION voicebot_jobs_added_or_removed();
    CREATE TRIGGER jobs_count_moved AFTER UPDATE OF state, kind, provider ON jobs FOR EACH ROW
        WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.kind IS DISTINCT FROM NEW.kind
              OR OLD.provider IS DISTINCT FROM NEW.provider)
        EXECUTE FUNCTION voicebot_job_moved();
    INSERT INTO job_counts (state, kind, provider, shard, jobs)
        SELECT state, kind, provider, 0, COUNT(*) FROM jobs GROUP BY state, kind, provider;
    """,
)

MIGRATIONS += (
    # v8: links (SQLite v14): a link's job learns its length once downloaded; the daily rollup
    # follows a change of ``input_duration``.
    """
    CREATE FUNCTION voicebot_usage_duration() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE usage_daily SET audio_seconds = audio_seconds
            + COALESCE(NEW.input_duration, 0) - COALESCE(OLD.input_duration, 0)
        WHERE day = floor(NEW.created_at / 86400) * 86400 AND platform = NEW.platform
          AND chat_id = NEW.chat_id AND user_id = NEW.user_id;
        RETURN NULL;
    END $$;
    CREATE TRIGGER jobs_usage_duration AFTER UPDATE OF input_duration ON jobs FOR EACH ROW
        WHEN (NEW.kind = 'stt' AND OLD.input_duration IS DISTINCT FROM NEW.input_duration)
        EXECUTE FUNCTION voicebot_usage_duration();
    """,
)
