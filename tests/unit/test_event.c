/*
 * test_event.c: event parsing and every reason an event is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"

static int
parse(const char *json, const char *key, struct event *ev,
    char reason[EVENT_REASON_MAX])
{
	return event_parse(json, strlen(json), key, key ? strlen(key) : 0,
	    1000, ev, reason);
}

static void
test_full_event(void **state)
{
	struct event	ev;
	char		reason[EVENT_REASON_MAX];

	(void)state;
	assert_int_equal(parse("{\"customer_id\":\"cust-1\",\"type\":\"purchase\","
	    "\"channel\":\"web\",\"ts\":\"2011-12-09T12:50:00Z\",\"event_id\":"
	    "\"e1\",\"sentiment\":-0.5,\"segment\":\"25-34\",\"value\":19.9,"
	    "\"properties\":{\"nps\":{\"score\":9}}}", NULL, &ev, reason), 0);
	assert_string_equal(ev.customer_id, "cust-1");
	assert_string_equal(ev.type, "purchase");
	assert_string_equal(ev.channel, "web");
	assert_string_equal(ev.event_id, "e1");
	assert_string_equal(ev.segment, "25-34");
	assert_int_equal(ev.ts_ms, INT64_C(1323435000000));
	assert_true(ev.has_sentiment);
	assert_true(ev.sentiment == -0.5);
	assert_true(ev.has_value);
	/* the properties object as written, inside the payload */
	assert_int_equal(ev.properties_len, strlen("{\"nps\":{\"score\":9}}"));
	assert_memory_equal(ev.properties, "{\"nps\":{\"score\":9}}",
	    ev.properties_len);
}

static void
test_defaults_from_message(void **state)
{
	struct event	ev;
	char		reason[EVENT_REASON_MAX];

	(void)state;
	/* customer from the key, time from the Kafka timestamp */
	assert_int_equal(parse("{\"type\":\"login\"}", "k-9", &ev, reason), 0);
	assert_string_equal(ev.customer_id, "k-9");
	assert_int_equal(ev.ts_ms, 1000);
	assert_string_equal(ev.channel, "");
	assert_false(ev.has_sentiment);
	assert_null(ev.properties);
	/* numeric ids and epoch-ms times */
	assert_int_equal(parse("{\"customer_id\":17850,\"type\":\"x\",\"ts\":"
	    "1323435000000}", NULL, &ev, reason), 0);
	assert_string_equal(ev.customer_id, "17850");
	assert_int_equal(ev.ts_ms, INT64_C(1323435000000));
	/* escapes are decoded, in names and in times */
	assert_int_equal(parse("{\"customer_id\":\"Zo\\u00eb\",\"type\":"
	    "\"a\\/b\",\"ts\":\"2011-12-09T12:50:00\\u005a\"}", NULL, &ev,
	    reason), 0);
	assert_string_equal(ev.customer_id, "Zo\xc3\xab");
	assert_string_equal(ev.type, "a/b");
	assert_int_equal(ev.ts_ms, INT64_C(1323435000000));
	/* null is absent */
	assert_int_equal(parse("{\"customer_id\":null,\"type\":\"x\","
	    "\"channel\":null,\"properties\":null}", "k", &ev, reason), 0);
	assert_string_equal(ev.customer_id, "k");
	assert_string_equal(ev.channel, "");
	assert_null(ev.properties);
}

static void
test_refusals(void **state)
{
	static const struct {
		const char	*json;
		const char	*key;
		const char	*reason;
	} cases[] = {
		{ "{\"type\":", NULL, "invalid JSON" },
		{ "[1,2]", NULL, "not a JSON object" },
		{ "{\"type\":\"x\"}", NULL, "no customer_id and no message key" },
		{ "{\"customer_id\":\"c\"}", NULL, "no type" },
		{ "{\"customer_id\":\"c\",\"type\":\"\"}", NULL, "type is empty" },
		{ "{\"customer_id\":\"c\",\"type\":7}", NULL,
		    "type must be a string" },
		{ "{\"customer_id\":[1],\"type\":\"x\"}", NULL,
		    "customer_id must be a string or an integer" },
		{ "{\"customer_id\":\"a}b\",\"type\":\"x\"}", NULL,
		    "customer_id contains a brace" },
		{ "{\"customer_id\":\"a{b\",\"type\":\"x\"}", NULL,
		    "customer_id contains a brace" },
		{ "{\"customer_id\":\"a\\nb\",\"type\":\"x\"}", NULL,
		    "customer_id contains a control character" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"ts\":\"soon\"}", NULL,
		    "ts is not an ISO-8601 time" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"ts\":-5}", NULL,
		    "ts is before 1970" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"ts\":-0.5}", NULL,
		    "ts is before 1970" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"ts\":\"1960-01-01\"}",
		    NULL, "ts is before 1970" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"ts\":1e300}", NULL,
		    "ts is out of range" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"sentiment\":2}", NULL,
		    "sentiment must be a number in [-1, 1]" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"value\":\"9\"}", NULL,
		    "value must be a number" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"properties\":3}", NULL,
		    "properties must be an object" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"type\":\"y\"}", NULL,
		    "invalid JSON at byte 30: duplicate key" },
		{ "5", NULL, "event is not a JSON object" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\"} {}", NULL,
		    "invalid JSON at byte 31: end of text expected" },
		{ "{\"customer_id\":\"c\",\"type\":\"\\u0063\",\"ts\":\"x\"}",
		    NULL, "ts is not an ISO-8601 time" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"channel\":\"\\t\"}",
		    NULL, "channel contains a control character" },
		{ "{\"customer_id\":1.5,\"type\":\"x\"}", NULL,
		    "customer_id must be a string or an integer" },
		{ "{\"customer_id\":\"c\\u0000d\",\"type\":\"x\"}", NULL,
		    "invalid JSON" },
		{ "{\"type\":\"x\"}", "bad\001key",
		    "customer_id contains a control character" },
		/* C1 controls (CSI, NEL), escaped or raw, in a key too */
		{ "{\"customer_id\":\"c\",\"type\":\"x\\u009b2J\"}", NULL,
		    "type contains a control character" },
		{ "{\"customer_id\":\"c\",\"type\":\"x\",\"event_id\":"
		    "\"e\xc2\x85\"}", NULL,
		    "event_id contains a control character" },
		{ "{\"type\":\"x\"}", "k\xc2\x9d",
		    "customer_id contains a control character" },
		{ "{\"customer_id\":\"h\",\"type\":\"\\\n\"}", NULL,
		    "invalid JSON at byte 27: invalid escape" },
	};
	struct event	ev;
	char		reason[EVENT_REASON_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		reason[0] = '\0';
		assert_int_equal(parse(cases[i].json, cases[i].key, &ev,
		    reason), -1);
		if (strstr(reason, cases[i].reason) == NULL)
			fail_msg("case %zu: reason '%s', want '%s'", i, reason,
			    cases[i].reason);
		assert_null(ev.properties);
	}
}

static void
test_limits(void **state)
{
	char		json[2048], id[EVENT_CUSTOMER_MAX + 2], reason[EVENT_REASON_MAX];
	struct event	ev;
	const char	bad_utf8[] = "{\"type\":\"x\"}";
	const char	no_ts[] = "{\"customer_id\":\"c\",\"type\":\"x\"}";

	(void)state;
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	snprintf(json, sizeof(json), "{\"customer_id\":\"%s\",\"type\":\"x\"}",
	    id);
	assert_int_equal(parse(json, NULL, &ev, reason), -1);
	assert_non_null(strstr(reason, "more than 256"));
	id[EVENT_CUSTOMER_MAX] = '\0';
	snprintf(json, sizeof(json), "{\"customer_id\":\"%s\",\"type\":\"x\"}",
	    id);
	assert_int_equal(parse(json, NULL, &ev, reason), 0);
	/* without a ts, the message timestamp is held to the same years */
	assert_int_equal(event_parse(no_ts, strlen(no_ts), NULL, 0, INT64_MAX,
	    &ev, reason), -1);
	assert_string_equal(reason,
	    "the message timestamp (no ts) is after year 9999");
	assert_int_equal(event_parse(no_ts, strlen(no_ts), NULL, 0,
	    INT64_C(1323435000000), &ev, reason), 0);
	assert_int_equal(ev.ts_ms, INT64_C(1323435000000));
	/* invalid UTF-8 in the key (the JSON text is checked by json_text) */
	assert_int_equal(event_parse(bad_utf8, strlen(bad_utf8), "\xc3\x28", 2,
	    0, &ev, reason), -1);
	assert_string_equal(reason, "customer_id is not valid UTF-8");
	assert_int_equal(event_parse("{\"customer_id\":\"\xff\",\"type\":\"x\"}",
	    33, NULL, 0, 0, &ev, reason), -1);
	assert_string_equal(reason, "invalid JSON at byte 16: invalid UTF-8");
	/* a long escaped time is decoded on the heap, and still checked */
	snprintf(json, sizeof(json), "{\"customer_id\":\"c\",\"type\":\"x\","
	    "\"ts\":\"2011-12-09T12:50:00.%0200d\\u005a\"}", 5);
	assert_int_equal(parse(json, NULL, &ev, reason), 0);
	assert_int_equal(ev.ts_ms, INT64_C(1323435000000));
	/* spaces and non-ASCII letters are fine in ids */
	assert_int_equal(parse("{\"customer_id\":\"Zoë Smith\",\"type\":\"x\"}",
	    NULL, &ev, reason), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_event),
		cmocka_unit_test(test_defaults_from_message),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
