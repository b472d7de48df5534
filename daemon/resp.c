/*
 * resp.c: builds a Redis command in RESP, the protocol's own form, in one
 * growing buffer that is reused from command to command. The batch's
 * state write has tens of thousands of arguments: building them here
 * directly costs one copy, where an argv array costs the array, the
 * strings it points to, and hiredis formatting them all over again.
 *
 * The command's header ("*argc") is known only at the end, so the
 * arguments start after room for it, and resp_end writes it just before
 * them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "number.h"
#include "resp.h"

#define HEAD_ROOM	24	/* "*" argc "\r\n" */
#define COUNT_DIGITS	10
#define LENGTH_TEXT_MAX	20	/* a size_t in decimal */

static void
reserve(struct resp *r, size_t n)
{
	size_t	cap;

	if (r->len + n <= r->cap)
		return;
	for (cap = r->cap ? r->cap : 4096; cap < r->len + n; cap *= 2)
		;
	if ((r->buf = realloc(r->buf, cap)) == NULL)
		fatal("redis command of %zu bytes", cap);
	r->cap = cap;
}

/* "$n\r\n": the header of a bulk string of n bytes */
static void
bulk_head(struct resp *r, size_t n)
{
	reserve(r, n + LENGTH_TEXT_MAX + 5);
	r->buf[r->len++] = '$';
	r->len += number_format_u64(r->buf + r->len, n);
	r->buf[r->len++] = '\r';
	r->buf[r->len++] = '\n';
	r->argc++;
}

static void
bulk_tail(struct resp *r)
{
	r->buf[r->len++] = '\r';
	r->buf[r->len++] = '\n';
}

void
resp_begin(struct resp *r)
{
	r->len = 0;
	r->argc = 0;
	reserve(r, HEAD_ROOM);
	r->len = HEAD_ROOM;
}

void
resp_arg(struct resp *r, const void *p, size_t n)
{
	bulk_head(r, n);
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	bulk_tail(r);
}

void
resp_str(struct resp *r, const char *s)
{
	resp_arg(r, s, strlen(s));
}

void
resp_i64(struct resp *r, int64_t v)
{
	char	text[NUMBER_TEXT_MAX];

	resp_arg(r, text, number_format_i64(text, v));
}

void
resp_printf(struct resp *r, const char *fmt, ...)
{
	char	text[512];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(text))
		fatalx("redis argument longer than %zu bytes", sizeof(text));
	resp_arg(r, text, (size_t)n);
}

void
resp_concat(struct resp *r, ...)
{
	const char	*s;
	size_t		 n = 0, at;
	va_list		 ap;

	va_start(ap, r);
	while ((s = va_arg(ap, const char *)) != NULL)
		n += strlen(s);
	va_end(ap);
	bulk_head(r, n);
	at = r->len;
	va_start(ap, r);
	while ((s = va_arg(ap, const char *)) != NULL) {
		size_t	len = strlen(s);

		memcpy(r->buf + at, s, len);
		at += len;
	}
	va_end(ap);
	r->len = at;
	bulk_tail(r);
}

void
resp_join(struct resp *r, char sep, int n, const char *const *part,
    const size_t *partlen)
{
	size_t	total = n > 0 ? (size_t)n - 1 : 0;

	for (int i = 0; i < n; i++)
		total += partlen[i];
	bulk_head(r, total);
	for (int i = 0; i < n; i++) {
		if (i > 0)
			r->buf[r->len++] = sep;
		memcpy(r->buf + r->len, part[i], partlen[i]);
		r->len += partlen[i];
	}
	bulk_tail(r);
}

size_t
resp_count_slot(struct resp *r)
{
	size_t	slot;

	bulk_head(r, COUNT_DIGITS);
	slot = r->len;
	memset(r->buf + r->len, '0', COUNT_DIGITS);
	r->len += COUNT_DIGITS;
	bulk_tail(r);
	return slot;
}

void
resp_count_set(struct resp *r, size_t slot, size_t n)
{
	for (size_t i = COUNT_DIGITS; i-- > 0; n /= 10)
		r->buf[slot + i] = (char)('0' + n % 10);
}

const char *
resp_end(struct resp *r, size_t *len)
{
	char	head[HEAD_ROOM];
	size_t	n = 0;

	head[n++] = '*';
	n += number_format_u64(head + n, r->argc);
	head[n++] = '\r';
	head[n++] = '\n';
	memcpy(r->buf + HEAD_ROOM - n, head, n);
	*len = r->len - (HEAD_ROOM - n);
	return r->buf + HEAD_ROOM - n;
}

void
resp_free(struct resp *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}
