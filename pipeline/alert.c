/*
 * alert.c: alert ids and the JSON encoding of alerts.
 * The id is 128 bits of two independently seeded 64-bit hashes over the
 * alert's identity; it needs to be stable and collision-free in practice,
 * not cryptographic.
 */
#include <inttypes.h>
#include <math.h>
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

const char *
alert_type(enum journey_change_kind kind)
{
	static const char *const types[] = {
		[JOURNEY_CHANGE_STAGE] = "stage_change",
		[JOURNEY_CHANGE_RISK] = "churn_risk",
		[JOURNEY_CHANGE_CHURNED] = "churned",
		[JOURNEY_CHANGE_REACTIVATED] = "reactivated",
	};

	return types[kind];
}

static const char *
outcome(const struct journey_model *m, const struct journey_change *c)
{
	switch (c->kind) {
	case JOURNEY_CHANGE_STAGE:
		return m->stage[c->to];
	case JOURNEY_CHANGE_RISK:
		return churn_level_name(c->to);
	default:
		return journey_change_kind_name(c->kind);
	}
}

void
alert_id(const struct journey_model *m, const struct journey_change *c,
    const struct alert_origin *o, char id[ALERT_ID_LEN])
{
	struct hash128	 st = { { UINT64_C(0xcbf29ce484222325),
			    UINT64_C(0x84222325cbf29ce4) } };
	const char	*kind = alert_type(c->kind), *what = outcome(m, c);
	char		 cause[64];

	hash_bytes(&st, kind, strlen(kind));
	hash_bytes(&st, what, strlen(what));
	hash_bytes(&st, o->customer_id, strlen(o->customer_id));
	if (c->deadline_ms >= 0) {
		snprintf(cause, sizeof(cause), "deadline@%" PRId64,
		    c->deadline_ms);
		hash_bytes(&st, cause, strlen(cause));
	} else if (o->event->event_id[0] != '\0')
		hash_bytes(&st, o->event->event_id,
		    strlen(o->event->event_id));
	else {
		hash_bytes(&st, o->topic, strlen(o->topic));
		snprintf(cause, sizeof(cause), "%" PRId32 "@%" PRId64,
		    o->partition, o->offset);
		hash_bytes(&st, cause, strlen(cause));
	}
	snprintf(id, ALERT_ID_LEN, "%016" PRIx64 "%016" PRIx64,
	    mix64(st.h[0]), mix64(st.h[1]));
}

static json_t *
string_or_null(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

/* "a; b; c" as ["a", "b", "c"] */
static json_t *
reasons_array(const char *reasons)
{
	json_t		*a = json_array();
	const char	*sep;

	while (a != NULL && *reasons) {
		sep = strstr(reasons, "; ");
		json_array_append_new(a, json_stringn(reasons, sep ?
		    (size_t)(sep - reasons) : strlen(reasons)));
		reasons = sep ? sep + 2 : "";
	}
	return a;
}

char *
alert_encode(const struct journey_model *m, const struct journey_change *c,
    const struct alert_origin *o, const char id[ALERT_ID_LEN], size_t *len)
{
	const struct event	*ev = o->event;
	char			 at[TIMESTAMP_ISO_LEN];
	json_t			*root;
	char			*text = NULL;

	timestamp_format_iso8601(c->at_ms, at);
	root = json_pack("{s:s, s:s, s:s, s:s}", "alert_id", id,
	    "type", alert_type(c->kind), "customer_id", o->customer_id, "at", at);
	if (root == NULL)
		return NULL;
	switch (c->kind) {
	case JOURNEY_CHANGE_STAGE:
		json_object_set_new(root, "from", c->from == JOURNEY_NO_STAGE ?
		    json_null() : json_string(m->stage[c->from]));
		json_object_set_new(root, "to", json_string(m->stage[c->to]));
		break;
	case JOURNEY_CHANGE_RISK:
		json_object_set_new(root, "level",
		    json_string(churn_level_name(c->to)));
		json_object_set_new(root, "previous",
		    json_string(churn_level_name(c->from)));
		/* FALLTHROUGH */
	case JOURNEY_CHANGE_CHURNED:
		json_object_set_new(root, "score",
		    json_real(round(c->score * 1000) / 1000));
		json_object_set_new(root, "reasons", reasons_array(c->reasons));
		/* FALLTHROUGH */
	case JOURNEY_CHANGE_REACTIVATED:
		json_object_set_new(root, "stage",
		    json_string(m->stage[c->stage]));
		json_object_set_new(root, "cause", json_string(
		    c->deadline_ms >= 0 ? "inactivity" : "event"));
		break;
	}
	if (c->deadline_ms < 0) {
		json_object_set_new(root, "event", json_pack("{s:o, s:s, s:o}",
		    "id", string_or_null(ev->event_id), "type", ev->type,
		    "channel", string_or_null(ev->channel)));
		json_object_set_new(root, "source", json_pack("{s:s, s:i, s:I}",
		    "topic", o->topic, "partition", (int)o->partition,
		    "offset", (json_int_t)o->offset));
	}
	text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(root);
	if (text != NULL)
		*len = strlen(text);
	return text;
}
