/*
 * customer.h: the Redis form of a customer: its journey state packed into
 * one string, both ways; the same state as readable fields; the entries
 * of its list of changes. See README "Redis keys".
 */
#ifndef JOURNEYD_CUSTOMER_H
#define JOURNEYD_CUSTOMER_H

#include <stddef.h>

#include "journey.h"
#include "name_table.h"

/*
 * A customer is one string, not a hash: a hash of its 20-odd fields cost
 * Redis 700-900 bytes and a write of a dozen of them was most of Redis's
 * time per event; the packed string is 90-250 bytes, written whole.
 * It opens with the state's version, 8 bytes big-endian, which the state
 * script compares with the one its SET replaced, then the format byte:
 * 3 since the state keeps its deadline index entry's time (2 is 3 without
 * it; 1 spelled out every name).
 */
#define CUSTOMER_VERSION_LEN	8
#define CUSTOMER_FORMAT		3
#define CUSTOMER_TAG_LEN	4	/* after the format byte */
#define CUSTOMER_PACKED_MAX	(CUSTOMER_VERSION_LEN + 1 + CUSTOMER_TAG_LEN + \
				    17 * 10 + \
				    (JOURNEY_STAGES_MAX + 4) * \
				    (EVENT_NAME_MAX + 12) + \
				    JOURNEY_SOURCES_MAX * (JOURNEY_SOURCE_MAX + 12) + \
				    JOURNEY_SOURCE_MAX + \
				    (JOURNEY_ACTIONS_MAX + JOURNEY_CHANNELS_MAX) * \
				    (EVENT_NAME_MAX + 12) + JOURNEY_IDS_MAX * 10 + \
				    8 * 8)

/* The version's bytes as a packed state begins with them. */
void	customer_version_bytes(uint64_t version,
	    unsigned char out[CUSTOMER_VERSION_LEN]);
/*
 * Packs s into buf; returns its length, 0 if size is too small. A name in
 * names (NULL: none) is written as its number; one that is not is written
 * out and added to want (NULL: nowhere), to be numbered.
 */
size_t	customer_pack(const struct journey_model *m,
	    const struct name_table *names, struct name_table *want,
	    const struct journey_state *s, unsigned char *buf, size_t size);
/*
 * Rebuilds s from its packed form, its numbered names from names (NULL:
 * none). A stage the model no longer has reads as no stage. Returns -1
 * when buf is not a packed state (or one holding what none holds: times
 * outside the years of events, sums that are no number, a score outside
 * [0, 1]), CUSTOMER_NAME_UNKNOWN when it numbers
 * names of another table than names, or a name names lacks: a newer copy
 * of the table may read it.
 */
#define CUSTOMER_NAME_UNKNOWN	(-2)
int	customer_unpack(const struct journey_model *m,
	    const struct name_table *names, struct journey_state *s,
	    const void *buf, size_t len);

#define CUSTOMER_FIELDS_MAX	(26 + JOURNEY_SOURCES_MAX + JOURNEY_STAGES_MAX + \
				    JOURNEY_ACTIONS_MAX + JOURNEY_CHANNELS_MAX)
#define CUSTOMER_SOURCE_PREFIX	"off:"
#define CUSTOMER_ACTION_PREFIX	"n:"
#define CUSTOMER_CHANNEL_PREFIX	"c:"
#define CUSTOMER_ENTERED_PREFIX	"at:"

/* The readable form: a name and a text value per field. */
struct customer_fields {
	int		 n;
	const char	*name[CUSTOMER_FIELDS_MAX];
	size_t		 namelen[CUSTOMER_FIELDS_MAX];
	const char	*value[CUSTOMER_FIELDS_MAX];
	size_t		 valuelen[CUSTOMER_FIELDS_MAX];
	/* formatted names and values: times, counts, the value, the ids */
	char		 buf[7 * 25 + 5 * 24 + 7 * 32 + JOURNEY_IDS_MAX * 17 +
			    JOURNEY_STAGES_MAX * (EVENT_NAME_MAX + 4 + 25) +
			    JOURNEY_CHANNELS_MAX * (EVENT_NAME_MAX + 3 + 24) +
			    JOURNEY_SOURCES_MAX * (JOURNEY_SOURCE_MAX + 8 + 24) +
			    JOURNEY_ACTIONS_MAX * (EVENT_NAME_MAX + 3 + 24)];
};

/* Fills f with the fields of s; points into s and f->buf. */
void	customer_encode(const struct journey_model *m,
	    const struct journey_state *s, struct customer_fields *f);
/* The value of the field named name, or NULL. */
const char *customer_field(const struct customer_fields *f, const char *name);

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

/*
 * A customer's key, PREFIX{ID}SUFFIX (SUFFIX "" for its state,
 * CUSTOMER_CHANGES_SUFFIX for its changes), NUL-terminated in buf: its
 * length, or 0 when it does not fit in size bytes.
 */
size_t	customer_key(char *buf, size_t size, const char *prefix,
	    const char *id, const char *suffix);

#endif
