-- The cluster-wide send rate (delivery/pace.py, docs/provider-pace.md): one row per limiter (one per SMTP
-- endpoint), shared by every deliver task of every run, backfill and worker. Each sender takes a lease of a
-- few send slots at a time (one round trip per lease, not per message); a slot is a moment on the shared
-- timeline, ``tat`` (GCRA's "theoretical arrival time") is the next free one. A sender that dies holding a
-- lease leaves its slots unused: the others go on at the rate, never faster, and nothing waits for it.
-- The rate is the configured cap, cut by a throttle reply (multiplicative decrease, from what the server
-- was accepting) and creeping back up (additive increase). Idempotent.
CREATE TABLE IF NOT EXISTS digest.send_pace (
    name            text             PRIMARY KEY,     -- the SMTP endpoint, host:port
    tat             timestamptz      NOT NULL DEFAULT clock_timestamp(),  -- the next free send slot
    base_rate       double precision,                 -- msg/s right after the last cut (NULL: never cut)
    base_at         timestamptz,                      -- when it was cut; the rate grows back from there
    win_at          timestamptz      NOT NULL DEFAULT clock_timestamp(),  -- accepted messages: window start
    win_accepted    bigint           NOT NULL DEFAULT 0,
    accepted_rate   double precision,                 -- msg/s the server accepted over the last window
    throttles       bigint           NOT NULL DEFAULT 0,  -- throttle replies reported, ever
    updated_at      timestamptz      NOT NULL DEFAULT clock_timestamp()
);

-- Where the server last throttled us (msg/s: the lower of the rate in force and what it was accepting): after a
-- cut the rate climbs back fast to ``rejoin`` x this, then creeps above it (issue 14, AIMD tuned in bench/).
ALTER TABLE digest.send_pace ADD COLUMN IF NOT EXISTS peak double precision;

-- The rate in force at ``at``: the cap (NULL or <= 0: none) or, after a cut, the cut rate grown back: by ``fast``
-- per second (compounded) up to ``rejoin`` x ``peak`` (where the server throttled: getting back there is safe),
-- then x exp(increase x t^2) (probing for more, gently, then faster); with no peak known (a cut from no limit)
-- by (1 + fast)^2 per second until the next throttle. Never above the cap. NULL: no limit.
CREATE OR REPLACE FUNCTION digest.pace_rate(base_rate double precision, base_at timestamptz, peak double precision,
                                            cap double precision, increase double precision, fast double precision,
                                            rejoin double precision, at timestamptz) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t       double precision := least(greatest(extract(epoch FROM at - base_at), 0), 600);
    target  double precision := rejoin * peak;
    reach   double precision;  -- seconds to climb from base_rate to target
    grown   double precision;
BEGIN
    IF base_rate IS NULL THEN
        RETURN CASE WHEN cap > 0 THEN cap END;
    END IF;
    IF target IS NULL THEN  -- cut from no limit: where the server says no is unknown (TCP's slow start: what
        grown := base_rate * power(1 + fast, 2 * t);  -- was measured while the senders were starting may be low)
        RETURN CASE WHEN cap > 0 THEN least(cap, grown) ELSE grown END;
    ELSIF base_rate >= target OR fast <= 0 THEN
        reach := 0; target := base_rate;
    ELSE
        reach := ln(target / base_rate) / ln(1 + fast);
    END IF;
    -- Probing past the target starts gently (the server refused just above it) and speeds up (the limit may
    -- have been measured low, e.g. while the senders were still starting): x exp(increase x t^2).
    grown := CASE WHEN t < reach THEN base_rate * power(1 + fast, t)
                  ELSE target * exp(least(increase * (t - reach) ^ 2, 50)) END;
    RETURN CASE WHEN cap > 0 THEN least(cap, grown) ELSE grown END;
END
$$;

-- Take a lease of send slots. ``accepted``: messages the caller's server accepted since its last call (the
-- measure a cut starts from). Returns how many slots, the wait before the first (s), the spacing (s; 0: no
-- limit) and the rate in force (NULL: none).
CREATE OR REPLACE FUNCTION digest.pace_take(p_name text, p_cap double precision, p_accepted bigint,
                                            p_lease_seconds double precision, p_increase double precision,
                                            p_fast double precision, p_rejoin double precision,
                                            OUT granted integer, OUT wait_s double precision,
                                            OUT interval_s double precision, OUT rate double precision)
LANGUAGE plpgsql AS $$
DECLARE
    r       digest.send_pace%ROWTYPE;
    now_    timestamptz := clock_timestamp();
    window_ double precision;
    start_  timestamptz;
BEGIN
    INSERT INTO digest.send_pace (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
    SELECT * INTO r FROM digest.send_pace WHERE name = p_name FOR UPDATE;
    window_ := extract(epoch FROM now_ - r.win_at);
    IF window_ > 10 THEN  -- idle a while: what was accepted then says nothing about now
        r.accepted_rate := NULL; r.win_at := now_; r.win_accepted := 0;
    ELSIF window_ >= 1 THEN
        r.accepted_rate := (r.win_accepted + p_accepted) / window_; r.win_at := now_; r.win_accepted := 0;
    ELSE
        r.win_accepted := r.win_accepted + p_accepted;
    END IF;
    rate := digest.pace_rate(r.base_rate, r.base_at, r.peak, p_cap, p_increase, p_fast, p_rejoin, now_);
    IF rate IS NULL THEN
        granted := 50; wait_s := 0; interval_s := 0; start_ := now_;
        r.tat := now_;
    ELSE
        granted := greatest(1, least(100, ceil(rate * p_lease_seconds)))::integer;
        start_ := greatest(r.tat, now_);
        interval_s := 1 / rate;
        wait_s := extract(epoch FROM start_ - now_);
        r.tat := start_ + make_interval(secs => granted / rate);
    END IF;
    IF r.base_rate IS NOT NULL AND (p_cap > 0 AND rate >= p_cap OR rate > 1e6) THEN
        r.base_rate := NULL; r.base_at := NULL;  -- grown back to the cap (or to no limit): forget the cut
    END IF;
    UPDATE digest.send_pace SET tat = r.tat, base_rate = r.base_rate, base_at = r.base_at, win_at = r.win_at,
           win_accepted = r.win_accepted, accepted_rate = r.accepted_rate, updated_at = now_
     WHERE name = p_name;
END
$$;

-- A throttle reply: cut the rate to ``decrease`` x the lower of the rate in force and what the server was
-- accepting (the highest of the cluster's window and the caller's own rate); one cut per ``min_gap`` seconds
-- (the replies of one burst arrive together). ``p_accepted``: as for pace_take. Returns the rate now and, when
-- it cut, what it measured.
CREATE OR REPLACE FUNCTION digest.pace_throttled(p_name text, p_cap double precision, p_decrease double precision,
                                                 p_increase double precision, p_min_gap double precision,
                                                 p_floor double precision, p_accepted bigint,
                                                 p_own_rate double precision, p_fast double precision,
                                                 p_rejoin double precision,
                                                 OUT rate double precision, OUT measured double precision)
LANGUAGE plpgsql AS $$
DECLARE
    r        digest.send_pace%ROWTYPE;
    now_     timestamptz := clock_timestamp();
    window_  double precision;
BEGIN
    INSERT INTO digest.send_pace (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
    SELECT * INTO r FROM digest.send_pace WHERE name = p_name FOR UPDATE;
    rate := digest.pace_rate(r.base_rate, r.base_at, r.peak, p_cap, p_increase, p_fast, p_rejoin, now_);
    UPDATE digest.send_pace SET throttles = throttles + 1, win_accepted = win_accepted + p_accepted
     WHERE name = p_name;
    r.win_accepted := r.win_accepted + p_accepted;
    IF r.base_at IS NOT NULL AND extract(epoch FROM now_ - r.base_at) < p_min_gap THEN
        RETURN;
    END IF;
    window_ := extract(epoch FROM now_ - r.win_at);
    -- The highest of the measures: each lags (senders report with their next lease), and a cut too deep
    -- costs more (it grows back slowly) than one too shallow (the next throttle cuts again).
    measured := greatest(CASE WHEN window_ >= 0.3 AND window_ <= 10 AND r.win_accepted > 0
                              THEN r.win_accepted / window_ END, r.accepted_rate, p_own_rate);
    IF rate IS NULL AND measured IS NULL THEN
        RETURN;  -- no limit yet and nothing measured: no cut (it would start from nothing); the next one cuts
    END IF;
    -- At most halved at once: while every connection pauses, what is accepted says little about the server.
    -- Where the server said no: unknown when no rate was in force (the first throttle, the senders still
    -- starting: what was measured then is no limit); else the lower of the rate in force and what it accepted.
    r.peak := CASE WHEN rate IS NOT NULL THEN least(rate, coalesce(measured, 'Infinity')) END;
    rate := greatest(p_floor, p_decrease * least(coalesce(rate, 'Infinity'), coalesce(measured, 'Infinity')),
                     0.5 * rate);
    UPDATE digest.send_pace SET base_rate = rate, base_at = now_, peak = r.peak, updated_at = now_
     WHERE name = p_name;
END
$$;

-- The provider's daily quota (SES's "maximum send quota": messages per rolling 24 hours), cluster-wide:
-- messages reserved (accepted, or in flight) per time bucket of 1/24 of the window (an hour for 24 h). A
-- message is reserved before it is sent and released when it is not accepted; a sender that dies with a
-- reservation leaves it counted (never over the quota). Idempotent.
CREATE TABLE IF NOT EXISTS digest.send_quota (
    name    text        NOT NULL,  -- the SMTP endpoint, host:port (as digest.send_pace)
    bucket  timestamptz NOT NULL,  -- the bucket's start
    used    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (name, bucket)
);

-- Reserve up to ``p_n`` messages of the quota ``p_limit`` per ``p_window`` seconds (trailing: a bucket counts
-- while any part of it is inside the window, so the count is never under the truth). Serialised on the
-- limiter's row (digest.send_pace), so concurrent senders never reserve past the quota together.
-- Returns how many were reserved (0: the quota is reached), in which bucket, and how many are left.
CREATE OR REPLACE FUNCTION digest.quota_take(p_name text, p_limit bigint, p_window double precision, p_n integer,
                                             OUT granted integer, OUT bucket timestamptz, OUT remaining bigint)
LANGUAGE plpgsql AS $$
DECLARE
    now_   timestamptz := clock_timestamp();
    width_ double precision := p_window / 24;
    used_  bigint;
BEGIN
    INSERT INTO digest.send_pace (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
    PERFORM 1 FROM digest.send_pace WHERE name = p_name FOR UPDATE;
    bucket := to_timestamp(floor(extract(epoch FROM now_) / width_) * width_);
    SELECT coalesce(sum(q.used), 0) INTO used_ FROM digest.send_quota q
     WHERE q.name = p_name AND q.bucket > now_ - make_interval(secs => p_window + width_);
    granted := greatest(0, least(p_n, p_limit - used_));
    remaining := greatest(0, p_limit - used_ - granted);
    IF granted > 0 THEN
        INSERT INTO digest.send_quota AS q (name, bucket, used) VALUES (p_name, bucket, granted)
        ON CONFLICT ON CONSTRAINT send_quota_pkey DO UPDATE SET used = q.used + excluded.used;
    END IF;
    DELETE FROM digest.send_quota q  -- long out of every window
     WHERE q.name = p_name AND q.bucket < now_ - make_interval(secs => 2 * p_window + width_);
END
$$;
