/**
 * The store's tables and functions, created in a schema of their own. Every write is one call of a
 * PL/pgSQL function, so it runs as one transaction in one round trip, as the Redis store's Lua
 * scripts do: the stream's row is locked first (`INSERT ... ON CONFLICT DO UPDATE` or `FOR UPDATE`)
 * and the sequence is bumped in it, which serializes the appends of a stream. Its ids are therefore
 * gap-free and in commit order, and a rolled-back append leaves no hole: the next one takes its
 * number.
 */
import { RewindError } from '@rewind/core'

/** Version of the schema below; stored in `<schema>.meta` so a later release can migrate it. */
export const SCHEMA_VERSION = 1

/** Schema names the store accepts: a plain lower-case identifier, short enough for a channel name. */
const SCHEMA_SHAPE = /^[a-z_][a-z0-9_]{0,39}$/

/**
 * The first statement of each function that locks a stream's row: with the store's lock timeout
 * (0.8 × `commandTimeout`), a write waits that long at most for the row, and fails instead of
 * being applied after its caller gave up. Set here because PgBouncer refuses it at connection start.
 */
const BOUND_LOCK_WAIT = `  IF p_lock_timeout_ms IS NOT NULL THEN
    -- Bounds the wait for the stream's row (local to this transaction): see commandTimeout.
    PERFORM set_config('lock_timeout', p_lock_timeout_ms::text, true);
  END IF;`

/** Throws `ERR_INVALID_ARGUMENT` unless `schema` is a plain lower-case identifier. */
export function checkSchema(schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_SHAPE.test(schema)) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `schema must be 1 to 40 characters among a-z, 0-9 and _, not starting with a digit, got ${JSON.stringify(schema)}`,
      { field: 'schema' },
    )
  }
  return schema
}

/** The channel the store's appends are announced on (`NOTIFY`): one per schema. */
export function channelOf(schema: string): string {
  return `${schema}_events`
}

/**
 * The SQL that creates (or completes) the store's schema; every statement is idempotent. Run by the
 * store on first use unless `createSchema` is false, or by a migration tool of the application.
 *
 * - `streams`: one row per stream: its epoch (fresh for each lifetime of the row, so ids of an
 *   earlier lifetime are recognised), the last sequence number issued, the first one retained, the
 *   bytes retained and when an idle stream may be dropped; for a response also its status, its
 *   producer's lease, its terminal event, its own bounds and how many appends its producer made.
 * - `events`: the retained events, by stream and sequence number. The data is `bytea` (its UTF-8
 *   bytes), since a `text` column cannot hold the NUL character that an event's data may carry.
 */
export function schemaSql(schema: string): string {
  const s = `"${checkSchema(schema)}"`
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.meta (version integer NOT NULL);
INSERT INTO ${s}.meta (version) SELECT ${SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM ${s}.meta);
CREATE TABLE IF NOT EXISTS ${s}.streams (
  stream text PRIMARY KEY,
  epoch text NOT NULL,
  last_seq bigint NOT NULL DEFAULT 0,
  first_seq bigint NOT NULL DEFAULT 1,
  bytes bigint NOT NULL DEFAULT 0,
  expires_at timestamptz,
  status text,
  lease_until timestamptz,
  end_seq bigint,
  ttl_ms bigint,
  max_events bigint,
  max_bytes bigint,
  appended bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS streams_expires_at ON ${s}.streams (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS ${s}.events (
  stream text NOT NULL,
  seq bigint NOT NULL,
  event text NOT NULL,
  is_string boolean NOT NULL,
  data bytea NOT NULL,
  bytes integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (stream, seq)
);

-- The first sequence number to keep of a stream whose events first..last weigh total bytes, under
-- at most max_events events, max_bytes bytes and (unless NULL) max_age_ms milliseconds.
CREATE OR REPLACE FUNCTION ${s}.keep_from(p_stream text, p_first bigint, p_last bigint, p_bytes bigint,
  p_max_events bigint, p_max_bytes bigint, p_max_age_ms bigint) RETURNS bigint
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_first bigint := greatest(p_first, p_last - p_max_events + 1);
  v_from bigint;
BEGIN
  IF p_bytes > p_max_bytes THEN
    SELECT min(t.seq) INTO v_from FROM (
      SELECT e.seq, sum(e.bytes) OVER (ORDER BY e.seq DESC) AS tail
      FROM ${s}.events e WHERE e.stream = p_stream AND e.seq >= v_first) t
    WHERE t.tail <= p_max_bytes;
    v_first := greatest(v_first, coalesce(v_from, p_last + 1));
  END IF;
  IF p_max_age_ms IS NOT NULL THEN
    SELECT e.seq INTO v_from FROM ${s}.events e
    WHERE e.stream = p_stream AND e.seq >= v_first
      AND e.created_at >= clock_timestamp() - p_max_age_ms * interval '1 millisecond'
    ORDER BY e.seq LIMIT 1;
    v_first := greatest(v_first, coalesce(v_from, p_last + 1));
  END IF;
  RETURN v_first;
END $fn$;

-- Removes the events before p_keep and records the new bounds in the stream's (locked) row.
CREATE OR REPLACE FUNCTION ${s}.trim_to(p_stream text, p_first bigint, p_keep bigint, p_last bigint,
  p_bytes bigint) RETURNS void
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_freed bigint := 0;
BEGIN
  IF p_keep > p_first THEN
    WITH gone AS (DELETE FROM ${s}.events WHERE stream = p_stream AND seq < p_keep RETURNING bytes)
    SELECT coalesce(sum(bytes), 0) INTO v_freed FROM gone;
  END IF;
  UPDATE ${s}.streams SET last_seq = p_last, first_seq = greatest(p_first, p_keep), bytes = p_bytes - v_freed
  WHERE stream = p_stream;
END $fn$;

-- Appends events to a feed (creating its row, with p_epoch, if there is none) and returns the
-- stream's epoch and the sequence number of the last event appended.
CREATE OR REPLACE FUNCTION ${s}.append(p_stream text, p_epoch text, p_events text[], p_strings boolean[],
  p_data bytea[], p_bytes integer[], p_max_events bigint, p_max_bytes bigint, p_max_age_ms bigint,
  p_ttl_ms bigint, OUT epoch text, OUT last_seq bigint, p_lock_timeout_ms bigint DEFAULT NULL)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_row record;
  v_count bigint := coalesce(array_length(p_data, 1), 0);
  v_added bigint;
  v_keep bigint;
BEGIN
${BOUND_LOCK_WAIT}
  INSERT INTO ${s}.streams AS t (stream, epoch, expires_at)
  VALUES (p_stream, p_epoch, clock_timestamp() + p_ttl_ms * interval '1 millisecond')
  ON CONFLICT (stream) DO UPDATE SET expires_at = excluded.expires_at
  RETURNING t.epoch, t.last_seq, t.first_seq, t.bytes, t.status, (t.xmax = 0) AS inserted INTO v_row;
  IF v_row.status IS NOT NULL THEN
    RAISE EXCEPTION 'stream % is a response', p_stream USING ERRCODE = 'P0001';
  END IF;
  IF v_row.inserted THEN
    -- A new lifetime: nothing of an earlier one may remain under its sequence numbers.
    DELETE FROM ${s}.events WHERE stream = p_stream;
  END IF;
  INSERT INTO ${s}.events (stream, seq, event, is_string, data, bytes)
  SELECT p_stream, v_row.last_seq + i, p_events[i], p_strings[i], p_data[i], p_bytes[i]
  FROM generate_subscripts(p_data, 1) AS i;
  SELECT coalesce(sum(b), 0) INTO v_added FROM unnest(p_bytes) AS b;
  v_keep := ${s}.keep_from(p_stream, v_row.first_seq, v_row.last_seq + v_count, v_row.bytes + v_added,
    p_max_events, p_max_bytes, p_max_age_ms);
  PERFORM ${s}.trim_to(p_stream, v_row.first_seq, v_keep, v_row.last_seq + v_count, v_row.bytes + v_added);
  epoch := v_row.epoch;
  last_seq := v_row.last_seq + v_count;
END $fn$;

-- Creates an active response; false if its stream's row exists and has not expired.
CREATE OR REPLACE FUNCTION ${s}.create_response(p_stream text, p_epoch text, p_lease_ms bigint,
  p_expiry_ms bigint, p_ttl_ms bigint, p_max_events bigint, p_max_bytes bigint,
  p_lock_timeout_ms bigint DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_expires timestamptz;
BEGIN
${BOUND_LOCK_WAIT}
  SELECT expires_at INTO v_expires FROM ${s}.streams WHERE stream = p_stream FOR UPDATE;
  IF FOUND THEN
    IF v_expires IS NULL OR v_expires > clock_timestamp() THEN RETURN false; END IF;
    DELETE FROM ${s}.streams WHERE stream = p_stream;
  END IF;
  DELETE FROM ${s}.events WHERE stream = p_stream;
  INSERT INTO ${s}.streams (stream, epoch, expires_at, status, lease_until, ttl_ms, max_events, max_bytes)
  VALUES (p_stream, p_epoch, clock_timestamp() + p_expiry_ms * interval '1 millisecond', 'active',
    clock_timestamp() + p_lease_ms * interval '1 millisecond', p_ttl_ms, p_max_events, p_max_bytes);
  RETURN true;
EXCEPTION WHEN unique_violation THEN
  RETURN false;
END $fn$;

-- Appends a producer's events to an active response, in its order: the i-th event is its producer's
-- append number p_first_n + i - 1, stored only if the response holds exactly the appends before it.
-- A response's stream holds its producer's appends only (then its end), so append n has sequence
-- number n. Returns the epoch, the status and one sequence number per event: > 0 stored (now, or
-- already: a resend), -1 refused because an earlier append is missing (nothing after it is stored
-- either), -2 not stored because the response is no longer active (or unknown).
CREATE OR REPLACE FUNCTION ${s}.append_response(p_stream text, p_first_n bigint, p_events text[],
  p_strings boolean[], p_data bytea[], p_bytes integer[], OUT epoch text, OUT status text, OUT seqs bigint[],
  p_lock_timeout_ms bigint DEFAULT NULL)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_row ${s}.streams%ROWTYPE;
  v_n bigint;
  v_seq bigint;
  v_added bigint := 0;
  v_keep bigint;
  v_refused boolean := false;
BEGIN
${BOUND_LOCK_WAIT}
  seqs := '{}';
  SELECT * INTO v_row FROM ${s}.streams t WHERE t.stream = p_stream FOR UPDATE;
  IF NOT FOUND OR v_row.status IS DISTINCT FROM 'active' OR v_row.expires_at <= clock_timestamp() THEN
    SELECT array_agg(-2::bigint) INTO seqs FROM generate_subscripts(p_data, 1);
    epoch := v_row.epoch;
    status := v_row.status;
    RETURN;
  END IF;
  v_seq := v_row.last_seq;
  FOR i IN 1 .. coalesce(array_length(p_data, 1), 0) LOOP
    v_n := p_first_n + i - 1;
    IF v_refused OR v_row.appended < v_n - 1 THEN
      v_refused := true;
      seqs := seqs || (-1)::bigint;
    ELSIF v_row.appended >= v_n THEN
      seqs := seqs || v_n;
    ELSE
      v_seq := v_seq + 1;
      INSERT INTO ${s}.events (stream, seq, event, is_string, data, bytes)
      VALUES (p_stream, v_seq, p_events[i], p_strings[i], p_data[i], p_bytes[i]);
      v_added := v_added + p_bytes[i];
      v_row.appended := v_n;
      seqs := seqs || v_seq;
    END IF;
  END LOOP;
  IF v_seq > v_row.last_seq THEN
    v_keep := ${s}.keep_from(p_stream, v_row.first_seq, v_seq, v_row.bytes + v_added,
      v_row.max_events, v_row.max_bytes, NULL);
    PERFORM ${s}.trim_to(p_stream, v_row.first_seq, v_keep, v_seq, v_row.bytes + v_added);
    UPDATE ${s}.streams t SET appended = v_row.appended WHERE t.stream = p_stream;
  END IF;
  epoch := v_row.epoch;
  status := 'active';
END $fn$;

-- Appends the terminal event and records the end, if the response is still active (with
-- p_only_if_lapsed, only if its lease has lapsed too). Returns the status, the epoch and the
-- terminal event's sequence number after the call; no row for an unknown response.
CREATE OR REPLACE FUNCTION ${s}.end_response(p_stream text, p_reason text, p_event text,
  p_string boolean, p_data bytea, p_bytes integer, p_only_if_lapsed boolean, p_ttl_ms bigint,
  p_lock_timeout_ms bigint DEFAULT NULL)
RETURNS TABLE (status text, epoch text, end_seq bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_row ${s}.streams%ROWTYPE;
  v_keep bigint;
BEGIN
${BOUND_LOCK_WAIT}
  SELECT * INTO v_row FROM ${s}.streams t WHERE t.stream = p_stream FOR UPDATE;
  IF NOT FOUND OR v_row.status IS NULL OR v_row.expires_at <= clock_timestamp() THEN RETURN; END IF;
  IF v_row.status <> 'active' THEN
    RETURN QUERY SELECT v_row.status, v_row.epoch, v_row.end_seq;
    RETURN;
  END IF;
  IF p_only_if_lapsed AND v_row.lease_until > clock_timestamp() THEN
    RETURN QUERY SELECT v_row.status, v_row.epoch, NULL::bigint;
    RETURN;
  END IF;
  INSERT INTO ${s}.events (stream, seq, event, is_string, data, bytes)
  VALUES (p_stream, v_row.last_seq + 1, p_event, p_string, p_data, p_bytes);
  v_keep := ${s}.keep_from(p_stream, v_row.first_seq, v_row.last_seq + 1, v_row.bytes + p_bytes,
    v_row.max_events, v_row.max_bytes, NULL);
  PERFORM ${s}.trim_to(p_stream, v_row.first_seq, v_keep, v_row.last_seq + 1, v_row.bytes + p_bytes);
  UPDATE ${s}.streams t SET status = p_reason, end_seq = v_row.last_seq + 1,
    expires_at = clock_timestamp() + coalesce(v_row.ttl_ms, p_ttl_ms) * interval '1 millisecond'
  WHERE t.stream = p_stream;
  RETURN QUERY SELECT p_reason, v_row.epoch, v_row.last_seq + 1;
END $fn$;
`
}
