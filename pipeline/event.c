/*
 * event.c: parsing and validation of touchpoint events (JSON, one per
 * Kafka message). Everything that could later corrupt a Redis key, a
 * journey or an alert is refused here with a reason fit for the
 * dead-letter topic; nothing downstream re-validates.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "json_text.h"
#include "timestamp.h"

int
event_text_utf8(const char *s, size_t len)
{
	size_t	n;

	for (size_t i = 0; i < len; i += n)
		if ((n = json_text_utf8_sequence((const unsigned char *)s + i,
		    len - i)) == 0)
			return 0;
	return 1;
}

/*
 * C0 and C1 (U+0080-U+009F: CSI, OSC, NEL..., which some terminals obey)
 * and DEL. In valid UTF-8 a 0xc2 byte leads a two-byte character.
 */
int
event_text_has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < len &&
		    (unsigned char)s[i + 1] < 0xa0))
			return 1;
	}
	return 0;
}

static int
length_check(const char *what, size_t len, size_t max,
    char reason[EVENT_REASON_MAX])
{
	if (len == 0) {
		snprintf(reason, EVENT_REASON_MAX, "%s is empty", what);
		return -1;
	}
	if (len > max) {
		snprintf(reason, EVENT_REASON_MAX,
		    "%s is %zu bytes, more than %zu", what, len, max);
		return -1;
	}
	return 0;
}

/*
 * Names end up in Redis field names and JSON alerts, and on operators'
 * terminals (journeyctl): printable text only. Braces are refused in
 * customer ids so an id can never close or open the {hash tag} of its
 * key. The text is valid UTF-8 by now.
 */
static int
chars_check(const char *what, const char *s, size_t len, int braces_allowed,
    char reason[EVENT_REASON_MAX])
{
	if (event_text_has_control(s, len)) {
		snprintf(reason, EVENT_REASON_MAX,
		    "%s contains a control character", what);
		return -1;
	}
	if (!braces_allowed && (memchr(s, '{', len) != NULL ||
	    memchr(s, '}', len) != NULL)) {
		snprintf(reason, EVENT_REASON_MAX, "%s contains a brace", what);
		return -1;
	}
	return 0;
}

/* Text from outside JSON (a message key): its UTF-8 is not checked yet. */
static int
text_check(const char *what, const char *s, size_t len, size_t max,
    int braces_allowed, char reason[EVENT_REASON_MAX])
{
	if (length_check(what, len, max, reason) == -1)
		return -1;
	if (!event_text_utf8(s, len)) {
		snprintf(reason, EVENT_REASON_MAX, "%s is not valid UTF-8",
		    what);
		return -1;
	}
	return chars_check(what, s, len, braces_allowed, reason);
}

int
event_customer_id_check(const char *s, size_t len,
    char reason[EVENT_REASON_MAX])
{
	return text_check("customer_id", s, len, EVENT_CUSTOMER_MAX, 0,
	    reason);
}

/* The members of an event, in the order event_parse asks for them. */
enum member {
	M_CUSTOMER,
	M_TYPE,
	M_CHANNEL,
	M_SEGMENT,
	M_EVENT_ID,
	M_TS,
	M_SENTIMENT,
	M_VALUE,
	M_PROPERTIES,
	M_COUNT
};

static const char *const member_name[M_COUNT] = {
	"customer_id", "type", "channel", "segment", "event_id", "ts",
	"sentiment", "value", "properties",
};

static int
absent(const struct json_text_value *v)
{
	return v->type == JSON_TEXT_ABSENT || v->type == JSON_TEXT_NULL;
}

/*
 * Decodes string v into dst (room for max + 1) and checks it as text;
 * json_text has checked its UTF-8 already.
 */
static int
text_value(const char *what, const struct json_text_value *v, char *dst,
    size_t max, int braces_allowed, char reason[EVENT_REASON_MAX])
{
	if (length_check(what, v->size, max, reason) == -1)
		return -1;
	json_text_string(v, dst);
	dst[v->size] = '\0';
	return chars_check(what, dst, v->size, braces_allowed, reason);
}

/* Copies an optional string member; absent or null leaves dst empty. */
static int
string_member(const struct json_text_member *m, char *dst, size_t max,
    char reason[EVENT_REASON_MAX])
{
	dst[0] = '\0';
	if (absent(&m->value))
		return 0;
	if (m->value.type != JSON_TEXT_STRING) {
		snprintf(reason, EVENT_REASON_MAX, "%s must be a string",
		    m->name);
		return -1;
	}
	return text_value(m->name, &m->value, dst, max, 1, reason);
}

static int
customer_member(const struct json_text_value *v, const void *key,
    size_t keylen, struct event *ev, char reason[EVENT_REASON_MAX])
{
	size_t	len;

	if (absent(v)) {
		if (key == NULL || keylen == 0) {
			snprintf(reason, EVENT_REASON_MAX,
			    "no customer_id and no message key");
			return -1;
		}
		if (event_customer_id_check(key, keylen, reason) == -1)
			return -1;
		memcpy(ev->customer_id, key, keylen);
		ev->customer_id[keylen] = '\0';
		return 0;
	}
	if (v->type == JSON_TEXT_STRING)
		return text_value("customer_id", v, ev->customer_id,
		    EVENT_CUSTOMER_MAX, 0, reason);
	if (v->type != JSON_TEXT_INTEGER) {
		snprintf(reason, EVENT_REASON_MAX,
		    "customer_id must be a string or an integer");
		return -1;
	}
	len = (size_t)snprintf(ev->customer_id, sizeof(ev->customer_id),
	    "%" PRId64, v->integer);
	return event_customer_id_check(ev->customer_id, len, reason);
}

static int
time_member(const struct json_text_value *v, int64_t kafka_ts_ms,
    struct event *ev, char reason[EVENT_REASON_MAX])
{
	char		 inline_iso[TIMESTAMP_ISO_LEN + 16], *decoded = inline_iso;
	const char	*what = "ts";
	int		 parsed;

	if (absent(v)) {
		if (kafka_ts_ms < 0) {
			snprintf(reason, EVENT_REASON_MAX,
			    "no ts and no message timestamp");
			return -1;
		}
		/* a producer sets it as it likes: checked like a ts */
		ev->ts_ms = kafka_ts_ms;
		what = "the message timestamp (no ts)";
	} else if (v->type == JSON_TEXT_STRING) {
		/* escapes in a time are odd but valid JSON: decode them */
		if (!v->escaped)
			parsed = timestamp_parse_iso8601(v->text, v->size,
			    &ev->ts_ms);
		else {
			if (v->size > sizeof(inline_iso) &&
			    (decoded = malloc(v->size)) == NULL) {
				snprintf(reason, EVENT_REASON_MAX,
				    "out of memory");
				return -1;
			}
			json_text_string(v, decoded);
			parsed = timestamp_parse_iso8601(decoded, v->size,
			    &ev->ts_ms);
			if (decoded != inline_iso)
				free(decoded);
		}
		if (parsed == -1) {
			snprintf(reason, EVENT_REASON_MAX,
			    "ts is not an ISO-8601 time");
			return -1;
		}
	} else if (v->type == JSON_TEXT_INTEGER || v->type == JSON_TEXT_REAL) {
		if (!isfinite(v->number) || v->number < -1e15 ||
		    v->number > 1e15) {
			snprintf(reason, EVENT_REASON_MAX,
			    "ts is out of range");
			return -1;
		}
		/* down, so that -0.5 is before 1970 too */
		ev->ts_ms = (int64_t)floor(v->number);
	} else {
		snprintf(reason, EVENT_REASON_MAX,
		    "ts must be an ISO-8601 string or epoch milliseconds");
		return -1;
	}
	if (ev->ts_ms < 0) {
		snprintf(reason, EVENT_REASON_MAX, "%s is before 1970", what);
		return -1;
	}
	if (ev->ts_ms > TIMESTAMP_MAX_MS) {
		snprintf(reason, EVENT_REASON_MAX, "%s is after year 9999",
		    what);
		return -1;
	}
	return 0;
}

/* 1 and the number in *out when there is one, 0 when absent or null. */
static int
number_member(const struct json_text_member *m, double lo, double hi,
    double *out, char reason[EVENT_REASON_MAX])
{
	const struct json_text_value	*v = &m->value;

	if (absent(v))
		return 0;
	if ((v->type != JSON_TEXT_INTEGER && v->type != JSON_TEXT_REAL) ||
	    !isfinite(v->number) || v->number < lo || v->number > hi) {
		snprintf(reason, EVENT_REASON_MAX,
		    "%s must be a number in [%g, %g]", m->name, lo, hi);
		return -1;
	}
	*out = v->number;
	return 1;
}

int
event_parse(const void *payload, size_t len, const void *key, size_t keylen,
    int64_t kafka_ts_ms, struct event *ev, char reason[EVENT_REASON_MAX])
{
	struct json_text_member		 m[M_COUNT];
	struct json_text_error		 err;
	const struct json_text_value	*props;
	int				 r;

	memset(ev, 0, sizeof(*ev));
	if (payload == NULL || len == 0) {
		snprintf(reason, EVENT_REASON_MAX, "empty message");
		return -1;
	}
	for (int i = 0; i < M_COUNT; i++)
		m[i].name = member_name[i];
	r = json_text_object(payload, len, m, M_COUNT, &err);
	if (r == -1) {
		snprintf(reason, EVENT_REASON_MAX,
		    "invalid JSON at byte %zu: %s", err.position, err.text);
		return -1;
	}
	if (r == 1) {
		snprintf(reason, EVENT_REASON_MAX, "event is not a JSON object");
		return -1;
	}
	if (customer_member(&m[M_CUSTOMER].value, key, keylen, ev,
	    reason) == -1)
		return -1;
	if (m[M_TYPE].value.type == JSON_TEXT_ABSENT) {
		snprintf(reason, EVENT_REASON_MAX, "no type");
		return -1;
	}
	if (string_member(&m[M_TYPE], ev->type, EVENT_NAME_MAX, reason) == -1)
		return -1;
	if (ev->type[0] == '\0') {
		snprintf(reason, EVENT_REASON_MAX, "no type");
		return -1;
	}
	if (string_member(&m[M_CHANNEL], ev->channel, EVENT_NAME_MAX,
	    reason) == -1 ||
	    string_member(&m[M_SEGMENT], ev->segment, EVENT_NAME_MAX,
	    reason) == -1 ||
	    string_member(&m[M_EVENT_ID], ev->event_id, EVENT_ID_MAX,
	    reason) == -1)
		return -1;
	if (time_member(&m[M_TS].value, kafka_ts_ms, ev, reason) == -1)
		return -1;
	if ((r = number_member(&m[M_SENTIMENT], -1, 1, &ev->sentiment,
	    reason)) == -1)
		return -1;
	ev->has_sentiment = r;
	if ((r = number_member(&m[M_VALUE], -1e15, 1e15, &ev->value,
	    reason)) == -1)
		return -1;
	ev->has_value = r;
	props = &m[M_PROPERTIES].value;
	if (!absent(props)) {
		if (props->type != JSON_TEXT_OBJECT) {
			snprintf(reason, EVENT_REASON_MAX,
			    "properties must be an object");
			return -1;
		}
		ev->properties = props->text;
		ev->properties_len = props->len;
	}
	return 0;
}
