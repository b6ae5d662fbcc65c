/*
 * listen.c - listening sockets for the `listen` setting.
 */
#include "server/listen.h"
#include "conf/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
bind_one(const struct addrinfo *ai, char *err, size_t errlen, const char *what)
{
	int fd, on = 1;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", what, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		snprintf(err, errlen, "listen %s: %s", what, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
listen_bind_all(const char *spec, int **fdsp, size_t *np, char *err, size_t errlen)
{
	const char *cur = spec, *item;
	size_t len, n = 0, cap = 0;
	int *fds = NULL;

	while ((item = conf_list_next(&cur, &len)) != NULL) {
		char buf[300], *host, *port, *colon;
		struct addrinfo hints = {0}, *res, *ai;
		int rc;

		if (len >= sizeof(buf)) {
			snprintf(err, errlen, "listen: address too long: %.*s", (int)len, item);
			goto fail;
		}
		memcpy(buf, item, len);
		buf[len] = '\0';
		colon = strrchr(buf, ':');
		if (colon == NULL || colon == buf || colon[1] == '\0') {
			snprintf(err, errlen, "listen: %s: expected addr:port or [addr]:port", buf);
			goto fail;
		}
		*colon = '\0';
		host = buf;
		port = colon + 1;
		if (host[0] == '[') {
			size_t hl = strlen(host);
			if (hl < 3 || host[hl - 1] != ']') {
				snprintf(err, errlen, "listen: %s: bad IPv6 address", item);
				goto fail;
			}
			host[hl - 1] = '\0';
			host++;
		}
		if (strcmp(host, "*") == 0 || host[0] == '\0')
			host = NULL;
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | (host ? AI_NUMERICHOST : 0);
		if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
			snprintf(err, errlen, "listen: %.*s: %s", (int)len, item, gai_strerror(rc));
			goto fail;
		}
		for (ai = res; ai; ai = ai->ai_next) {
			char what[320];
			int fd;

			snprintf(what, sizeof(what), "%.*s", (int)len, item);
			if ((fd = bind_one(ai, err, errlen, what)) < 0) {
				freeaddrinfo(res);
				goto fail;
			}
			if (n == cap) {
				int *nf = realloc(fds, (cap = cap ? cap * 2 : 4) * sizeof(*fds));
				if (nf == NULL) {
					close(fd);
					freeaddrinfo(res);
					snprintf(err, errlen, "out of memory");
					goto fail;
				}
				fds = nf;
			}
			fds[n++] = fd;
		}
		freeaddrinfo(res);
	}
	if (n == 0) {
		snprintf(err, errlen, "listen: no address to listen on");
		goto fail;
	}
	*fdsp = fds;
	*np = n;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
	return -1;
}
