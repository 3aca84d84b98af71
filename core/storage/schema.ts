/** The kernel's own tables: conversations, inbound messages, the outbox and its history, consent, keys, usage. */
import type { Migration } from '../plugin.js';

export const coreMigrations: Migration[] = [
  {
    id: '001_core',
    sql: `
CREATE TABLE parley_api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id text NOT NULL,
  key_hash text NOT NULL UNIQUE,
  label text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
CREATE INDEX parley_api_keys_tenant ON parley_api_keys (tenant_id);

CREATE TABLE parley_conversations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id text NOT NULL,
  channel text NOT NULL,
  thread_key text NOT NULL,
  participant text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_message_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, channel, thread_key)
);
CREATE INDEX parley_conversations_participant ON parley_conversations (tenant_id, participant);

CREATE TABLE parley_inbound (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id text NOT NULL,
  channel text NOT NULL,
  provider_message_id text NOT NULL,
  conversation_id uuid NOT NULL REFERENCES parley_conversations (id) ON DELETE CASCADE,
  from_address text NOT NULL,
  to_address text NOT NULL,
  body text NOT NULL,
  media jsonb NOT NULL DEFAULT '[]',
  attributes jsonb NOT NULL DEFAULT '{}',
  raw jsonb,
  received_at timestamptz NOT NULL DEFAULT now(),
  status text NOT NULL DEFAULT 'received',
  stop_reason text,
  error text,
  stages jsonb NOT NULL DEFAULT '[]',
  annotations jsonb NOT NULL DEFAULT '{}',
  processed_at timestamptz,
  UNIQUE (tenant_id, channel, provider_message_id)
) WITH (fillfactor = 80);
CREATE INDEX parley_inbound_conversation ON parley_inbound (conversation_id, received_at);

-- Messages whose pipeline has not finished: a row from the insert to the end of processing. The
-- recovery sweep reads this small table; keeping it apart lets the message's own update stay HOT
-- (no indexed column of parley_inbound changes when processing ends).
CREATE TABLE parley_inbound_claims (
  inbound_id uuid PRIMARY KEY REFERENCES parley_inbound (id) ON DELETE CASCADE,
  tenant_id text NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE parley_outbox (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id text NOT NULL,
  channel text NOT NULL,
  conversation_id uuid REFERENCES parley_conversations (id) ON DELETE CASCADE,
  inbound_id uuid REFERENCES parley_inbound (id) ON DELETE CASCADE,
  seq int NOT NULL DEFAULT 0,
  to_address text NOT NULL,
  from_address text NOT NULL DEFAULT '',
  body text NOT NULL,
  media jsonb NOT NULL DEFAULT '[]',
  options jsonb NOT NULL DEFAULT '{}',
  status text NOT NULL DEFAULT 'pending',
  via text,
  attempts int NOT NULL DEFAULT 0,
  provider_message_id text,
  error_code text,
  error text,
  details jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz
);
CREATE INDEX parley_outbox_tenant_status ON parley_outbox (tenant_id, status, created_at);
CREATE INDEX parley_outbox_provider_id ON parley_outbox (channel, provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX parley_outbox_inbound ON parley_outbox (inbound_id);
-- Replies are found through their conversation; only messages outside one (reminders, campaigns)
-- need an index on the address, for data-subject requests.
CREATE INDEX parley_outbox_to ON parley_outbox (tenant_id, to_address) WHERE conversation_id IS NULL;

CREATE TABLE parley_outbox_events (
  id bigserial PRIMARY KEY,
  outbox_id uuid NOT NULL REFERENCES parley_outbox (id) ON DELETE CASCADE,
  tenant_id text NOT NULL,
  status text NOT NULL,
  error_code text,
  detail jsonb,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parley_outbox_events_outbox ON parley_outbox_events (outbox_id, id);
CREATE UNIQUE INDEX parley_outbox_events_provider_status ON parley_outbox_events (outbox_id, status)
  WHERE status IN ('queued', 'sent', 'delivered', 'read', 'undelivered', 'failed');

CREATE TABLE parley_consent (
  tenant_id text NOT NULL,
  address text NOT NULL,
  status text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, address)
);
CREATE TABLE parley_consent_events (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  address text NOT NULL,
  status text NOT NULL,
  source text NOT NULL,
  channel text,
  detail text,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parley_consent_events_subject ON parley_consent_events (tenant_id, address, id);

CREATE TABLE parley_audit (
  id bigserial PRIMARY KEY,
  tenant_id text,
  actor text NOT NULL,
  action text NOT NULL,
  subject_hash text,
  detail jsonb NOT NULL DEFAULT '{}',
  at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    id: '002_claim_fencing',
    sql: `
-- A claim carries a token: only the run that holds the current token may finish the message, so a
-- run overtaken by the recovery sweep (slow stage, another instance) cannot write replies too.
ALTER TABLE parley_inbound_claims ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();

-- One reply per (inbound message, sequence number). Databases written before the fence may hold the
-- duplicates it prevents: keep the first of each and detach the others (they stay in the outbox and
-- its history, with the message they copied noted in details).
WITH ranked AS (
  SELECT id, inbound_id, row_number() OVER (PARTITION BY inbound_id, seq ORDER BY created_at, id) AS n
    FROM parley_outbox WHERE inbound_id IS NOT NULL
)
UPDATE parley_outbox o SET details = o.details || jsonb_build_object('duplicateOfInbound', o.inbound_id), inbound_id = NULL
  FROM ranked r WHERE r.id = o.id AND r.n > 1;
DROP INDEX parley_outbox_inbound;
CREATE UNIQUE INDEX parley_outbox_inbound_seq ON parley_outbox (inbound_id, seq) WHERE inbound_id IS NOT NULL;
`,
  },
  {
    id: '003_usage',
    sql: `
-- Every cost event (model tokens, SMS segments, call minutes) per tenant, for cost guards and billing.
-- No personal data: no addresses, no bodies. A ref (a message id) makes a re-run record nothing twice.
CREATE TABLE parley_usage (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  kind text NOT NULL,
  quantity numeric NOT NULL,
  unit text NOT NULL,
  cost_usd numeric(16, 8),
  plugin text NOT NULL,
  ref text,
  attributes jsonb NOT NULL DEFAULT '{}',
  at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX parley_usage_ref ON parley_usage (tenant_id, kind, ref) WHERE ref IS NOT NULL;
CREATE INDEX parley_usage_tenant_at ON parley_usage (tenant_id, at);
`,
  },
  {
    id: '004_handoff',
    sql: `
-- Who answers a conversation: the tenant's bot stages, or a human (they are skipped meanwhile).
ALTER TABLE parley_conversations
  ADD COLUMN handoff text NOT NULL DEFAULT 'bot' CHECK (handoff IN ('bot', 'human')),
  ADD COLUMN handoff_reason text,
  ADD COLUMN handoff_by text,
  ADD COLUMN handoff_at timestamptz;
`,
  },
  {
    id: '005_parked_webhooks',
    sql: `
-- Provider webhooks that were signed but could not be stored (core/parking.ts): kept so nothing is
-- lost silently, while the provider gets a 200 instead of retrying a poison message for days.
CREATE TABLE parley_parked_webhooks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id text,
  channel text NOT NULL,
  reason text NOT NULL,
  payload text NOT NULL,
  address_hashes text[] NOT NULL DEFAULT '{}',
  parked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parley_parked_webhooks_tenant ON parley_parked_webhooks (tenant_id, parked_at);
`,
  },
  {
    id: '006_held_messages',
    sql: `
-- A stage may hold a message (stage.hold): it is finished with status 'held' and the stage that held
-- it; gateway.resume continues it from the stage after resume_after (recovery reads it too, so a
-- resumed run that dies continues from the same point rather than from the first stage).
ALTER TABLE parley_inbound ADD COLUMN held_stage text, ADD COLUMN resume_after text;
`,
  },
  {
    id: '007_audit_chain',
    sql: `
-- The audit trail is append-only and hash-chained (core/audit.ts verifies it: parley audit verify).
-- Every writer goes through this trigger, whatever it inserts: under a transaction-scoped advisory
-- lock it numbers the row (seq, the chain order: ids are taken before the lock, so they may commit
-- out of order), stores the previous row's hash and the row's own hash over its fields and that
-- previous hash. An edited row no longer matches its hash; a deleted row breaks the next row's link.
ALTER TABLE parley_audit ADD COLUMN seq bigint, ADD COLUMN prev_hash text, ADD COLUMN hash text;

CREATE FUNCTION parley_audit_field(f text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $f$ SELECT CASE WHEN f IS NULL THEN '-;' ELSE octet_length(f)::text || ':' || f END $f$;

CREATE FUNCTION parley_audit_row_hash(id bigint, tenant_id text, actor text, action text, subject_hash text, detail jsonb, at timestamptz, prev_hash text)
  RETURNS text LANGUAGE sql IMMUTABLE AS $f$
  SELECT encode(sha256(convert_to(
    parley_audit_field(id::text) || parley_audit_field(tenant_id) || parley_audit_field(actor) || parley_audit_field(action) ||
    parley_audit_field(subject_hash) || parley_audit_field(detail::text) ||
    parley_audit_field(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) || parley_audit_field(prev_hash), 'UTF8')), 'hex')
$f$;

DO $do$
DECLARE r record; prev text := 'genesis'; n bigint := 0;
BEGIN
  FOR r IN SELECT * FROM parley_audit ORDER BY id LOOP
    n := n + 1;
    UPDATE parley_audit SET seq = n, prev_hash = prev,
      hash = parley_audit_row_hash(r.id, r.tenant_id, r.actor, r.action, r.subject_hash, r.detail, r.at, prev)
      WHERE id = r.id RETURNING hash INTO prev;
  END LOOP;
END
$do$;
CREATE UNIQUE INDEX parley_audit_seq ON parley_audit (seq);

CREATE FUNCTION parley_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE last_seq bigint; last_hash text;
BEGIN
  PERFORM pg_advisory_xact_lock(7209011507);
  SELECT seq, hash INTO last_seq, last_hash FROM parley_audit ORDER BY seq DESC NULLS LAST LIMIT 1;
  NEW.seq := COALESCE(last_seq, 0) + 1;
  NEW.prev_hash := COALESCE(last_hash, 'genesis');
  NEW.hash := parley_audit_row_hash(NEW.id, NEW.tenant_id, NEW.actor, NEW.action, NEW.subject_hash, NEW.detail, NEW.at, NEW.prev_hash);
  RETURN NEW;
END
$f$;
CREATE TRIGGER parley_audit_chain BEFORE INSERT ON parley_audit FOR EACH ROW EXECUTE FUNCTION parley_audit_chain();

CREATE FUNCTION parley_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  RAISE EXCEPTION 'parley_audit is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$f$;
CREATE TRIGGER parley_audit_append_only BEFORE UPDATE OR DELETE ON parley_audit FOR EACH ROW EXECUTE FUNCTION parley_audit_append_only();
CREATE TRIGGER parley_audit_no_truncate BEFORE TRUNCATE ON parley_audit FOR EACH STATEMENT EXECUTE FUNCTION parley_audit_append_only();
`,
  },
  {
    id: '008_console_sessions',
    sql: `
-- Console sign-ins (core/console): the cookie's token and the key it was made from are kept only as
-- hashes; every request re-checks the key, so revoking it ends its sessions.
CREATE TABLE parley_console_sessions (
  token_hash text PRIMARY KEY,
  key_hash text NOT NULL,
  csrf text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX parley_console_sessions_expiry ON parley_console_sessions (expires_at);
-- The console's activity chart reads the last hour of messages: block-range indexes find the newest
-- blocks of these append-ordered tables at almost no cost to the inserts of the hot path.
CREATE INDEX parley_inbound_received_brin ON parley_inbound USING brin (received_at);
CREATE INDEX parley_outbox_created_brin ON parley_outbox USING brin (created_at);
`,
  },
  {
    id: '009_hot_table_statistics',
    sql: `
-- ANALYZE of the tables every message writes (the embedded maintenance job runs it every few seconds
-- under load, autovacuum does on a server) samples 300 rows per unit of the largest statistics target
-- and computes statistics for every column. The payload columns (jsonb, message text, errors) are never
-- what a plan is chosen by, and on PGlite their statistics made ANALYZE of parley_inbound hold the
-- single session for 230-340 ms at 11,500 rows, every message waiting (bench/README.md, step 7). They
-- get none; the keys and states a target of 10 (a 3,000-row sample, whatever the table's size).
-- A column added to these tables later takes the default (100) and brings the 30,000-row sample back:
-- give it a target too (test/db-maintenance.test.ts checks).
DO $do$
DECLARE c record;
BEGIN
  FOR c IN
    SELECT a.attrelid::regclass AS tab, a.attname AS col,
           CASE WHEN t.typname IN ('jsonb', 'json') OR a.attname IN ('body', 'error', 'stop_reason', 'error_code', 'handoff_reason') THEN 0 ELSE 10 END AS target
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid IN ('parley_inbound'::regclass, 'parley_inbound_claims'::regclass, 'parley_outbox'::regclass, 'parley_outbox_events'::regclass, 'parley_conversations'::regclass)
       AND a.attnum > 0 AND NOT a.attisdropped
  LOOP
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', c.tab, c.col, c.target);
  END LOOP;
END
$do$;
`,
  },
  {
    id: '010_time_ordered_ids',
    sql: `
-- Inbound messages and outbox items get time-ordered ids (the layout of RFC 9562's UUIDv7: 48 bits of
-- Unix milliseconds, then random bits). Random ids put every new key of the primary keys, of
-- parley_outbox_inbound_seq and of the rows keyed by an outbox id (events, usage) on a random page of
-- an index that outgrows the buffers as messages accumulate; time-ordered ones append at the right
-- edge, so the pages a message writes stay cached whatever the stored history (bench/README.md,
-- step 7). PostgreSQL 15 has no uuidv7(), hence these. The two-argument form makes an id for a given
-- time from given random bits (the bench's bulk load of past messages uses it).
CREATE FUNCTION parley_uuid_v7(at timestamptz, random_bits uuid) RETURNS uuid
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
  SELECT encode(
    set_bit(set_bit(set_bit(set_bit(set_bit(set_bit(
      overlay(uuid_send(random_bits) PLACING substring(int8send(floor(extract(epoch FROM at) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
      55, 0), 54, 1), 53, 1), 52, 1), -- version 7 in the high nibble of byte 6
      71, 1), 70, 0),                 -- variant 10 in the high bits of byte 8
    'hex')::uuid
$f$;
CREATE FUNCTION parley_uuid_v7() RETURNS uuid
  LANGUAGE sql VOLATILE PARALLEL SAFE AS $f$ SELECT parley_uuid_v7(clock_timestamp(), gen_random_uuid()) $f$;
ALTER TABLE parley_inbound ALTER COLUMN id SET DEFAULT parley_uuid_v7();
ALTER TABLE parley_outbox ALTER COLUMN id SET DEFAULT parley_uuid_v7();
`,
  },
];
