/*
 * event.c: parsing and validation of touchpoint events (JSON, one per
 * Kafka message). Everything that could later corrupt a Redis key, a
 * journey or an alert is refused here with a reason fit for the
 * dead-letter topic; nothing downstream re-validates.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "timestamp.h"

static int
utf8_valid(const unsigned char *s, size_t len)
{
	size_t	i = 0;

	while (i < len) {
		unsigned char	c = s[i];
		size_t		n;
		uint32_t	cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/*
 * Names end up in Redis field names and JSON alerts: printable text only.
 * Braces are refused in customer ids so an id can never close or open the
 * {hash tag} of its key.
 */
static int
text_check(const char *what, const char *s, size_t len, size_t max,
    int braces_allowed, char reason[EVENT_REASON_MAX])
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
	if (!utf8_valid((const unsigned char *)s, len)) {
		snprintf(reason, EVENT_REASON_MAX, "%s is not valid UTF-8",
		    what);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			snprintf(reason, EVENT_REASON_MAX,
			    "%s contains a control character", what);
			return -1;
		}
		if (!braces_allowed && (c == '{' || c == '}')) {
			snprintf(reason, EVENT_REASON_MAX,
			    "%s contains a brace", what);
			return -1;
		}
	}
	return 0;
}

int
event_customer_id_check(const char *s, size_t len,
    char reason[EVENT_REASON_MAX])
{
	return text_check("customer_id", s, len, EVENT_CUSTOMER_MAX, 0,
	    reason);
}

/* Copies an optional string field; absent or null leaves dst empty. */
static int
string_field(json_t *root, const char *name, char *dst, size_t max,
    char reason[EVENT_REASON_MAX])
{
	json_t	*v = json_object_get(root, name);
	size_t	 len;

	dst[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(reason, EVENT_REASON_MAX, "%s must be a string", name);
		return -1;
	}
	len = json_string_length(v);
	if (text_check(name, json_string_value(v), len, max, 1, reason) == -1)
		return -1;
	memcpy(dst, json_string_value(v), len + 1);
	return 0;
}

static int
customer_field(json_t *root, const void *key, size_t keylen,
    struct event *ev, char reason[EVENT_REASON_MAX])
{
	json_t		*v = json_object_get(root, "customer_id");
	const char	*id;
	char		 num[32];
	size_t		 len;

	if (v == NULL || json_is_null(v)) {
		if (key == NULL || keylen == 0) {
			snprintf(reason, EVENT_REASON_MAX,
			    "no customer_id and no message key");
			return -1;
		}
		id = key;
		len = keylen;
	} else if (json_is_string(v)) {
		id = json_string_value(v);
		len = json_string_length(v);
	} else if (json_is_integer(v)) {
		len = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		id = num;
	} else {
		snprintf(reason, EVENT_REASON_MAX,
		    "customer_id must be a string or an integer");
		return -1;
	}
	if (event_customer_id_check(id, len, reason) == -1)
		return -1;
	memcpy(ev->customer_id, id, len);
	ev->customer_id[len] = '\0';
	return 0;
}

static int
time_field(json_t *root, int64_t kafka_ts_ms, struct event *ev,
    char reason[EVENT_REASON_MAX])
{
	json_t	*v = json_object_get(root, "ts");
	double	 d;

	if (v == NULL || json_is_null(v)) {
		if (kafka_ts_ms < 0) {
			snprintf(reason, EVENT_REASON_MAX,
			    "no ts and no message timestamp");
			return -1;
		}
		ev->ts_ms = kafka_ts_ms;
		return 0;
	}
	if (json_is_string(v)) {
		if (timestamp_parse_iso8601(json_string_value(v),
		    json_string_length(v), &ev->ts_ms) == -1) {
			snprintf(reason, EVENT_REASON_MAX,
			    "ts is not an ISO-8601 time");
			return -1;
		}
	} else if (json_is_number(v)) {
		d = json_number_value(v);
		if (!isfinite(d) || d < -1e15 || d > 1e15) {
			snprintf(reason, EVENT_REASON_MAX,
			    "ts is out of range");
			return -1;
		}
		ev->ts_ms = (int64_t)d;
	} else {
		snprintf(reason, EVENT_REASON_MAX,
		    "ts must be an ISO-8601 string or epoch milliseconds");
		return -1;
	}
	if (ev->ts_ms < 0) {
		snprintf(reason, EVENT_REASON_MAX, "ts is before 1970");
		return -1;
	}
	if (ev->ts_ms > TIMESTAMP_MAX_MS) {
		snprintf(reason, EVENT_REASON_MAX, "ts is after year 9999");
		return -1;
	}
	return 0;
}

static int
number_field(json_t *root, const char *name, double lo, double hi,
    double *out, char reason[EVENT_REASON_MAX])
{
	json_t	*v = json_object_get(root, name);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
	    json_number_value(v) < lo || json_number_value(v) > hi) {
		snprintf(reason, EVENT_REASON_MAX,
		    "%s must be a number in [%g, %g]", name, lo, hi);
		return -1;
	}
	*out = json_number_value(v);
	return 1;
}

int
event_parse(const void *payload, size_t len, const void *key, size_t keylen,
    int64_t kafka_ts_ms, struct event *ev, char reason[EVENT_REASON_MAX])
{
	json_t		*root = NULL, *props;
	json_error_t	 jerr;
	int		 r, rv = -1;

	memset(ev, 0, sizeof(*ev));
	if (payload == NULL || len == 0) {
		snprintf(reason, EVENT_REASON_MAX, "empty message");
		goto done;
	}
	root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		/* jansson quotes the input: keep the reason one clean line */
		for (char *c = jerr.text; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		snprintf(reason, EVENT_REASON_MAX,
		    "invalid JSON at byte %d: %.100s", jerr.position,
		    jerr.text);
		goto done;
	}
	if (!json_is_object(root)) {
		snprintf(reason, EVENT_REASON_MAX, "event is not a JSON object");
		goto done;
	}
	if (customer_field(root, key, keylen, ev, reason) == -1)
		goto done;
	if (json_object_get(root, "type") == NULL) {
		snprintf(reason, EVENT_REASON_MAX, "no type");
		goto done;
	}
	if (string_field(root, "type", ev->type, EVENT_NAME_MAX, reason) == -1)
		goto done;
	if (ev->type[0] == '\0') {
		snprintf(reason, EVENT_REASON_MAX, "no type");
		goto done;
	}
	if (string_field(root, "channel", ev->channel, EVENT_NAME_MAX,
	    reason) == -1 ||
	    string_field(root, "segment", ev->segment, EVENT_NAME_MAX,
	    reason) == -1 ||
	    string_field(root, "event_id", ev->event_id, EVENT_ID_MAX,
	    reason) == -1)
		goto done;
	if (time_field(root, kafka_ts_ms, ev, reason) == -1)
		goto done;
	if ((r = number_field(root, "sentiment", -1, 1, &ev->sentiment,
	    reason)) == -1)
		goto done;
	ev->has_sentiment = r;
	if ((r = number_field(root, "value", -1e15, 1e15, &ev->value,
	    reason)) == -1)
		goto done;
	ev->has_value = r;
	props = json_object_get(root, "properties");
	if (props != NULL && !json_is_null(props)) {
		if (!json_is_object(props)) {
			snprintf(reason, EVENT_REASON_MAX,
			    "properties must be an object");
			goto done;
		}
		ev->properties = json_incref(props);
	}
	rv = 0;
done:
	json_decref(root);
	return rv;
}

void
event_release(struct event *ev)
{
	json_decref(ev->properties);
	ev->properties = NULL;
}
