/*
 * customer.h: the Redis form of a customer: its journey state as a hash,
 * both ways, and the entries of its list of changes. See README "Redis
 * keys" for every field.
 */
#ifndef JOURNEYD_CUSTOMER_H
#define JOURNEYD_CUSTOMER_H

#include <stddef.h>

#include "journey.h"

#define CUSTOMER_FIELDS_MAX	(25 + JOURNEY_SOURCES_MAX + JOURNEY_STAGES_MAX + \
				    JOURNEY_ACTIONS_MAX + JOURNEY_CHANNELS_MAX)
#define CUSTOMER_SOURCE_PREFIX	"off:"
#define CUSTOMER_ACTION_PREFIX	"n:"
#define CUSTOMER_CHANNEL_PREFIX	"c:"
#define CUSTOMER_ENTERED_PREFIX	"at:"

struct customer_fields {
	int		 n;
	int64_t		 due;	/* the state's next deadline, as encoded */
	const char	*name[CUSTOMER_FIELDS_MAX];
	size_t		 namelen[CUSTOMER_FIELDS_MAX];
	const char	*value[CUSTOMER_FIELDS_MAX];
	size_t		 valuelen[CUSTOMER_FIELDS_MAX];
	/* formatted names and values: times, counts, the value, the ids */
	char		 buf[6 * 25 + 5 * 24 + 7 * 32 + JOURNEY_IDS_MAX * 17 +
			    JOURNEY_STAGES_MAX * (EVENT_NAME_MAX + 4 + 25) +
			    JOURNEY_CHANNELS_MAX * (EVENT_NAME_MAX + 3 + 24) +
			    JOURNEY_SOURCES_MAX * (JOURNEY_SOURCE_MAX + 8 + 24) +
			    JOURNEY_ACTIONS_MAX * (EVENT_NAME_MAX + 3 + 24)];
};

/* Fills f with field/value pairs for HSET; points into s and f->buf. */
void	customer_encode(const struct journey_model *m,
	    const struct journey_state *s, struct customer_fields *f);
/*
 * Rebuilds s from the field/value pairs of HGETALL (n pairs). Fields it
 * does not know are ignored; a stage the model no longer has reads as no
 * stage. Returns -1 when a known field holds a malformed value.
 */
int	customer_decode(const struct journey_model *m,
	    struct journey_state *s, size_t n, const char **names,
	    const size_t *namelen, const char **values,
	    const size_t *valuelen);

/*
 * A customer's journey changes are a list, newest last, one entry per
 * change: these fields, in this order, joined by tabs (none of them can
 * hold a control character). A list of short strings is packed whole by
 * Redis; a stream would cost 4 KB per customer before its first entry.
 */
#define CUSTOMER_CHANGE_FIELDS	8
#define CUSTOMER_CHANGES_SUFFIX	":changes"
extern const char *const customer_change_field[CUSTOMER_CHANGE_FIELDS];
/* Splits an entry into its fields; -1 unless it has exactly all of them. */
int	customer_change_split(const char *entry, size_t len,
	    const char *field[CUSTOMER_CHANGE_FIELDS],
	    size_t fieldlen[CUSTOMER_CHANGE_FIELDS]);

#endif
