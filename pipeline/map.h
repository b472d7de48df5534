/*
 * map.h: the journey map's aggregate counters: which counters of which
 * segment's map hash one applied event (or one timer's change) moves.
 * Pure logic; the state script adds the deltas and keeps the gauges.
 * See README "Journey map".
 */
#ifndef JOURNEYD_MAP_H
#define JOURNEYD_MAP_H

#include <stdint.h>

#include "journey.h"

/* "stage>stage:ms", "stage:pain:type" and the like */
#define MAP_FIELD_MAX	(2 * EVENT_NAME_MAX + 16)
#define MAP_DELTAS_MAX	(9 + 5 * JOURNEY_CHANGES_MAX)
#define MAP_BUCKETS	32	/* of the time spent in a stage */

struct map_delta {
	const char	*segment;	/* its name: held by the state or result */
	char		 field[MAP_FIELD_MAX];
	int64_t		 delta;
};

/*
 * The counters moved by an event (ev) or a timer (ev NULL) whose outcome
 * for customer s, now as the fold left it, is res. Returns how many.
 */
/*
 * The time a customer spent in a stage before moving on, as a bucket:
 * 0 under a minute, k for [2^(k-1), 2^k) minutes; medians are read from
 * the buckets. map_bucket_ms gives a bucket's upper end.
 */
int	map_time_bucket(int64_t ms);
int64_t	map_bucket_ms(int k);
int	map_deltas(const struct journey_model *m, const struct journey_state *s,
	    const struct event *ev, const struct journey_result *res,
	    struct map_delta out[MAP_DELTAS_MAX]);

#endif
