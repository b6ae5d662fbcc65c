/*
 * listaddr.h - which list, and which of its addresses, a recipient names.
 *
 * Pure logic, no store: the caller passes the recipient's local part and a
 * lookup function that says whether a local part is a known list (at the
 * recipient's domain). listaddr_resolve() then decides:
 *
 *   LIST                  post
 *   LIST-request          request       LIST-owner        owner
 *   LIST-bounces          bounces       LIST-bounces+EXT  bounces, extension EXT
 *   LIST-join             join          LIST-leave        leave
 *   LIST-subscribe        subscribe     LIST-unsubscribe  unsubscribe
 *   LIST-confirm+TOKEN    confirm, extension TOKEN (a token is required)
 *
 * An exact list name always wins over a suffix: with lists "foo" and
 * "foo-request", "foo-request" posts to the second. Matching ignores ASCII
 * case; the extension is returned as written. No other role takes a `+`
 * extension. The role names are the strings stored in spool_rcpt.role
 * (see db/spool.h).
 *
 * The table of roles in listaddr.c (suffix, enum, extension rule) is the
 * only one: a list may not be named so that it ends in one of its suffixes
 * (listaddr_check_list_address()), since LIST-subscribe@... is already the
 * subscribe address of LIST and the list could never be posted to.
 *
 * listaddr_is_ours() and listaddr_find() apply the same rules to a whole
 * address, looking the lists up in the store.
 */
#ifndef FANMAIL_LISTADDR_H
#define FANMAIL_LISTADDR_H

#include <stddef.h>
#include <stdint.h>

#include "mail/addr.h"

enum listaddr_role {
	LISTADDR_POST,
	LISTADDR_REQUEST,
	LISTADDR_OWNER,
	LISTADDR_BOUNCES,
	LISTADDR_JOIN,
	LISTADDR_LEAVE,
	LISTADDR_SUBSCRIBE,
	LISTADDR_UNSUBSCRIBE,
	LISTADDR_CONFIRM,
};

/* Returns the list's id (> 0) when local[0..len) names a list, else 0.
 * local is as the client wrote it; compare without regard to ASCII case. */
typedef int64_t (*listaddr_lookup_fn)(void *arg, const char *local, size_t len);

struct listaddr_match {
	int64_t list_id;
	enum listaddr_role role;
	const char *ext; /* points into the local part given; NULL when none */
	size_t ext_len;
};

/* Resolves local[0..len). Returns 0 with *m filled, or -1 when the local
 * part names no list address. */
int listaddr_resolve(const char *local, size_t len, listaddr_lookup_fn lookup, void *arg,
                     struct listaddr_match *m);

struct db;

/* Whether a is a list of this server or one of its role addresses (any of
 * the above, with any extension): such an address must never become a
 * member, or a list would post to itself or another list, and a
 * confirmation (token included) would go out to every member. Reads the
 * store, unlike the rest of this module. Returns 1 or 0, or -1 when the
 * store failed (db_status() says why). */
int listaddr_is_ours(struct db *db, const struct addr *a);

/* Which list address of this server address (local@domain, unquoted, as a
 * queue's recipient row holds it) is: 1 with *m filled (m->ext points into
 * address), 0 when it is none, -1 when the store failed. Local delivery
 * (server/deliver_local.c) asks this for mail to our own list domains. */
int listaddr_find(struct db *db, const char *address, struct listaddr_match *m);

/* "post", "request", "owner", "bounces", "join", "leave", "subscribe",
 * "unsubscribe", "confirm". */
const char *listaddr_role_name(enum listaddr_role role);

/* The role named name (as listaddr_role_name() gives it, as stored in
 * spool_rcpt.role). Returns 0, or -1 for a name that is no role. */
int listaddr_role_parse(const char *name, enum listaddr_role *role);

/* Checks that a may be created as a list address: a plain dot-atom local
 * part (no quotes, no '+', which separates VERP and token extensions), ASCII,
 * a domain name (no literal), and no role suffix at its end. Returns 0, or
 * -1 with a sentence saying why in why[0..whylen). */
int listaddr_check_list_address(const struct addr *a, char *why, size_t whylen);

#endif
