/*
 * alert.c: alert ids and the JSON encoding of alerts.
 * The id is 128 bits of two independently seeded 64-bit hashes over the
 * alert's identity; it needs to be stable and collision-free in practice,
 * not cryptographic.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

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

_Static_assert(ALERT_ID_LEN == 2 * 16 + 1, "an alert id: two hex64, a NUL");

/* what a timer's change hashes as its cause, before the deadline */
#define DEADLINE_CAUSE	"deadline@"

/* v as 16 lowercase hex digits at p (an id per alert: no printf) */
static void
hex64(char *p, uint64_t v)
{
	static const char	digits[] = "0123456789abcdef";

	for (int i = 15; i >= 0; i--, v >>= 4)
		p[i] = digits[v & 15];
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
		snprintf(cause, sizeof(cause), DEADLINE_CAUSE "%" PRId64,
		    c->deadline_ms);
		hash_bytes(&st, cause, strlen(cause));
	} else if (o->event->event_id[0] != '\0') {
		hash_bytes(&st, o->event->event_id,
		    strlen(o->event->event_id));
		/*
		 * A producer's id may spell a deadline's cause: one more
		 * field keeps its alerts apart from the timer's, and leaves
		 * every other id (and every timer's) as earlier builds made
		 * them.
		 */
		if (strncmp(o->event->event_id, DEADLINE_CAUSE,
		    strlen(DEADLINE_CAUSE)) == 0)
			hash_bytes(&st, "", 0);
	} else {
		hash_bytes(&st, o->topic, strlen(o->topic));
		snprintf(cause, sizeof(cause), "%" PRId32 "@%" PRId64,
		    o->partition, o->offset);
		hash_bytes(&st, cause, strlen(cause));
	}
	hex64(id, mix64(st.h[0]));
	hex64(id + 16, mix64(st.h[1]));
	id[32] = '\0';
}

/*
 * The alert text is written straight into one buffer: alerts are made on
 * the hot path (a JSON tree per alert cost more than the rest of the
 * event's fold), and their shape is fixed. Strings are escaped as JSON
 * requires; event text is valid UTF-8 already (event.c checks it).
 */
static void
put(struct alert_text *t, const char *s, size_t n)
{
	char	*grown;

	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t	cap = t->cap ? t->cap : 512;

		while (t->len + n + 1 > cap)
			cap *= 2;
		if ((grown = realloc(t->p, cap)) == NULL) {
			t->failed = 1;
			return;
		}
		t->p = grown;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void
put_raw(struct alert_text *t, const char *s)
{
	put(t, s, strlen(s));
}

static void
put_string(struct alert_text *t, const char *s)
{
	static const char	 hex[] = "0123456789abcdef";
	const char		*run = s;
	char			 esc[7];

	put(t, "\"", 1);
	for (; *s; s++) {
		unsigned char	c = (unsigned char)*s;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(t, run, (size_t)(s - run));
		run = s + 1;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(t, esc, 2);
		} else {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			put(t, esc, 6);
		}
	}
	put(t, run, (size_t)(s - run));
	put(t, "\"", 1);
}

/* a string, or null for NULL or "" */
static void
put_value(struct alert_text *t, const char *value)
{
	if (value == NULL || *value == '\0')
		put(t, "null", 4);
	else
		put_string(t, value);
}

/* ,"name":value */
static void
put_field(struct alert_text *t, const char *name, const char *value)
{
	put(t, ",\"", 2);
	put_raw(t, name);
	put(t, "\":", 2);
	put_value(t, value);
}

/* ,"reasons":["a","b"] from "a; b" */
static void
put_reasons(struct alert_text *t, const char *reasons)
{
	char		 one[CHURN_REASONS_MAX];
	const char	*sep;
	size_t		 n;
	int		 first = 1;

	put_raw(t, ",\"reasons\":[");
	while (*reasons) {
		sep = strstr(reasons, "; ");
		n = sep ? (size_t)(sep - reasons) : strlen(reasons);
		if (n >= sizeof(one))
			n = sizeof(one) - 1;
		memcpy(one, reasons, n);
		one[n] = '\0';
		if (!first)
			put(t, ",", 1);
		put_string(t, one);
		first = 0;
		reasons = sep ? sep + 2 : "";
	}
	put(t, "]", 1);
}

int
alert_encode(const struct journey_model *m, const struct journey_change *c,
    const struct alert_origin *o, const char id[ALERT_ID_LEN],
    struct alert_text *t)
{
	const struct event	*ev = o->event;
	char			 at[TIMESTAMP_ISO_LEN], num[64];

	t->len = 0;
	t->failed = 0;
	timestamp_format_iso8601(c->at_ms, at);
	put_raw(t, "{\"alert_id\":");
	put_string(t, id);
	put_field(t, "type", alert_type(c->kind));
	put_field(t, "customer_id", o->customer_id);
	put_field(t, "at", at);
	switch (c->kind) {
	case JOURNEY_CHANGE_STAGE:
		put_field(t, "from", c->from == JOURNEY_NO_STAGE ? NULL :
		    m->stage[c->from]);
		put_field(t, "to", m->stage[c->to]);
		break;
	case JOURNEY_CHANGE_RISK:
		put_field(t, "level", churn_level_name(c->to));
		put_field(t, "previous", churn_level_name(c->from));
		/* FALLTHROUGH */
	case JOURNEY_CHANGE_CHURNED:
		snprintf(num, sizeof(num), ",\"score\":%.3f", c->score);
		put_raw(t, num);
		put_reasons(t, c->reasons);
		/* FALLTHROUGH */
	case JOURNEY_CHANGE_REACTIVATED:
		put_field(t, "stage", m->stage[c->stage]);
		put_field(t, "cause", c->deadline_ms >= 0 ? "inactivity" :
		    "event");
		break;
	}
	if (c->deadline_ms < 0) {
		put_raw(t, ",\"event\":{\"id\":");
		put_value(t, ev->event_id);
		put_field(t, "type", ev->type);
		put_field(t, "channel", ev->channel);
		put_raw(t, "},\"source\":{\"topic\":");
		put_string(t, o->topic);
		snprintf(num, sizeof(num), ",\"partition\":%d,\"offset\":%lld}",
		    (int)o->partition, (long long)o->offset);
		put_raw(t, num);
	}
	put(t, "}", 1);
	return t->failed ? -1 : 0;
}

void
alert_text_free(struct alert_text *t)
{
	free(t->p);
	memset(t, 0, sizeof(*t));
}
