/*
 * log.h - fanmaild's log: one line per event on stderr, in Postfix's form so
 * that admins can grep and summarise it with the tools they have:
 *   fanmaild[PID]: 4F2A1C: to=<bob@example.net>, relay=..., status=sent (...)
 *
 * log_info/log_debug for events, log_warn (with strerror(errno)) and
 * log_warnx (without) for problems, fatal/fatalx for states that cannot
 * happen (they exit). Safe to call from any thread: each line is written
 * with one write(2).
 */
#ifndef FANMAIL_LOG_H
#define FANMAIL_LOG_H

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_ERROR,
};

/* Sets the program name and the least important level written. Returns -1
 * for an unknown level name. */
int log_init(const char *progname, const char *level);

/* 1 when lines of this level are written: lets a caller skip building
 * the arguments of a line that would be dropped. */
int log_enabled(enum log_level lvl);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
