/*
 * digest.c - the SQL of digests (see digest.h).
 */
#include "db/digest.h"
#include "db/db_internal.h"

#include <stdio.h>
#include <string.h>

int
db_digest_add(struct db *db, int64_t list_id, int64_t added, const char *sender,
              const char *subject, const void *body, size_t len)
{
	static const char sql[] = "INSERT INTO digest_posts (list_id, added, sender, subject, size,"
	                          " body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
	sqlite3_stmt *st = db_stmt(db, sql);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_int64(st, 2, added);
	sqlite3_bind_text(st, 3, sender ? sender : "", -1, SQLITE_STATIC);
	db_bind_text(st, 4, subject);
	sqlite3_bind_int64(st, 5, (int64_t)len);
	sqlite3_bind_blob(st, 6, body, (int)len, SQLITE_STATIC);
	return db_step_done(db, st, "keep a post for the digest");
}

int
db_digest_pending(struct db *db, int64_t list_id, int with_body, int64_t limit,
                  void (*cb)(void *arg, const struct db_digest_post *p), void *arg)
{
	static const char sql[] = "SELECT id, added, sender, subject, size, body FROM digest_posts"
	                          " WHERE list_id = ?1 AND issue_id IS NULL ORDER BY id LIMIT ?2";
	static const char sql_nobody[] =
	    "SELECT id, added, sender, subject, size, NULL FROM digest_posts"
	    " WHERE list_id = ?1 AND issue_id IS NULL ORDER BY id LIMIT ?2";
	sqlite3_stmt *st = db_stmt(db, with_body ? sql : sql_nobody);
	struct db_digest_post p;
	int n = 0, rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		p.id = sqlite3_column_int64(st, 0);
		p.added = sqlite3_column_int64(st, 1);
		p.sender = (const char *)sqlite3_column_text(st, 2);
		p.subject = (const char *)sqlite3_column_text(st, 3);
		p.size = sqlite3_column_int64(st, 4);
		p.body = with_body ? sqlite3_column_blob(st, 5) : NULL;
		cb(arg, &p);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "read pending digest posts");
	db_ok(db);
	return n;
}

static const char stats_cols[] =
    "SELECT p.list_id, COUNT(*), TOTAL(p.size), MIN(p.added),"
    " IFNULL(c.last_sent, 0), IFNULL(c.volume, 0), IFNULL(c.issue, 0)"
    " FROM digest_posts p LEFT JOIN digest_counters c ON c.list_id = p.list_id";

static void
read_stats(sqlite3_stmt *st, struct db_digest_stats *s)
{
	s->list_id = sqlite3_column_int64(st, 0);
	s->posts = sqlite3_column_int64(st, 1);
	s->size = (int64_t)sqlite3_column_double(st, 2);
	s->oldest = sqlite3_column_int64(st, 3);
	s->last_sent = sqlite3_column_int64(st, 4);
	s->volume = sqlite3_column_int(st, 5);
	s->issue = sqlite3_column_int(st, 6);
}

int
db_digest_stats(struct db *db, int64_t list_id, struct db_digest_stats *s)
{
	static char sql[sizeof(stats_cols) + 64];
	static const char csql[] = "SELECT last_sent, volume, issue FROM digest_counters"
	                           " WHERE list_id = ?1";
	sqlite3_stmt *st;
	int rc;

	memset(s, 0, sizeof(*s));
	s->list_id = list_id;
	if (sql[0] == '\0')
		snprintf(sql, sizeof(sql), "%s WHERE p.list_id = ?1 AND p.issue_id IS NULL",
		         stats_cols);
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_int64(st, 1) > 0)
		read_stats(st, s);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "count pending digest posts");
	if (s->posts > 0) {
		db_ok(db);
		return 0;
	}
	if ((st = db_stmt(db, csql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->last_sent = sqlite3_column_int64(st, 0);
		s->volume = sqlite3_column_int(st, 1);
		s->issue = sqlite3_column_int(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, "read digest counters");
	db_ok(db);
	return 0;
}

int
db_digest_lists_pending(struct db *db, int (*cb)(void *arg, const struct db_digest_stats *s),
                        void *arg)
{
	static char sql[sizeof(stats_cols) + 64];
	struct db_digest_stats s;
	sqlite3_stmt *st;
	int rc;

	if (sql[0] == '\0')
		snprintf(sql, sizeof(sql), "%s WHERE p.issue_id IS NULL GROUP BY p.list_id",
		         stats_cols);
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_stats(st, &s);
		if (cb(arg, &s) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "lists with pending digest posts");
	db_ok(db);
	return 0;
}

int
db_digest_issue_new(struct db *db, int64_t list_id, int volume, int64_t now, int *number,
                    int64_t *issue_id)
{
	/* Number 1 in a volume the list has not used last, else one more. */
	static const char sql_counter[] =
	    "INSERT INTO digest_counters (list_id, volume, issue, last_sent) VALUES (?1, ?2, 1, ?3)"
	    " ON CONFLICT (list_id) DO UPDATE SET issue = CASE WHEN volume = ?2 THEN issue + 1"
	    " ELSE 1 END, volume = ?2, last_sent = ?3 RETURNING issue";
	static const char sql_issue[] =
	    "INSERT INTO digest_issues (list_id, volume, number, created, sent)"
	    " VALUES (?1, ?2, ?3, ?4, ?4)";
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql_counter)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_int(st, 2, volume);
	sqlite3_bind_int64(st, 3, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*number = sqlite3_column_int(st, 0);
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "number the digest issue");
	if ((st = db_stmt(db, sql_issue)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_int(st, 2, volume);
	sqlite3_bind_int(st, 3, *number);
	sqlite3_bind_int64(st, 4, now);
	if (db_step_done(db, st, "make the digest issue") < 0)
		return -1;
	*issue_id = sqlite3_last_insert_rowid(db->sql);
	return 0;
}

int
db_digest_assign(struct db *db, int64_t list_id, int64_t issue_id, int64_t last_id, int64_t *n)
{
	static const char sql[] = "UPDATE digest_posts SET issue_id = ?2"
	                          " WHERE list_id = ?1 AND issue_id IS NULL AND id <= ?3";
	sqlite3_stmt *st = db_stmt(db, sql);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_int64(st, 2, issue_id);
	sqlite3_bind_int64(st, 3, last_id);
	if (db_step_done(db, st, "assign posts to the digest issue") < 0)
		return -1;
	*n = sqlite3_changes(db->sql);
	return 0;
}

int
db_digest_issue_done(struct db *db, int64_t issue_id, int64_t posts, const char *qid_mime,
                     const char *qid_text)
{
	static const char sql[] =
	    "UPDATE digest_issues SET posts = ?2, qid_mime = ?3, qid_text = ?4"
	    " WHERE id = ?1";
	sqlite3_stmt *st = db_stmt(db, sql);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, issue_id);
	sqlite3_bind_int64(st, 2, posts);
	db_bind_text(st, 3, qid_mime && *qid_mime ? qid_mime : NULL);
	db_bind_text(st, 4, qid_text && *qid_text ? qid_text : NULL);
	return db_step_done(db, st, "record the digest issue");
}

int
db_digest_drop(struct db *db, int64_t list_id, int64_t last_id, int64_t *n)
{
	static const char sql[] = "DELETE FROM digest_posts"
	                          " WHERE list_id = ?1 AND issue_id IS NULL AND id <= ?2";
	sqlite3_stmt *st = db_stmt(db, sql);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_int64(st, 2, last_id);
	if (db_step_done(db, st, "drop pending digest posts") < 0)
		return -1;
	*n = sqlite3_changes(db->sql);
	return 0;
}

/* The members a digest of one mode goes to. */
#define DIGEST_RCPTS " FROM members WHERE list_id = ?2 AND status = 'enabled' AND delivery = ?3"

int
db_digest_has_members(struct db *db, int64_t list_id, const char *mode)
{
	static const char sql[] = "SELECT EXISTS (SELECT 1" DIGEST_RCPTS ")";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc, any = 0;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 2, list_id);
	sqlite3_bind_text(st, 3, mode, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		any = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "look for digest members");
	db_ok(db);
	return any;
}

int
db_digest_queue(struct db *db, const struct db_digest_msg *d, char qid[DB_QID_LEN], int64_t *nrcpt)
{
	static const char sql[] = "INSERT INTO deliveries (msg_id, rcpt, domain, member_id)"
	                          " SELECT ?1, address, domain, id" DIGEST_RCPTS;
	struct outq_msg m = {
	    .list_id = d->list_id,
	    .kind = "digest",
	    .env_from = d->env_from,
	    .verp = d->verp,
	    .personal = d->personal,
	    .body = d->body,
	    .len = d->len,
	    .lifetime = d->lifetime,
	};
	int64_t id = 0;
	sqlite3_stmt *st;
	int any;

	qid[0] = '\0';
	*nrcpt = 0;
	if ((any = db_digest_has_members(db, d->list_id, d->mode)) <= 0)
		return any;
	if (db_outq_add(db, &m, NULL, 0, qid, &id) < 0)
		return -1;
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, d->list_id);
	sqlite3_bind_text(st, 3, d->mode, -1, SQLITE_STATIC);
	if (db_step_done(db, st, "queue digest recipients") < 0)
		return -1;
	*nrcpt = sqlite3_changes(db->sql);
	return 0;
}

#undef DIGEST_RCPTS

int
db_digest_issues(struct db *db, int64_t list_id, int64_t limit,
                 void (*cb)(void *arg, const struct db_digest_issue *i), void *arg)
{
	static const char sql[] =
	    "SELECT id, volume, number, created, sent, posts, IFNULL(qid_mime, ''),"
	    " IFNULL(qid_text, '') FROM digest_issues WHERE list_id = ?1 ORDER BY id DESC LIMIT ?2";
	sqlite3_stmt *st = db_stmt(db, sql);
	struct db_digest_issue i;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		i.id = sqlite3_column_int64(st, 0);
		i.volume = sqlite3_column_int(st, 1);
		i.number = sqlite3_column_int(st, 2);
		i.created = sqlite3_column_int64(st, 3);
		i.sent = sqlite3_column_int64(st, 4);
		i.posts = sqlite3_column_int64(st, 5);
		i.qid_mime = (const char *)sqlite3_column_text(st, 6);
		i.qid_text = (const char *)sqlite3_column_text(st, 7);
		cb(arg, &i);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "list digest issues");
	db_ok(db);
	return 0;
}

int
db_purge_digest_posts(struct db *db, int64_t before, int limit)
{
	static const char sql[] =
	    "DELETE FROM digest_posts WHERE id IN (SELECT p.id FROM digest_issues i"
	    " JOIN digest_posts p ON p.issue_id = i.id WHERE i.sent < ?1 ORDER BY p.id LIMIT ?2)";

	return db_delete_before(db, sql, before, limit, "purging digest posts");
}

int
db_purge_digest_issues(struct db *db, int64_t before, int limit)
{
	static const char sql[] =
	    "DELETE FROM digest_issues WHERE id IN (SELECT i.id FROM digest_issues i"
	    " WHERE i.sent < ?1 AND NOT EXISTS (SELECT 1 FROM digest_posts p"
	    " WHERE p.issue_id = i.id) ORDER BY i.id LIMIT ?2)";

	return db_delete_before(db, sql, before, limit, "purging digest issues");
}
