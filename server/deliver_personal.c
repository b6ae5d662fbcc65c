/*
 * deliver_personal.c - the copies of a personal message (list setting
 * personalize; see lists/personal.h), rendered at send time from the one
 * cached body: per member, the List-Unsubscribe lines with their one-click
 * token go on top and the footer markers get their address and URL. Then,
 * per copy, the downgrade a server without SMTPUTF8 or 8BITMIME needs
 * (mail/downgrade.h), then the DKIM signature of the copy (when its
 * domain has keys: on a signing thread, never on the loop), then the
 * DATA form.
 *
 * The one-click keys are loaded at the start and again at each queue scan
 * by the reader thread (a rotated key shows up there), under their own
 * mutex: the loop (network copies) and the writer (copies into our own
 * spool, DSNs) read them.
 */
#include "server/deliver_internal.h"

#include "conf/conf.h"
#include "lists/oneclick.h"
#include "lists/personal.h"
#include "lists/post.h"
#include "mail/downgrade.h"
#include "server/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
personal_init(struct deliver *dl)
{
	pthread_mutex_init(&dl->okeys_mu, NULL);
	conf_http_base_url(dl->conf, dl->http_base, sizeof(dl->http_base));
}

int
personal_keys_reload(struct deliver *dl, struct db *db)
{
	struct oneclick_keys k;

	if (oneclick_keys_load(db, &k) < 0)
		return -1;
	pthread_mutex_lock(&dl->okeys_mu);
	if (dl->okeys.n == 0 || dl->okeys.key[0].version != k.key[0].version ||
	    dl->okeys.n != k.n) {
		if (dl->okeys.n > 0)
			log_info("delivery: one-click key version %d now signs", k.key[0].version);
		dl->okeys = k;
	}
	pthread_mutex_unlock(&dl->okeys_mu);
	return 0;
}

char *
personal_copy(struct deliver *dl, int64_t list_id, const char *env_from, const char *raw,
              size_t len, const char *rcpt, size_t *outlen)
{
	char local[128], key[POST_ADDR_MAX], token[ONECLICK_TOKEN_MAX], url[2048],
	    mailto[PERSONAL_MAILTO_MAX + 16];
	const char *domain = strrchr(env_from, '@'), *dash;
	char *head, *copy;
	size_t hlen;
	int tok = -1;

	/* The list is in the envelope sender, LIST-bounces@DOMAIN. */
	dash = domain ? strstr(env_from, "-bounces@") : NULL;
	if (dash == NULL || (size_t)(dash - env_from) >= sizeof(local))
		return personal_fill(raw, len, "", 0, rcpt, "", outlen);
	snprintf(local, sizeof(local), "%.*s", (int)(dash - env_from), env_from);
	domain++;
	if (post_addr_key(rcpt, key, sizeof(key)) == 0) {
		pthread_mutex_lock(&dl->okeys_mu);
		tok = oneclick_token(&dl->okeys, list_id, key, token, sizeof(token));
		pthread_mutex_unlock(&dl->okeys_mu);
	}
	if (tok < 0) {
		/* No key or an address too long for a token: the plain
		 * leave address still works (with confirmation). */
		head = personal_headers(local, domain, "", NULL, url, sizeof(url), &hlen);
		snprintf(mailto, sizeof(mailto), "mailto:%s-leave@%s", local, domain);
	} else {
		if (dl->http_base[0] == '\0' &&
		    __atomic_exchange_n(&dl->nobase_warned, 1, __ATOMIC_RELAXED) == 0)
			log_warnx("delivery: a personalized list, but no HTTP base URL "
			          "(http_listen, http_base_url): copies carry only the "
			          "mailto: form of List-Unsubscribe, no one-click URL");
		head =
		    personal_headers(local, domain, dl->http_base, token, url, sizeof(url), &hlen);
		if ((size_t)snprintf(mailto, sizeof(mailto), "mailto:%s-leave+%s@%s", local, token,
		                     domain) > PERSONAL_MAILTO_MAX + 7)
			snprintf(mailto, sizeof(mailto), "mailto:%s-leave@%s", local, domain);
	}
	if (head == NULL)
		return NULL;
	copy = personal_fill(raw, len, head, hlen, rcpt, url[0] ? url : mailto, outlen);
	free(head);
	return copy;
}

/* The body hash of copy (in downgrade form f) when every copy's body is
 * the same: computed by the first copy, reused by the others. NULL when
 * each copy needs its own (footer markers) or out of memory. */
static const char *
shared_bh(struct qmsg *m, int f, const char *copy, size_t clen, char bh[DKIM_BH_SIZE])
{
	if (!m->pbh_same)
		return NULL;
	pthread_mutex_lock(&m->pbh_mu);
	if (m->pbh[f][0] == '\0' && dk_body_hash(copy, clen, m->pbh[f]) < 0)
		m->pbh[f][0] = '\0';
	memcpy(bh, m->pbh[f], DKIM_BH_SIZE);
	pthread_mutex_unlock(&m->pbh_mu);
	return bh[0] ? bh : NULL;
}

void
personal_choose_body(struct batch *b, int ext, struct dkim_signer *s)
{
	char bh[DKIM_BH_SIZE];
	size_t size;
	struct qmsg *m = b->m;
	struct smtp_txn *t = &b->txn;
	char *copy, *d = NULL, why[160];
	size_t clen, dlen;
	int need, f = 0;

	free(b->pbody);
	b->pbody = NULL;
	t->refuse_code = 0;
	if ((copy = personal_copy(b->d->dl, m->list_id, m->env_from, m->body, m->blen,
	                          b->rows[0].rcpt, &clen)) == NULL)
		goto oom;
	/* What this copy holds (a member's UTF-8 address in the footer may
	 * make it 8-bit), and what the server can take (as choose_body()). */
	need = downgrade_scan(copy, clen);
	if ((need & DOWNGRADE_HEADERS) && !(ext & SMTP_EXT_SMTPUTF8))
		f |= DOWNGRADE_HEADERS;
	if ((need & DOWNGRADE_BODY) && !(ext & SMTP_EXT_8BITMIME))
		f |= DOWNGRADE_BODY | (ext & SMTP_EXT_SMTPUTF8 ? 0 : DOWNGRADE_HEADERS);
	t->smtputf8 = (need & DOWNGRADE_HEADERS) && !(f & DOWNGRADE_HEADERS);
	t->body_8bit = (ext & SMTP_EXT_8BITMIME) && (need & ~f) != 0;
	if (f != 0) {
		if (downgrade_message(copy, clen, f, &d, &dlen, why, sizeof(why)) < 0) {
			free(copy);
			if ((f & DOWNGRADE_HEADERS) && strcmp(why, "out of memory") != 0) {
				t->refuse_code = 553;
				snprintf(t->refuse, sizeof(t->refuse),
				         "553 5.6.7 the server does not support SMTPUTF8, which "
				         "this message needs: %s",
				         why);
			} else {
				t->refuse_code = 451;
				snprintf(t->refuse, sizeof(t->refuse),
				         "451 4.3.0 the message could not be converted for this "
				         "server: %s",
				         why);
			}
			t->body = "";
			t->body_len = 0;
			t->size = 0;
			return;
		}
		free(copy);
		copy = d;
		clen = dlen;
	}
	/* Signed on exactly what is sent: after the copy's own headers and
	 * footer and the downgrade this server needs. */
	b->pbody = dk_prepare(s, s ? m->ks : NULL, copy, clen,
	                      s && m->ks ? shared_bh(m, f, copy, clen, bh) : NULL, &b->plen, &size);
	free(copy);
	if (b->pbody == NULL)
		goto oom;
	t->body = b->pbody;
	t->body_len = b->plen;
	t->size = size;
	return;
oom:
	t->refuse_code = 451;
	snprintf(t->refuse, sizeof(t->refuse), "451 4.3.0 out of memory rendering the copy");
	t->body = "";
	t->body_len = 0;
	t->size = 0;
}
