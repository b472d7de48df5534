/*
 * replay.h: the real data sets of ../shared/data (UCI Online Retail, the
 * Olist marketing funnel) read as journeyd events, for loadgen -R.
 */
#ifndef LOADGEN_REPLAY_H
#define LOADGEN_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* One event; a NULL string is a field the event does not carry. */
struct replay_event {
	const char	*customer, *type, *event_id, *channel, *segment;
	int64_t		 ts_ms;
	double		 value;
	int		 has_value;
};

struct replay {
	struct replay_event	*ev;
	size_t			 n, cap;
	const char		*format;	/* "uci" or "olist" */
};

/*
 * Reads a data set (gzip'd or plain CSV; its columns say which one) into
 * r, in the file's order. On failure prints "path:line: what is wrong"
 * to stderr and returns -1.
 */
int	replay_load(struct replay *r, const char *path);
void	replay_free(struct replay *r);

#endif
