/*
 * resp.h: a Redis command built straight into its wire form (RESP), for
 * commands too large to be worth an argv array: the batch's state write.
 */
#ifndef JOURNEYD_RESP_H
#define JOURNEYD_RESP_H

#include <stddef.h>
#include <stdint.h>

struct resp {
	char	*buf;
	size_t	 len, cap;
	size_t	 argc;
};

/* Starts a new command in r, keeping r's buffer from the last one. */
void	 resp_begin(struct resp *r);
void	 resp_arg(struct resp *r, const void *p, size_t n);
void	 resp_str(struct resp *r, const char *s);
void	 resp_i64(struct resp *r, int64_t v);
void	 resp_printf(struct resp *r, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* One argument made of the strings given, up to a NULL. */
void	 resp_concat(struct resp *r, ...) __attribute__((sentinel));
/* One argument made of n parts with sep between them. */
void	 resp_join(struct resp *r, char sep, int n, const char *const *part,
	    const size_t *partlen);
/*
 * A count not known yet: a fixed-width number (zero-padded, so only for
 * the script's own arguments, which it reads with tonumber) to be set
 * with resp_count_set once known.
 */
size_t	 resp_count_slot(struct resp *r);
void	 resp_count_set(struct resp *r, size_t slot, size_t n);
/* The finished command: its start and length in r's buffer. */
const char *resp_end(struct resp *r, size_t *len);
void	 resp_free(struct resp *r);

#endif
