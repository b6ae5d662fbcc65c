/*
 * addr.h - mail addresses (RFC 5321 mailboxes, RFC 5322 name-addr lines).
 *
 * addr_parse() takes the text of a mailbox (no angle brackets): a dot-atom
 * or quoted-string local part, "@", and a domain name or an address literal
 * ([192.0.2.1], [IPv6:2001:db8::1]). Lengths are checked against RFC 5321
 * (local part 64 octets, domain 255, whole path 254). UTF-8 (RFC 6531) is
 * accepted only with ADDR_UTF8 and must be well-formed.
 *
 * addr_key() gives the lookup key used everywhere addresses are compared:
 * the local part case-folded (ASCII; UTF-8 bytes kept as they are) with
 * needless quoting removed, "@", the domain lower-cased. Two addresses that
 * a mail admin would call the same have the same key.
 */
#ifndef FANMAIL_ADDR_H
#define FANMAIL_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX 254

#define ADDR_UTF8 0x1 /* allow UTF-8 in local part and domain */

struct addr {
	char local[ADDR_LOCAL_MAX + 1];   /* as written, quotes included */
	char domain[ADDR_DOMAIN_MAX + 1]; /* as written */
	int utf8;                         /* has non-ASCII octets */
	int literal;                      /* domain is an address literal */
};

/* Parses s[0..len). Returns 0, or -1 with *why pointing at a static
 * sentence that says what is wrong ("local part longer than 64 octets"). */
int addr_parse(const char *s, size_t len, int flags, struct addr *a, const char **why);

/* local@domain as written. Returns the length, or -1 if buf is too small. */
int addr_format(const struct addr *a, char *buf, size_t len);

/* The lookup key (see above). Returns the length, or -1. */
int addr_key(const struct addr *a, char *buf, size_t len);

/* The domain lower-cased (ASCII letters only). Returns the length, or -1. */
int addr_domain_key(const struct addr *a, char *buf, size_t len);

/* Parses one line of a member file: "addr", "<addr>", "Name <addr>",
 * "\"Name\" <addr>" or "addr (Name)". name receives the display name
 * (unquoted, possibly empty). Returns 0 or -1 with *why set. */
int addr_parse_line(const char *line, size_t len, int flags, struct addr *a, char *name,
                    size_t namelen, const char **why);

/* Reads the first mailbox of an address header field's value (From,
 * Sender, Reply-To) as it stands in the message: folded or not, possibly a
 * list of several. Forms: "Name <a@b>", "\"Name\" <a@b>", "a@b (Name)",
 * "a@b", "<a@b>"; a comment after the '>' is ignored. UTF-8 is allowed
 * (RFC 6532). name (NULL when namelen is 0) gets the display name,
 * unquoted and RFC 2047-decoded to UTF-8, or "" when there is none or it
 * is not readable text. This is the one parser of who sent a message:
 * posting and commands both use it. Returns 0, or -1 with *why set. */
int addr_parse_mailbox(const char *value, size_t len, struct addr *a, char *name, size_t namelen,
                       const char **why);

/* In an unfolded address list s[0..n): the offset of the comma that ends
 * its first item (outside quoted strings, comments and angle brackets),
 * or n when there is none. */
size_t addr_list_item_end(const char *s, size_t n);

/* Checks a display name: well-formed UTF-8, no control characters.
 * Returns 0 or -1 with *why set. */
int addr_check_name(const char *s, size_t len, const char **why);

#endif
