/*
 * post.h - the rules of the posting path, as pure functions over a message
 * and a list's settings: posting policy, loop detection, the DMARC
 * decision, and the rewrite that makes the message that goes out (List-*
 * headers, subject prefix, Reply-To, footer, From rewriting or wrapping).
 * No database, no sockets: lists/posting.c feeds these from the store, and
 * the golden-file tests (tests/golden/) feed them from files.
 *
 * Everything returned as char * is malloc'd and owned by the caller.
 */
#ifndef FANMAIL_POST_H
#define FANMAIL_POST_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "mail/msg.h"

#define POST_ADDR_MAX 322

/* A list's settings as the posting path uses them: the "general" and
 * "list engine" blocks of struct list_conf with the text settings expanded
 * (%n, %a, \n) for this list. */
struct post_cfg {
	char local[65];   /* the list's name, lower case */
	char domain[256]; /* its domain, lower case */
	char address[POST_ADDR_MAX];
	char display_name[256];
	enum list_policy policy;
	enum list_nonmember_action nonmember;
	char subject_prefix[256]; /* %n expanded; "" for none */
	enum list_reply_to reply_to;
	char reply_to_address[POST_ADDR_MAX];
	char footer[4096]; /* escapes and %n/%a expanded, CRLF line ends */
	char archive_url[1024];
	int archive;
	enum list_dmarc_mitigation dmarc_action;
	enum list_dmarc_when dmarc_when;
	enum list_dmarc_fallback dmarc_fallback;
	int verp;             /* enum verp_mode (lists/verp.h), same order as enum list_verp */
	long long verp_every; /* with VERP_EVERY */
	enum list_remove_dkim_signatures remove_dkim;
	int personalize;     /* a copy per member: footer markers, no List-Unsubscribe */
	char http_base[512]; /* conf_http_base_url(), "" for none: the caller sets it */
	/* The digests' texts, escapes and %n/%a expanded, CRLF line ends. */
	char digest_header[2048];
	char digest_footer[2048];
};

/* Fills c for list local@domain from its settings lc (list_conf_load(), or
 * conf_list_init() and conf_list_set() where there is no store). */
void post_cfg_init(struct post_cfg *c, const char *local, const char *domain,
                   const struct list_conf *lc);

enum post_verdict { POST_PASS, POST_HOLD, POST_REJECT, POST_DISCARD };

/* What the list's policy does with a post. is_member: the poster is a
 * member (any status but unconfirmed); is_privileged: an owner or
 * moderator. *reason gets a static phrase for holds and refusals. */
enum post_verdict post_policy(const struct post_cfg *c, int is_member, int is_privileged,
                              const char **reason);

/* 1 when m already went through this list: it carries our List-Id or our
 * X-Loop marker. */
int post_is_loop(const struct msg *m, const struct post_cfg *c);

/* The first mailbox of m's From field, read by addr_parse_mailbox() (the
 * one From parser, shared with the command path): addr gets the address
 * as written, name (NULL when namelen is 0) the display name in UTF-8,
 * possibly "". Returns 0, or -1 when there is no From or no valid address
 * in it. */
int post_from(const struct msg *m, char *name, size_t namelen, char *addr, size_t addrlen);

/* Lookup key of an address as the members table keeps it: local part
 * case-folded (ASCII) and unquoted when quoting is needless, domain lower
 * case. Returns 0, or -1 when it does not fit. */
int post_addr_key(const char *addr, char *key, size_t keylen);

/* The organizational domain of domain (the registrable domain by the
 * public suffix list, RFC 7489 section 3.2); domain itself when it is
 * one or the list does not know it. */
void post_org_domain(const char *domain, char *out, size_t outlen);

/* Reads a DMARC TXT record: returns "none", "quarantine" or "reject" for a
 * valid v=DMARC1 record (sp= instead of p= when is_subdomain and it is
 * present), NULL when text is not a DMARC record. */
const char *post_dmarc_record_policy(const char *text, int is_subdomain);

/* Whether the DMARC mitigation applies to a post whose From domain has
 * policy ("none", "quarantine", "reject", "" for no record; NULL when the
 * lookup failed). */
int post_dmarc_applies(const struct post_cfg *c, const char *policy);

/* The subject that goes out: existing prefixes and reply markers stripped
 * and put back once ("Re: [name] rest"). raw is the raw field value, or
 * NULL when the message has none. *was_encoded is set when the original
 * used RFC 2047 words. Returns UTF-8 text. */
char *post_subject(const char *raw, size_t len, const char *prefix, int *was_encoded);

struct post_env {
	const char *hostname; /* for a Message-ID the post lacks */
	const char *qid;      /* ditto */
	int64_t now;          /* for a Date the post lacks */
	int mitigate;         /* apply the DMARC mitigation (post_dmarc_applies) */
};

struct post_out {
	char *data; /* the outgoing message, CRLF line ends */
	size_t len;
	char *subject;              /* as sent, decoded (UTF-8), for the archive */
	char *message_id;           /* as sent, with brackets */
	char sender[POST_ADDR_MAX]; /* the original From address, "" if none */
	int footer;       /* how the footer went in: 0 none, 1 inline, 2 new part, 3 wrapped */
	int dkim_removed; /* the poster's DKIM-Signature fields removed (remove_dkim_signatures) */
	int dkim_kept;    /* ... and kept, still valid as far as the rewrite goes */
	int dmarc;        /* 0 none, 1 From rewritten, 2 wrapped */
};

/* The list's unsubscribe page (BASE/unsubscribe/LIST@DOMAIN), or with no
 * HTTP base its mailto:LIST-leave@DOMAIN: what %u becomes where no member
 * is known (a list that is not personalized, the archive). */
void post_unsubscribe_page(const struct post_cfg *c, char *buf, size_t len);

/* The list's name as people read it: display_name, else the name. */
const char *post_list_name(const struct post_cfg *c);

/* The List-* header fields (RFC 2369, 2919: List-Id, List-Post, List-Help,
 * List-Subscribe, List-Unsubscribe unless personalized, List-Owner,
 * List-Archive when archive_url is set) and X-Loop, as a post carries
 * them: folded, CRLF; without Precedence, which the digest builder writes.
 * For messages the list sends to all its members, such as digests. NULL
 * when out of memory. */
char *post_list_fields(const struct post_cfg *c, size_t *len);

/* Builds the outgoing message from raw. With c->personalize the footer
 * variables %m and %u are left as markers (lists/personal.h) and no
 * List-Unsubscribe is written: each copy gets its own when it is sent.
 * Without, %m becomes the list's address and %u its unsubscribe page.  Returns 0, or -1 when out of
 * memory. */
int post_rewrite(const char *raw, size_t len, const struct post_cfg *c, const struct post_env *env,
                 struct post_out *out);
void post_out_free(struct post_out *out);

/* RFC 3834 section 2: may an automatic reply go to the sender of m? Not to
 * the null sender, nor to mail marked Auto-Submitted (other than "no") or
 * Precedence bulk, junk or list. */
int post_may_autoreply(const struct msg *m, const char *mail_from);

/* A notice to the poster that their post was refused, with the original
 * headers quoted. From LIST-owner, Auto-Submitted: auto-replied. */
char *post_reject_notice(const struct post_cfg *c, const char *to, const char *reason,
                         const struct msg *orig, const struct post_env *env, size_t *len);

#endif
