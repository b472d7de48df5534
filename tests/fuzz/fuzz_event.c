/*
 * fuzz_event.c: libFuzzer target for event_parse (pipeline/event.c).
 * Input: byte 0 picks the key length (its low 6 bits; 224 more with bit 7
 * set, around the 256 bytes a customer id may have; bit 6 set means the
 * message has no Kafka timestamp), then the key, then the payload. Key and
 * payload get buffers of their exact size so ASan sees any over-read.
 * Checks what the rest of journeyd relies on without re-validating: an
 * accepted event has a customer id fit for a Redis hash tag, a type, names
 * of UTF-8 without control characters (C0, DEL or C1), a time in
 * 1970-9999 that formats and parses
 * back, numbers in range; a refused one has a one-line reason (no control
 * characters: it becomes a Kafka header and a log line). And json_text, the
 * JSON reader under event_parse, refuses exactly what jansson refuses.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event.h"
#include "json_text.h"
#include "timestamp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_event: %s:%d: " \
    "check failed: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

static void
check_name(const char *s, size_t max, int braces_allowed)
{
	size_t	len = strnlen(s, max + 1);

	CHECK(len >= 1 && len <= max);
	for (size_t i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)s[i];

		CHECK(c >= 0x20 && c != 0x7f);
		CHECK(braces_allowed || (c != '{' && c != '}'));
	}
	CHECK(event_text_utf8(s, len));
	CHECK(!event_text_has_control(s, len));
}

static void
check_accepted(const struct event *ev)
{
	char	iso[TIMESTAMP_ISO_LEN];
	int64_t	back;

	check_name(ev->customer_id, EVENT_CUSTOMER_MAX, 0);
	check_name(ev->type, EVENT_NAME_MAX, 1);
	if (ev->channel[0] != '\0')
		check_name(ev->channel, EVENT_NAME_MAX, 1);
	if (ev->segment[0] != '\0')
		check_name(ev->segment, EVENT_NAME_MAX, 1);
	if (ev->event_id[0] != '\0')
		check_name(ev->event_id, EVENT_ID_MAX, 1);
	CHECK(ev->ts_ms >= 0 && ev->ts_ms <= TIMESTAMP_MAX_MS);
	timestamp_format_iso8601(ev->ts_ms, iso);
	CHECK(strlen(iso) == TIMESTAMP_ISO_LEN - 1);
	CHECK(timestamp_parse_iso8601(iso, strlen(iso), &back) == 0);
	CHECK(back == ev->ts_ms);
	CHECK(!ev->has_sentiment || (ev->sentiment >= -1 && ev->sentiment <= 1));
	CHECK(!ev->has_value || (isfinite(ev->value) &&
	    fabs(ev->value) <= 1e15));
	CHECK(ev->properties == NULL ||
	    json_text_object(ev->properties, ev->properties_len, NULL, 0,
	    NULL) == 0);
}

/*
 * json_text takes as an object what jansson takes as one, and nothing
 * else; text with a NUL byte it refuses. (jansson skips a NUL byte right
 * after a number or a literal: it takes {"a":1<NUL>}.)
 */
static void
check_against_jansson(const uint8_t *payload, size_t len)
{
	json_error_t	 jerr;
	json_t		*j;
	int		 r;

	j = json_loadb((const char *)payload, len,
	    JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	r = json_text_object((const char *)payload, len, NULL, 0, NULL);
	if (len > 0 && memchr(payload, '\0', len) != NULL)
		CHECK(r == -1);
	else
		CHECK((j != NULL && json_is_object(j)) == (r == 0));
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event	 ev;
	char		 reason[EVENT_REASON_MAX];
	size_t		 keylen, len;
	uint8_t		*key, *payload;
	int64_t		 kafka_ts;

	if (size == 0)
		return 0;
	keylen = (data[0] & 0x3f) + (data[0] & 0x80 ? 224 : 0);
	if (keylen > size - 1)
		keylen = size - 1;
	len = size - 1 - keylen;
	kafka_ts = data[0] & 0x40 ? -1 : INT64_C(1700000000000);
	key = keylen ? malloc(keylen) : NULL;
	payload = len ? malloc(len) : NULL;
	if ((keylen && key == NULL) || (len && payload == NULL))
		abort();
	if (keylen)
		memcpy(key, data + 1, keylen);
	if (len)
		memcpy(payload, data + 1 + keylen, len);

	check_against_jansson(payload, len);
	memset(reason, 0x55, sizeof(reason));
	if (event_parse(payload, len, key, keylen, kafka_ts, &ev,
	    reason) == 0) {
		check_accepted(&ev);
	} else {
		size_t	rlen = strnlen(reason, sizeof(reason));

		CHECK(rlen > 0 && rlen < sizeof(reason));
		for (size_t i = 0; i < rlen; i++)
			CHECK((unsigned char)reason[i] >= 0x20 &&
			    reason[i] != 0x7f);
	}
	free(key);
	free(payload);
	return 0;
}
