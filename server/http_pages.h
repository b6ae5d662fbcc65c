/*
 * http_pages.h - the HTML of fanmaild's HTTP face: small HTML5 pages
 * without JavaScript, every value written through html_escape().
 * Only server/http.c uses it.
 */
#ifndef FANMAIL_HTTP_PAGES_H
#define FANMAIL_HTTP_PAGES_H

struct strbuf;
struct web_result;

/* Appends s with & < > " ' written as character references. */
void html_escape(struct strbuf *b, const char *s);

/* The reason phrase of an HTTP status ("Not Found"). */
const char *http_reason(int status);

void page_index(struct strbuf *b, const char *hostname);
/* An error page: the status, its reason and one plain-text sentence. */
void page_error(struct strbuf *b, int status, const char *message);
/* The page for a list-logic result: with show set, the form or button
 * that a POST to the same URL answers; otherwise what was done. */
void page_web(struct strbuf *b, const struct web_result *r, int show);

#endif
