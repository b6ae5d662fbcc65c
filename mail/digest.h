/*
 * digest.h - building digests: one MIME digest (RFC 2046 5.1.5) or one
 * plain-text digest (RFC 1153) of a list's posts.
 */
#ifndef FANMAIL_DIGEST_H
#define FANMAIL_DIGEST_H

#include <stddef.h>
#include <stdint.h>

struct digest_post {
	const char *msg; /* the post as sent, CRLF line ends */
	size_t len;
};

struct digest_info {
	const char *list_address, *list_name, *request_address;
	int volume, issue;
	const char *header_text, *footer_text, *list_fields, *hostname;
	int64_t now;
};

int digest_build_mime(const struct digest_info *, const struct digest_post *, size_t n, char **out,
                      size_t *len);
int digest_build_text(const struct digest_info *, const struct digest_post *, size_t n, char **out,
                      size_t *len);

#endif
