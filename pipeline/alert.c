/*
 * alert.c: alert ids and the JSON encoding of alerts.
 * The id is 128 bits of two independently seeded 64-bit hashes over the
 * alert's identity; it needs to be stable and collision-free in practice,
 * not cryptographic.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "alert.h"
#include "timestamp.h"

struct hash128 {
	uint64_t	h[2];
};

static void
hash_bytes(struct hash128 *st, const void *p, size_t len)
{
	const unsigned char	*b = p;

	for (size_t i = 0; i < len; i++) {
		st->h[0] = (st->h[0] ^ b[i]) * UINT64_C(0x100000001b3);
		st->h[1] = (st->h[1] ^ b[i]) * UINT64_C(0x9e3779b97f4a7c15) +
		    UINT64_C(0x632be59bd9b4e019);
	}
	/* a separator so ("ab","c") and ("a","bc") differ */
	st->h[0] = (st->h[0] ^ 0xff) * UINT64_C(0x100000001b3);
	st->h[1] = (st->h[1] ^ 0xff) * UINT64_C(0x9e3779b97f4a7c15);
}

static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void
alert_id(const char *kind, const char *outcome, const struct alert_origin *o,
    char id[ALERT_ID_LEN])
{
	struct hash128	 st = { { UINT64_C(0xcbf29ce484222325),
			    UINT64_C(0x84222325cbf29ce4) } };
	char		 coord[64];

	hash_bytes(&st, kind, strlen(kind));
	hash_bytes(&st, outcome, strlen(outcome));
	hash_bytes(&st, o->event->customer_id, strlen(o->event->customer_id));
	if (o->event->event_id[0] != '\0')
		hash_bytes(&st, o->event->event_id,
		    strlen(o->event->event_id));
	else {
		hash_bytes(&st, o->topic, strlen(o->topic));
		snprintf(coord, sizeof(coord), "%" PRId32 "@%" PRId64,
		    o->partition, o->offset);
		hash_bytes(&st, coord, strlen(coord));
	}
	snprintf(id, ALERT_ID_LEN, "%016" PRIx64 "%016" PRIx64,
	    mix64(st.h[0]), mix64(st.h[1]));
}

static json_t *
string_or_null(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

char *
alert_encode_stage_change(const struct alert_origin *o, const char *from,
    const char *to, const char id[ALERT_ID_LEN], size_t *len)
{
	const struct event	*ev = o->event;
	char			 at[TIMESTAMP_ISO_LEN];
	json_t			*root;
	char			*text;

	timestamp_format_iso8601(ev->ts_ms, at);
	root = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s,"
	    " s:{s:o, s:s, s:o}, s:{s:s, s:i, s:I}}",
	    "alert_id", id,
	    "type", "stage_change",
	    "customer_id", ev->customer_id,
	    "from", string_or_null(from),
	    "to", to,
	    "at", at,
	    "event", "id", string_or_null(ev->event_id), "type", ev->type,
	    "channel", string_or_null(ev->channel),
	    "source", "topic", o->topic, "partition", (int)o->partition,
	    "offset", (json_int_t)o->offset);
	if (root == NULL)
		return NULL;
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text != NULL)
		*len = strlen(text);
	return text;
}
