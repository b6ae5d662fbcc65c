/*
 * fuzz_smtp.c - the SMTP command parser's pure parts (server/smtp_in.c):
 * the path and parameter split of MAIL FROM / RCPT TO (split_path,
 * next_param), then what RCPT does with the path: addr_parse and the list
 * and role lookup (listaddr_resolve).
 *
 * smtp_in.c keeps these functions static, so this file includes it whole
 * rather than asking for them to be exported: the target sees exactly the
 * code the daemon runs, and nothing in smtp_in.c changed for it. (The
 * session state machine around them is driven by the end-to-end dialog and
 * abuse tests.)
 *
 * Input: the argument text after "MAIL " / "RCPT " as a client sends it
 * (the daemon has removed the CRLF and refused NUL, CR and LF already).
 * Beyond "does not crash": the path lies inside the argument and ends at
 * the closing '>', a source route is gone, parameters are non-empty words
 * without spaces, and a role address found names a list the lookup said
 * exists.
 */
#include "server/smtp_in.c"

#include <stdint.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "smtp parser invariant failed: %s\n", #cond);              \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Lists called "list" and "list-request-x" exist (ids 1, 2). */
static int64_t
lookup(void *arg, const char *local, size_t len)
{
	(void)arg;
	if (len == 4 && strncasecmp(local, "list", 4) == 0)
		return 1;
	if (len == 14 && strncasecmp(local, "list-request-x", 14) == 0)
		return 2;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *arg, *copy, *params, *p;
	const char *path, *why;
	size_t plen, nparams = 0;
	struct addr a;
	struct listaddr_match m;

	if (size > CMD_LINE_MAX)
		return 0;
	arg = malloc(size + 1);
	CHECK(arg != NULL);
	memcpy(arg, data, size);
	arg[size] = '\0';
	for (size_t i = 0; i < size; i++) /* the reader refuses these */
		if (arg[i] == '\0' || arg[i] == '\r' || arg[i] == '\n')
			arg[i] = ' ';
	copy = strdup(arg);
	CHECK(copy != NULL);
	if (split_path(arg, &path, &plen, &params) == 0) {
		CHECK(path >= arg && path + plen < arg + size + 1);
		CHECK(path[plen] == '>');
		CHECK(path == arg || path[-1] == '<' || path[-1] == ':');
		CHECK(params >= path + plen + 1 && params <= arg + size);
		while ((p = next_param(&params)) != NULL) {
			CHECK(*p != '\0' && strchr(p, ' ') == NULL);
			CHECK(++nparams <= size);
		}
		for (int flags = 0; flags <= ADDR_UTF8; flags += ADDR_UTF8) {
			why = NULL;
			if (plen > 0 && addr_parse(path, plen, flags, &a, &why) == 0) {
				if (listaddr_resolve(a.local, strlen(a.local), lookup, NULL, &m) ==
				    0) {
					CHECK(m.list_id == 1 || m.list_id == 2);
					CHECK(m.ext == NULL ||
					      (m.ext >= a.local &&
					       m.ext + m.ext_len <= a.local + strlen(a.local)));
					CHECK(listaddr_role_name(m.role) != NULL);
				}
			} else if (plen > 0) {
				CHECK(why != NULL);
			}
		}
		/* proceed_mail parses the line a second time: same result. */
		{
			const char *path2;
			size_t plen2;
			char *params2;
			CHECK(split_path(copy, &path2, &plen2, &params2) == 0);
			CHECK(plen2 == plen && memcmp(path2, path, plen) == 0);
		}
	}
	free(copy);
	free(arg);
	return 0;
}
