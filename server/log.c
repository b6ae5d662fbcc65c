/*
 * log.c - Postfix-style log lines on stderr, one write(2) each.
 */
#include "server/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Set once at start-up by main, read by every thread after. */
static const char *log_prog = "fanmaild";
static enum log_level log_min = LOG_LEVEL_INFO;
static long log_pid;

int
log_init(const char *progname, const char *level)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};

	log_prog = progname;
	log_pid = (long)getpid();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(level, names[i]) == 0) {
			log_min = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_enabled(enum log_level lvl)
{
	return lvl >= log_min;
}

static void
vlog(enum log_level lvl, const char *tag, int with_errno, const char *fmt, va_list ap)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	int n, saved = errno;

	if (lvl < log_min)
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = (int)strftime(line, sizeof(line), "%b %e %H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - n, " %s[%ld]: %s", log_prog,
	              log_pid ? log_pid : (long)getpid(), tag);
	if (n < (int)sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (with_errno && n < (int)sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved));
	if (n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	/* Keep one event on one line whatever the message held. */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
	errno = saved;
}

#define LOG_FN(fn, lvl, tag, err)                                                                  \
	void fn(const char *fmt, ...)                                                              \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog(lvl, tag, err, fmt, ap);                                                      \
		va_end(ap);                                                                        \
	}

LOG_FN(log_debug, LOG_LEVEL_DEBUG, "debug: ", 0)
LOG_FN(log_info, LOG_LEVEL_INFO, "", 0)
LOG_FN(log_warn, LOG_LEVEL_WARNING, "warning: ", 1)
LOG_FN(log_warnx, LOG_LEVEL_WARNING, "warning: ", 0)
LOG_FN(log_errorx, LOG_LEVEL_ERROR, "error: ", 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, "fatal: ", 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, "fatal: ", 0, fmt, ap);
	va_end(ap);
	exit(1);
}
