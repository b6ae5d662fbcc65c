/*
 * control.c - the daemon's end of `fanmail queue` notifications (see
 * control.h): an inotify watch on the control file's directory.
 */
#include "server/control.h"

#include "server/log.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

struct control {
	int fd;
	struct event *ev;
	char path[PATH_MAX];
	char name[NAME_MAX + 1];
	void (*cb)(void *arg, const char *what);
	void *arg;
};

void
control_path(const char *setting, const char *database, char *out, size_t len)
{
	if (setting != NULL && *setting != '\0')
		snprintf(out, len, "%s", setting);
	else
		snprintf(out, len, "%s.kick", database);
}

static void
on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	int hit = 0;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (e->len > 0 && strcmp(e->name, c->name) == 0)
				hit = 1;
			p += sizeof(*e) + e->len;
		}
	}
	if (hit) {
		char word[32] = "kick";
		int f = open(c->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (f >= 0) {
			ssize_t r = read(f, word, sizeof(word) - 1);
			close(f);
			if (r > 0) {
				word[r] = '\0';
				word[strcspn(word, " \r\n")] = '\0';
			}
		}
		c->cb(c->arg, word[0] ? word : "kick");
	}
}

struct control *
control_listen(struct event_base *base, const char *path, void (*cb)(void *arg, const char *what),
               void *arg)
{
	struct control *c = calloc(1, sizeof(*c));
	char dir[PATH_MAX];
	const char *slash;

	if (c == NULL)
		return NULL;
	snprintf(c->path, sizeof(c->path), "%s", path);
	slash = strrchr(path, '/');
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
		snprintf(c->name, sizeof(c->name), "%s", path);
	} else {
		snprintf(dir, sizeof(dir), "%.*s",
		         (int)(slash - path) > 0 ? (int)(slash - path) : 1, path);
		snprintf(c->name, sizeof(c->name), "%s", slash + 1);
	}
	c->cb = cb;
	c->arg = arg;
	c->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->fd < 0 || inotify_add_watch(c->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
		log_warn("control: cannot watch %s", dir);
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return NULL;
	}
	c->ev = event_new(base, c->fd, EV_READ | EV_PERSIST, on_inotify, c);
	event_add(c->ev, NULL);
	return c;
}

void
control_close(struct control *c)
{
	if (c == NULL)
		return;
	event_free(c->ev);
	close(c->fd);
	free(c);
}
