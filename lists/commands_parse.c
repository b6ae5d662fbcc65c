/*
 * commands_parse.c - reading email commands from a subject and a body, and
 * the RFC 3834 rules that say which mail is never answered. Pure logic over
 * text and parsed headers (see commands.h).
 */
#include "lists/commands.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/msg.h"

/* ---- parsing ---- */

static const struct {
	const char *word;
	enum commands_verb verb;
	int takes_token;
} verbs[] = {
    {"subscribe", CMD_SUBSCRIBE, 0},     {"join", CMD_SUBSCRIBE, 0},
    {"unsubscribe", CMD_UNSUBSCRIBE, 0}, {"leave", CMD_UNSUBSCRIBE, 0},
    {"confirm", CMD_CONFIRM, 1},         {"help", CMD_HELP, 0},
    {"approve", CMD_APPROVE, 1},         {"reject", CMD_REJECT, 1},
    {"discard", CMD_DISCARD, 1},         {"set", CMD_SET, 2},
};

/* The delivery modes `set` takes (members.delivery). */
static const char *const set_modes[] = {"digest", "digest-text", "regular", "nomail"};

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* The next word of p[..end) (up to white space); returns its end. */
static const char *
word_end(const char *p, const char *end)
{
	while (p < end && *p != ' ' && *p != '\t')
		p++;
	return p;
}

/* Reads one line as a command. Returns 1 and fills *c for a command, 2 for
 * "end"-like words, 0 for anything else. */
int
commands_parse_line(const char *p, const char *end, struct commands_cmd *c)
{
	const char *w, *we;

	p = skip_ws(p, end);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	w = p;
	we = word_end(w, end);
	if (we == w)
		return 0;
	if (msg_word_eq(w, (size_t)(we - w), "end") || msg_word_eq(w, (size_t)(we - w), "stop") ||
	    msg_word_eq(w, (size_t)(we - w), "quit"))
		return we == end ? 2 : 0;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		const char *t, *te;
		size_t n = 0;
		if (!msg_word_eq(w, (size_t)(we - w), verbs[i].word))
			continue;
		memset(c, 0, sizeof(*c));
		c->verb = verbs[i].verb;
		snprintf(c->line, sizeof(c->line), "%.*s", (int)(end - w), w);
		if (!verbs[i].takes_token)
			return 1;
		t = skip_ws(we, end);
		if (verbs[i].takes_token == 2) {
			/* set MODE: one of set_modes, any case; bad otherwise. */
			te = word_end(t, end);
			c->bad = 1;
			for (size_t k = 0; k < sizeof(set_modes) / sizeof(set_modes[0]); k++)
				if (msg_word_eq(t, (size_t)(te - t), set_modes[k])) {
					snprintf(c->token, sizeof(c->token), "%s", set_modes[k]);
					c->bad = 0;
				}
			return 1;
		}
		te = word_end(t, end);
		/* Tolerate "<TOKEN>", "TOKEN:", "TOKEN." as people and subjects
		 * write them. */
		while (t < te && strchr("<([\"'", *t))
			t++;
		while (te > t && strchr(">)]\"'.,:;", te[-1]))
			te--;
		for (const char *q = t; q < te; q++) {
			if (!isalnum((unsigned char)*q) || n >= COMMANDS_TOKEN_MAX) {
				c->bad = 1;
				break;
			}
			c->token[n++] = (char)tolower((unsigned char)*q);
		}
		c->token[c->bad ? 0 : n] = '\0';
		if (n == 0)
			c->bad = 1;
		t = skip_ws(word_end(skip_ws(we, end), end), end);
		snprintf(c->rest, sizeof(c->rest), "%.*s", (int)(end - t), t);
		return 1;
	}
	return 0;
}

static void
add_cmd(struct commands_list *out, const struct commands_cmd *c)
{
	for (size_t i = 0; i < out->n; i++)
		if (out->cmds[i].verb == c->verb && strcmp(out->cmds[i].token, c->token) == 0)
			return;
	if (out->n < COMMANDS_MAX)
		out->cmds[out->n++] = *c;
}

/* Drops "Re:", "Fwd:", "AW:" ... and "[list]" prefixes. */
static const char *
strip_subject(const char *s)
{
	static const char *const prefixes[] = {"re:", "fw:", "fwd:", "aw:", "wg:", "sv:", "vs:"};
	int again = 1;

	while (again) {
		again = 0;
		while (*s == ' ' || *s == '\t')
			s++;
		for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
			size_t n = strlen(prefixes[i]);
			if (strncasecmp(s, prefixes[i], n) == 0) {
				s += n;
				again = 1;
			}
		}
		if (*s == '[') {
			const char *e = strchr(s, ']');
			if (e != NULL) {
				s = e + 1;
				again = 1;
			}
		}
	}
	return s;
}

void
commands_parse(const char *subject, const char *body, size_t body_len, struct commands_list *out)
{
	struct commands_cmd c;
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	if (subject != NULL) {
		const char *s = strip_subject(subject);
		if (commands_parse_line(s, s + strlen(s), &c) == 1)
			add_cmd(out, &c);
	}
	if (body == NULL)
		return;
	while (i < body_len) {
		size_t e = i;
		const char *line = body + i;
		size_t len;
		int r;
		while (e < body_len && body[e] != '\r' && body[e] != '\n')
			e++;
		len = e - i;
		if (e < body_len && body[e] == '\r' && e + 1 < body_len && body[e + 1] == '\n')
			e++;
		i = e + 1;
		/* A signature ends the commands. */
		if ((len == 3 && memcmp(line, "-- ", 3) == 0) ||
		    (len == 2 && memcmp(line, "--", 2) == 0))
			break;
		{
			const char *p = skip_ws(line, line + len);
			if (p == line + len || *p == '>')
				continue; /* blank or quoted */
		}
		r = commands_parse_line(line, line + len, &c);
		if (r == 2)
			break;
		if (r == 1) {
			add_cmd(out, &c);
			if (out->n >= COMMANDS_MAX)
				break;
			continue;
		}
		if (out->n > 0)
			break;
		if (++out->skipped >= COMMANDS_MAX_JUNK)
			break;
	}
}

/* ---- RFC 3834 ---- */

static int
local_is(const char *addr, const char *word, int prefix, int suffix)
{
	const char *at = strrchr(addr, '@');
	size_t n = at ? (size_t)(at - addr) : strlen(addr);
	size_t wn = strlen(word);

	if (prefix)
		return n >= wn && strncasecmp(addr, word, wn) == 0;
	if (suffix)
		return n >= wn && strncasecmp(addr + n - wn, word, wn) == 0;
	return n == wn && strncasecmp(addr, word, wn) == 0;
}

const char *
commands_auto_reason(const struct msg *m, const char *mail_from)
{
	char *v;
	const char *why = NULL;

	if (mail_from == NULL || *mail_from == '\0')
		return "null sender";
	if ((v = msg_header_text(m, "Auto-Submitted")) != NULL) {
		size_t n = strcspn(v, " \t;(");
		if (!msg_word_eq(v, n, "no"))
			why = "auto-submitted";
		free(v);
		if (why)
			return why;
	}
	if ((v = msg_header_text(m, "Precedence")) != NULL) {
		size_t n = strcspn(v, " \t;(");
		if (msg_word_eq(v, n, "bulk"))
			why = "precedence bulk";
		else if (msg_word_eq(v, n, "junk"))
			why = "precedence junk";
		else if (msg_word_eq(v, n, "list"))
			why = "precedence list";
		free(v);
		if (why)
			return why;
	}
	if (msg_header_get(m, "List-Id", 0) != NULL)
		return "list mail";
	/* RFC 3834 section 2: senders that are themselves automatic. */
	if (local_is(mail_from, "mailer-daemon", 0, 0) || local_is(mail_from, "owner-", 1, 0) ||
	    local_is(mail_from, "-request", 0, 1) || local_is(mail_from, "-bounces", 0, 1) ||
	    local_is(mail_from, "-owner", 0, 1) || strstr(mail_from, "-bounces+") != NULL)
		return "automatic sender";
	return NULL;
}
