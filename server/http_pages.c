/*
 * http_pages.c - the HTML of the HTTP face (see http_pages.h).
 *
 * Forms have no action attribute: a browser then posts to the page's
 * own URL, which is right behind a reverse proxy whatever its path.
 */
#include "server/http_pages.h"
#include "lists/web.h"
#include "mail/strbuf.h"

#include <stdio.h>
#include <string.h>

void
html_escape(struct strbuf *b, const char *s)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *rep;

		switch (*s) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			continue;
		}
		strbuf_add(b, run, (size_t)(s - run));
		strbuf_str(b, rep);
		run = s + 1;
	}
	strbuf_add(b, run, (size_t)(s - run));
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 410:
		return "Gone";
	case 413:
		return "Payload Too Large";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

static const char style[] =
    "body{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em;line-height:1.5}"
    "button{font-size:1em;padding:.4em 1em}input{font-size:1em;padding:.3em;width:100%;"
    "box-sizing:border-box}label{display:block;margin:.5em 0 .2em}";

/* The head and the <h1>, both showing title. */
static void
head(struct strbuf *b, const char *title)
{
	strbuf_str(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	              "<meta name=\"robots\" content=\"noindex\">\n<title>");
	html_escape(b, title);
	strbuf_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n<h1>", style);
	html_escape(b, title);
	strbuf_str(b, "</h1>\n");
}

static void
foot(struct strbuf *b)
{
	strbuf_str(b, "</main>\n</body>\n</html>\n");
}

static void
para(struct strbuf *b, const char *text)
{
	if (text == NULL || *text == '\0')
		return;
	strbuf_str(b, "<p>");
	html_escape(b, text);
	strbuf_str(b, "</p>\n");
}

void
page_index(struct strbuf *b, const char *hostname)
{
	head(b, "Mailing lists");
	strbuf_str(b, "<p>This is the web face of the mailing lists at ");
	html_escape(b, hostname);
	strbuf_str(b, ". Its pages are reached through the links in list mail.</p>\n");
	foot(b);
}

void
page_error(struct strbuf *b, int status, const char *message)
{
	char title[64];

	snprintf(title, sizeof(title), "%d %s", status, http_reason(status));
	head(b, title);
	para(b, message);
	foot(b);
}

/* "the list NAME (ADDRESS)", or just the address. */
static void
list_line(struct strbuf *b, const struct web_result *r)
{
	if (r->list_address[0] == '\0')
		return;
	strbuf_str(b, "<p>List: <strong>");
	html_escape(b, r->list_name[0] ? r->list_name : r->list_address);
	strbuf_str(b, "</strong> &lt;");
	html_escape(b, r->list_address);
	strbuf_str(b, "&gt;</p>\n");
	para(b, r->list_description);
}

void
page_web(struct strbuf *b, const struct web_result *r, int show)
{
	const char *title, *button = NULL;

	switch (r->kind) {
	case WEB_CONFIRM_SUBSCRIBE:
		title = show ? "Confirm your subscription" : "Subscription";
		button = "Yes, subscribe me";
		break;
	case WEB_CONFIRM_UNSUBSCRIBE:
		title = show ? "Confirm leaving the list" : "Unsubscription";
		button = "Yes, unsubscribe me";
		break;
	case WEB_ONECLICK:
		title = show ? "Unsubscribe" : "Unsubscribed";
		button = "Unsubscribe";
		break;
	case WEB_FORM_UNSUBSCRIBE:
		title = "Leave the list";
		button = "Send me the confirmation mail";
		break;
	case WEB_FORM_SUBSCRIBE:
		title = "Join the list";
		button = "Send me the confirmation mail";
		break;
	default:
		page_error(b, r->status == 200 ? 500 : r->status, r->message);
		return;
	}
	if (r->status != 200) {
		page_error(b, r->status, r->message);
		return;
	}
	head(b, title);
	list_line(b, r);
	if (r->address[0] != '\0') {
		strbuf_str(b, "<p>Address: <strong>");
		html_escape(b, r->address);
		strbuf_str(b, "</strong></p>\n");
	}
	para(b, r->message);
	if (show) {
		strbuf_str(b, "<form method=\"post\">\n");
		if (r->kind == WEB_ONECLICK)
			strbuf_str(b, "<input type=\"hidden\" name=\"List-Unsubscribe\" "
			              "value=\"One-Click\">\n");
		if (r->kind == WEB_FORM_UNSUBSCRIBE || r->kind == WEB_FORM_SUBSCRIBE)
			strbuf_str(b, "<label for=\"address\">Your email address</label>\n"
			              "<input type=\"email\" id=\"address\" name=\"address\" "
			              "required autocomplete=\"email\">\n");
		strbuf_str(b, "<p><button type=\"submit\">");
		html_escape(b, button);
		strbuf_str(b, "</button></p>\n</form>\n");
	}
	foot(b);
}
