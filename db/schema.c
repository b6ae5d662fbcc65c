/*
 * schema.c - the database schema as a list of migrations.
 *
 * Migration N takes a database at user_version N-1 to N. A released
 * migration is never edited: a change to the schema is a new migration at
 * the end, so that every older database upgrades in place. (Until the first
 * release, migration 1 is the baseline and may still change.)
 */
#include "db/schema.h"

#include <stddef.h>

static const char *const migrations[] = {
    /* 1: baseline */
    "CREATE TABLE lists ("
    "  id INTEGER PRIMARY KEY,"
    "  address TEXT NOT NULL," /* as created: name@domain */
    "  local TEXT NOT NULL,"   /* lower-cased local part */
    "  domain TEXT NOT NULL,"  /* lower-cased domain */
    "  created INTEGER NOT NULL,"
    "  post_count INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (local, domain)"
    ");"
    /* A counter bumped by every change to lists, so that fanmaild sees a
     * list created by the CLI without reading the lists table on every
     * RCPT (db/lists.c: db_spool_lists_changed). */
    "CREATE TABLE list_gen (id INTEGER PRIMARY KEY CHECK (id = 1), gen INTEGER NOT NULL);"
    "INSERT INTO list_gen VALUES (1, 0);"
    "CREATE TRIGGER lists_gen_ins AFTER INSERT ON lists"
    "  BEGIN UPDATE list_gen SET gen = gen + 1; END;"
    "CREATE TRIGGER lists_gen_del AFTER DELETE ON lists"
    "  BEGIN UPDATE list_gen SET gen = gen + 1; END;"
    "CREATE TRIGGER lists_gen_upd AFTER UPDATE OF local, domain ON lists"
    "  BEGIN UPDATE list_gen SET gen = gen + 1; END;"
    "CREATE TABLE list_settings ("
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (list_id, key)"
    ") WITHOUT ROWID;"
    /* The CHECKs below use OR, not IN (...): SQLite 3.40 builds an
     * ephemeral table for a constant IN list on every row written, which
     * cost a third of a 1,000,000-member import. */
    "CREATE TABLE members ("
    "  id INTEGER PRIMARY KEY,"
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL,"  /* as given */
    "  addr_key TEXT NOT NULL," /* normalized lookup key */
    "  domain TEXT NOT NULL,"   /* lower-cased domain */
    "  name TEXT,"              /* display name, if given */
    "  status TEXT NOT NULL DEFAULT 'enabled'"
    "    CHECK (status = 'enabled' OR status = 'disabled' OR status = 'unconfirmed'),"
    "  delivery TEXT NOT NULL DEFAULT 'regular'"
    "    CHECK (delivery = 'regular' OR delivery = 'digest' OR delivery = 'nomail'),"
    "  self_copy INTEGER NOT NULL DEFAULT 0,"
    "  bounce_score REAL NOT NULL DEFAULT 0,"
    "  last_bounce INTEGER,"
    "  last_bounce_reason TEXT,"
    "  disabled_reason TEXT,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  UNIQUE (list_id, addr_key)"
    ");"
    /* Fan-out and per-domain walks: enabled members of a list by domain.
     * The columns after domain make it covering for the engine's
     * INSERT ... SELECT fan-out (db/queue.c), which then reads this index
     * alone, in order, instead of one table row per member: 3x faster at a
     * million members. */
    "CREATE INDEX members_by_status_domain ON members"
    "  (list_id, status, domain, delivery, self_copy, addr_key, address);"
    /* Members per list and status, kept by triggers so that `list show`
     * of a 1,000,000-member list need not count rows. */
    "CREATE TABLE member_counts ("
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  status TEXT NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (list_id, status)"
    ") WITHOUT ROWID;"
    "CREATE TRIGGER members_count_insert AFTER INSERT ON members BEGIN"
    "  INSERT INTO member_counts (list_id, status, n) VALUES (NEW.list_id, NEW.status, 1)"
    "    ON CONFLICT (list_id, status) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER members_count_delete AFTER DELETE ON members BEGIN"
    "  UPDATE member_counts SET n = n - 1 WHERE list_id = OLD.list_id AND status = OLD.status;"
    " END;"
    "CREATE TRIGGER members_count_update AFTER UPDATE OF list_id, status ON members"
    "  WHEN OLD.list_id IS NOT NEW.list_id OR OLD.status IS NOT NEW.status BEGIN"
    "  UPDATE member_counts SET n = n - 1 WHERE list_id = OLD.list_id AND status = OLD.status;"
    "  INSERT INTO member_counts (list_id, status, n) VALUES (NEW.list_id, NEW.status, 1)"
    "    ON CONFLICT (list_id, status) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TABLE roles ("
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  role TEXT NOT NULL CHECK (role IN ('owner', 'moderator')),"
    "  address TEXT NOT NULL,"
    "  addr_key TEXT NOT NULL,"
    "  PRIMARY KEY (list_id, role, addr_key)"
    ") WITHOUT ROWID;"
    /* The inbound spool: what smtp_in committed before its 250. */
    "CREATE TABLE spool ("
    "  id INTEGER PRIMARY KEY,"
    "  qid TEXT NOT NULL UNIQUE,"
    "  received INTEGER NOT NULL,"
    "  client TEXT NOT NULL," /* addr[ip]:port of the client */
    "  helo TEXT NOT NULL,"
    "  mail_from TEXT NOT NULL," /* '' for the null sender */
    "  size INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'done', 'failed')),"
    "  outcome TEXT," /* what the engine did with it */
    "  processed INTEGER,"
    "  message BLOB NOT NULL"
    ");"
    "CREATE INDEX spool_new ON spool (id) WHERE state = 'new';"
    "CREATE TABLE spool_rcpt ("
    "  spool_id INTEGER NOT NULL REFERENCES spool(id) ON DELETE CASCADE,"
    "  rcpt TEXT NOT NULL,"
    "  list_id INTEGER REFERENCES lists(id) ON DELETE SET NULL,"
    "  role TEXT NOT NULL CHECK (role IN ('post', 'request', 'owner', 'bounces', 'join',"
    "    'leave', 'subscribe', 'unsubscribe', 'confirm'))," /* see db/spool.h */
    "  extension TEXT"                                      /* after the '+': VERP or token */
    ");"
    "CREATE INDEX spool_rcpt_by_spool ON spool_rcpt (spool_id);"
    /* The outbound queue: one message, one row per recipient. */
    "CREATE TABLE out_msg ("
    "  id INTEGER PRIMARY KEY,"
    "  qid TEXT NOT NULL UNIQUE,"
    "  list_id INTEGER REFERENCES lists(id) ON DELETE SET NULL,"
    "  spool_id INTEGER REFERENCES spool(id) ON DELETE SET NULL,"
    "  kind TEXT NOT NULL DEFAULT 'post'," /* post, notice, dsn, probe, digest */
    "  env_from TEXT NOT NULL,"            /* '' for the null sender */
    "  verp INTEGER NOT NULL DEFAULT 0,"
    "  held INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  body BLOB NOT NULL"
    ");"
    "CREATE TABLE deliveries ("
    "  id INTEGER PRIMARY KEY,"
    "  msg_id INTEGER NOT NULL REFERENCES out_msg(id) ON DELETE CASCADE,"
    "  rcpt TEXT NOT NULL,"
    "  domain TEXT NOT NULL,"
    "  member_id INTEGER,"
    "  state TEXT NOT NULL DEFAULT 'queued'"
    "    CHECK (state IN ('queued', 'deferred', 'sent', 'failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt INTEGER NOT NULL DEFAULT 0,"
    "  last_reply TEXT,"
    "  updated INTEGER"
    ");"
    /* The scheduler's walk: due rows of one domain in (next_attempt, id)
     * order, and the listing of domains with due rows; covering, so neither
     * touches the table. */
    "CREATE INDEX deliveries_due ON deliveries (domain, next_attempt, id)"
    "  WHERE state IN ('queued', 'deferred');"
    /* A message's rows (queue show, ON DELETE CASCADE). Not keyed by
     * state, so that recording a result does not touch it: every extra
     * index entry a result moves costs about as much as the update. */
    "CREATE INDEX deliveries_by_msg ON deliveries (msg_id);"
    /* Moderation holds. */
    "CREATE TABLE holds ("
    "  id INTEGER PRIMARY KEY,"
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  spool_id INTEGER REFERENCES spool(id) ON DELETE SET NULL,"
    "  token TEXT NOT NULL UNIQUE,"
    "  sender TEXT NOT NULL,"
    "  subject TEXT,"
    "  reason TEXT NOT NULL,"
    "  env_from TEXT NOT NULL DEFAULT ''," /* the post's envelope sender */
    "  message_id TEXT,"                   /* the post's Message-ID */
    "  created INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'held'"
    "    CHECK (state IN ('held', 'approved', 'rejected', 'discarded', 'expired')),"
    "  decided INTEGER," /* when it left 'held' */
    "  decided_by TEXT"  /* who: an address, 'cli', or 'expiry' */
    ");"
    "CREATE INDEX holds_by_list ON holds (list_id, state);"
    /* The expiry walk: posts still held, by deadline. */
    "CREATE INDEX holds_due ON holds (expires) WHERE state = 'held';"
    /* Confirmation tokens for subscribe and unsubscribe. */
    "CREATE TABLE tokens ("
    "  token TEXT PRIMARY KEY,"
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  action TEXT NOT NULL," /* subscribe, unsubscribe */
    "  address TEXT NOT NULL,"
    "  addr_key TEXT NOT NULL,"
    "  name TEXT,"
    "  created INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX tokens_by_addr ON tokens (list_id, addr_key, action);"
    /* Bounces seen, per member and per domain. */
    "CREATE TABLE bounce_events ("
    "  id INTEGER PRIMARY KEY,"
    "  list_id INTEGER REFERENCES lists(id) ON DELETE CASCADE,"
    "  member_id INTEGER REFERENCES members(id) ON DELETE SET NULL,"
    "  address TEXT NOT NULL,"
    "  domain TEXT NOT NULL,"
    "  time INTEGER NOT NULL,"
    "  class TEXT NOT NULL," /* hard, soft, policy, complaint */
    "  status TEXT,"         /* x.y.z */
    "  reason TEXT,"
    "  spool_id INTEGER,"
    "  scored REAL NOT NULL DEFAULT 0" /* what it added to the member's score */
    ");"
    "CREATE INDEX bounce_events_by_member ON bounce_events (member_id, time);"
    "CREATE INDEX bounce_events_by_list ON bounce_events (list_id, class, time);"
    /* Members disabled for bounces: since when, and the probe sent. */
    "CREATE TABLE bounce_disabled ("
    "  member_id INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,"
    "  since INTEGER NOT NULL,"
    "  probe_sent INTEGER,"
    "  probe_qid TEXT"
    ");"
    /* Archive of every post that went out. */
    "CREATE TABLE archive ("
    "  id INTEGER PRIMARY KEY,"
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  message_id TEXT,"
    "  date INTEGER NOT NULL,"
    "  sender TEXT NOT NULL,"
    "  subject TEXT,"
    "  raw BLOB NOT NULL"
    ");"
    "CREATE INDEX archive_by_list ON archive (list_id, date);"
    /* The last DMARC policy seen per From domain ('' for no record), so
     * that a post approved later, perhaps by the CLI, is treated alike. */
    "CREATE TABLE dmarc_cache ("
    "  domain TEXT PRIMARY KEY,"
    "  policy TEXT NOT NULL,"
    "  expires INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    /* Rate limits for automatic replies (confirmations, RFC 3834). */
    "CREATE TABLE reply_log ("
    "  addr_key TEXT NOT NULL,"
    "  list_id INTEGER,"
    "  kind TEXT NOT NULL,"
    "  time INTEGER NOT NULL"
    ");"
    "CREATE INDEX reply_log_by_addr ON reply_log (addr_key, kind, time);"
    "CREATE INDEX reply_log_by_list ON reply_log (list_id, kind, time);"
    /* The event log: what happened to lists and members, for admins. */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  time INTEGER NOT NULL,"
    "  list_id INTEGER,"
    "  kind TEXT NOT NULL,"
    "  detail TEXT NOT NULL"
    ");"
    "CREATE INDEX events_by_list ON events (list_id, time);",
    /* 2: retention (db/retention.h): processed spool entries by time, and
     * the rows that refer to a spool entry, which deleting one must find
     * (ON DELETE SET NULL) without reading the whole queue. */
    "CREATE INDEX spool_done ON spool (processed) WHERE state = 'done';"
    "CREATE INDEX out_msg_by_spool ON out_msg (spool_id);"
    "CREATE INDEX holds_by_spool ON holds (spool_id);",
    /* 3: a spool entry's message in a table of its own, written once: the
     * engine marks every entry done, and SQLite rewrites a whole row (its
     * 4 KB or more of message, in overflow pages) when one column of it
     * changes size. */
    "CREATE TABLE spool_body ("
    "  id INTEGER PRIMARY KEY REFERENCES spool(id) ON DELETE CASCADE,"
    "  message BLOB NOT NULL"
    ");"
    "INSERT INTO spool_body (id, message) SELECT id, message FROM spool;"
    "ALTER TABLE spool DROP COLUMN message;",
    /* 4: server secrets, made once here and never printed: "report" keys
     * the signatures on VERP addresses and on the report tag of list mail
     * (lists/verp.h), so that forged bounces and ARF reports are told
     * apart. randomblob() draws on SQLite's CSPRNG, seeded from the OS. */
    "CREATE TABLE secrets ("
    "  name TEXT PRIMARY KEY,"
    "  value BLOB NOT NULL CHECK (length(value) >= 32)"
    ");"
    "INSERT INTO secrets (name, value) VALUES ('report', randomblob(32));",
    /* 5: digests are not sent yet, and the fan-out skips members set to
     * them: `member set delivery=digest` was taken, and such members got
     * no mail at all. They get every post again, as they did before they
     * chose digests; the setting is refused until digests exist. */
    "UPDATE members SET delivery = 'regular' WHERE delivery = 'digest';",
    /* 6: one-click unsubscribe (RFC 8058) and personalized delivery. The
     * key of one-click tokens has versions ("oneclick.N", the highest in
     * use for new links, older ones still honoured until dropped:
     * `fanmail secret rotate`), each with the time it was made. An
     * outbound message marked personal is sent one copy per recipient,
     * each with its own List-Unsubscribe header lines and footer
     * variables (server/deliver_personal.c). */
    "ALTER TABLE secrets ADD COLUMN created INTEGER NOT NULL DEFAULT 0;"
    "INSERT INTO secrets (name, value, created) VALUES"
    "  ('oneclick.1', randomblob(32), CAST(strftime('%s', 'now') AS INTEGER));"
    "ALTER TABLE out_msg ADD COLUMN personal INTEGER NOT NULL DEFAULT 0;",
    /* 7: DKIM keys per signing domain (db/dkim.h, `fanmail dkim`). The
     * private key (PKCS#8 PEM) is never printed; the public key is kept
     * as the p= value of the DNS record. At most one key per domain and
     * algorithm signs ('active'); 'published' keys are in DNS but do not
     * sign (a new key before rotation, the old one after, for mail in
     * flight); 'retired' keys may leave DNS. */
    "CREATE TABLE dkim_keys ("
    "  id INTEGER PRIMARY KEY,"
    "  domain TEXT NOT NULL CHECK (domain = lower(domain)),"
    "  selector TEXT NOT NULL,"
    "  algorithm TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),"
    "  bits INTEGER NOT NULL,"
    "  private_key BLOB NOT NULL,"
    "  public_key TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('active', 'published', 'retired')),"
    "  created INTEGER NOT NULL,"
    "  activated INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (domain, selector)"
    ");"
    "CREATE UNIQUE INDEX dkim_one_active ON dkim_keys (domain, algorithm)"
    "  WHERE state = 'active';",
    /* 8: digests (db/digest.h). members.delivery takes 'digest' (MIME,
     * RFC 2046) and 'digest-text' (RFC 1153). SQLite cannot alter a
     * CHECK, so members is rebuilt: same columns, ids, index and triggers
     * as migration 1. foreign_keys is on (it cannot change inside the
     * migration's transaction), so dropping the old table would run its
     * ON DELETE actions: the rows that refer to members (bounce_disabled,
     * bounce_events.member_id) are kept aside and put back. member_counts
     * stays as it is: the copy is made before the triggers exist, and a
     * DROP fires none. */
    "CREATE TEMP TABLE m8_disabled AS SELECT * FROM bounce_disabled;"
    "CREATE TEMP TABLE m8_events AS SELECT id, member_id FROM bounce_events"
    "  WHERE member_id IS NOT NULL;"
    "CREATE TABLE members_new ("
    "  id INTEGER PRIMARY KEY,"
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL,"
    "  addr_key TEXT NOT NULL,"
    "  domain TEXT NOT NULL,"
    "  name TEXT,"
    "  status TEXT NOT NULL DEFAULT 'enabled'"
    "    CHECK (status = 'enabled' OR status = 'disabled' OR status = 'unconfirmed'),"
    "  delivery TEXT NOT NULL DEFAULT 'regular'"
    "    CHECK (delivery = 'regular' OR delivery = 'digest' OR delivery = 'digest-text'"
    "      OR delivery = 'nomail'),"
    "  self_copy INTEGER NOT NULL DEFAULT 0,"
    "  bounce_score REAL NOT NULL DEFAULT 0,"
    "  last_bounce INTEGER,"
    "  last_bounce_reason TEXT,"
    "  disabled_reason TEXT,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  UNIQUE (list_id, addr_key)"
    ");"
    "INSERT INTO members_new (id, list_id, address, addr_key, domain, name, status, delivery,"
    "  self_copy, bounce_score, last_bounce, last_bounce_reason, disabled_reason, created,"
    "  updated)"
    "  SELECT id, list_id, address, addr_key, domain, name, status, delivery, self_copy,"
    "  bounce_score, last_bounce, last_bounce_reason, disabled_reason, created, updated"
    "  FROM members ORDER BY id;"
    "DROP TABLE members;"
    "ALTER TABLE members_new RENAME TO members;"
    "INSERT INTO bounce_disabled SELECT * FROM m8_disabled;"
    "UPDATE bounce_events SET member_id ="
    "  (SELECT member_id FROM m8_events e WHERE e.id = bounce_events.id)"
    "  WHERE id IN (SELECT id FROM m8_events);"
    "DROP TABLE m8_disabled;"
    "DROP TABLE m8_events;"
    "CREATE INDEX members_by_status_domain ON members"
    "  (list_id, status, domain, delivery, self_copy, addr_key, address);"
    "CREATE TRIGGER members_count_insert AFTER INSERT ON members BEGIN"
    "  INSERT INTO member_counts (list_id, status, n) VALUES (NEW.list_id, NEW.status, 1)"
    "    ON CONFLICT (list_id, status) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER members_count_delete AFTER DELETE ON members BEGIN"
    "  UPDATE member_counts SET n = n - 1 WHERE list_id = OLD.list_id AND status = OLD.status;"
    " END;"
    "CREATE TRIGGER members_count_update AFTER UPDATE OF list_id, status ON members"
    "  WHEN OLD.list_id IS NOT NEW.list_id OR OLD.status IS NOT NEW.status BEGIN"
    "  UPDATE member_counts SET n = n - 1 WHERE list_id = OLD.list_id AND status = OLD.status;"
    "  INSERT INTO member_counts (list_id, status, n) VALUES (NEW.list_id, NEW.status, 1)"
    "    ON CONFLICT (list_id, status) DO UPDATE SET n = n + 1;"
    " END;"
    /* Each post that went out, as it went out (the rewritten post, as
     * archived), until an issue takes it: issue_id NULL means pending.
     * Assigning posts and queueing their issue is one transaction
     * (lists/digest_send.c), so a post is in exactly one issue. */
    "CREATE TABLE digest_issues ("
    "  id INTEGER PRIMARY KEY,"
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  volume INTEGER NOT NULL,"
    "  number INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  sent INTEGER NOT NULL,"
    "  posts INTEGER NOT NULL DEFAULT 0,"
    "  qid_mime TEXT,"
    "  qid_text TEXT,"
    "  UNIQUE (list_id, volume, number)"
    ");"
    "CREATE TABLE digest_posts ("
    "  id INTEGER PRIMARY KEY,"
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  issue_id INTEGER REFERENCES digest_issues(id) ON DELETE CASCADE,"
    "  added INTEGER NOT NULL,"
    "  sender TEXT NOT NULL,"
    "  subject TEXT,"
    "  size INTEGER NOT NULL,"
    "  body BLOB NOT NULL"
    ");"
    "CREATE INDEX digest_posts_pending ON digest_posts (list_id, id) WHERE issue_id IS NULL;"
    "CREATE INDEX digest_posts_by_issue ON digest_posts (issue_id);"
    /* The last issue per list: its volume and number, and when it went
     * out (the digest_interval counts from there). */
    "CREATE TABLE digest_counters ("
    "  list_id INTEGER PRIMARY KEY REFERENCES lists(id) ON DELETE CASCADE,"
    "  volume INTEGER NOT NULL,"
    "  issue INTEGER NOT NULL,"
    "  last_sent INTEGER NOT NULL"
    ");",
};

int
schema_latest(void)
{
	return (int)(sizeof(migrations) / sizeof(migrations[0]));
}

const char *
schema_migration(int version)
{
	if (version < 1 || version > schema_latest())
		return NULL;
	return migrations[version - 1];
}
