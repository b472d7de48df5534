/*
 * test_json_text.c: the JSON reader under event_parse. Every document is
 * also given to jansson (json_loadb, JSON_REJECT_DUPLICATES), which the
 * reader replaced: both must take the same texts as objects. (Texts
 * with a NUL byte are checked on their own: jansson skips one right after
 * a number or a literal.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "json_text.h"

/* json_text_object's verdict on text, checked against jansson's */
static int
verdict(const char *text, size_t len, struct json_text_error *err)
{
	json_error_t	 jerr;
	json_t		*j;
	int		 r;

	r = json_text_object(text, len, NULL, 0, err);
	j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	    &jerr);
	if ((j != NULL && json_is_object(j)) != (r == 0))
		fail_msg("'%.60s': json_text says %d, jansson %s", text, r,
		    j != NULL ? "accepts" : jerr.text);
	json_decref(j);
	return r;
}

static void
test_accepted(void **state)
{
	static const char *const objects[] = {
		"{}",
		" \t\r\n{ \"a\" : [ 1 , -0 , 0.5 , -1.5e+3 , 2E-2 , true , "
		    "false , null , \"\" , { } , [ ] ] } \n",
		"{\"\":1}",
		"{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"}",
		"{\"int\":9223372036854775807,\"neg\":-9223372036854775808}",
		"{\"tiny\":1e-400,\"big\":1.7976931348623157e308}",
		"{\"utf8\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
		/* keys alike but not the same, in a big object too */
		"{\"a\":1,\"A\":2,\"a \":3,\"\\u0062\":4}",
		"{\"k01\":1,\"k02\":1,\"k03\":1,\"k04\":1,\"k05\":1,\"k06\":1,"
		    "\"k07\":1,\"k08\":1,\"k09\":1,\"k10\":1,\"k11\":1,\"k12\":1,"
		    "\"k13\":1,\"k14\":1,\"k15\":1,\"k16\":1,\"k17\":1,\"k18\":1}",
		/* the same key in different objects */
		"{\"a\":{\"a\":{\"a\":1}},\"b\":[{\"a\":1},{\"a\":2}]}",
	};
	static const char *const others[] = {
		"[]", "[1,{\"a\":2}]", "\"s\"", "5", "-0.0", "true", "null",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(objects) / sizeof(*objects); i++)
		assert_int_equal(verdict(objects[i], strlen(objects[i]), NULL),
		    0);
	for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++)
		assert_int_equal(verdict(others[i], strlen(others[i]), NULL),
		    1);
}

static void
test_refused(void **state)
{
	static const struct {
		const char	*text;
		size_t		 position;
		const char	*why;
	} cases[] = {
		{ "", 0, "unexpected end of text" },
		{ "  ", 2, "unexpected end of text" },
		{ "{\"a\":1", 6, "',' or '}' expected" },
		{ "{\"a\":1,}", 7, "object key expected" },
		{ "{a:1}", 1, "object key expected" },
		{ "{\"a\" 1}", 5, "':' expected" },
		{ "[1 2]", 3, "',' or ']' expected" },
		{ "[1,]", 3, "unexpected character" },
		{ "{\"a\":1}x", 7, "end of text expected" },
		{ "{\"a\":1}{}", 7, "end of text expected" },
		{ "{\"a\":tru}", 5, "invalid literal" },
		{ "{\"a\":nul}", 5, "invalid literal" },
		{ "{\"a\":True}", 5, "unexpected character" },
		{ "{\"a\":NaN}", 5, "unexpected character" },
		{ "{\"a\":01}", 6, "',' or '}' expected" },
		{ "{\"a\":-}", 6, "invalid number" },
		{ "{\"a\":1.}", 7, "invalid number" },
		{ "{\"a\":.5}", 5, "unexpected character" },
		{ "{\"a\":1e}", 7, "invalid number" },
		{ "{\"a\":+1}", 5, "unexpected character" },
		{ "{\"a\":9223372036854775808}", 5, "integer out of range" },
		{ "{\"a\":-9223372036854775809}", 5, "integer out of range" },
		{ "{\"a\":1e400}", 5, "real number overflow" },
		{ "{\"a\":-1e400}", 5, "real number overflow" },
		{ "{\"a\":\"x}", 8, "unterminated string" },
		{ "{\"a\":\"x\\", 7, "unterminated string" },
		{ "{\"a\":\"\t\"}", 6, "control character in a string" },
		{ "{\"a\":\"\\x\"}", 6, "invalid escape" },
		{ "{\"a\":\"\\u12\"}", 6, "invalid \\u escape" },
		{ "{\"a\":\"\\u12G4\"}", 6, "invalid \\u escape" },
		{ "{\"a\":\"\\u0000\"}", 6, "\\u0000 is not allowed" },
		{ "{\"a\":\"\\uD800\"}", 6, "lone surrogate in a \\u escape" },
		{ "{\"a\":\"\\uDC00\\uD800\"}", 6,
		    "lone surrogate in a \\u escape" },
		{ "{\"a\":\"\\uD800\\u0041\"}", 6,
		    "lone surrogate in a \\u escape" },
		{ "{\"a\":\"\xff\"}", 6, "invalid UTF-8" },
		{ "{\"a\":\"\xc0\xaf\"}", 6, "invalid UTF-8" },	/* overlong */
		{ "{\"a\":\"\xed\xa0\x80\"}", 6, "invalid UTF-8" },	/* U+D800 */
		{ "{\"a\":\"\xf4\x90\x80\x80\"}", 6, "invalid UTF-8" },
		{ "{\"a\":\"\xe2\x82\"}", 6, "invalid UTF-8" },	/* cut short */
		{ "{\"a\":1,\"a\":2}", 7, "duplicate key" },
		{ "{\"a\":1,\"\\u0061\":2}", 7, "duplicate key" },
		{ "{\"x\":{\"b\":1,\"b\":2}}", 12, "duplicate key" },
		/* past KEYS_SCANNED keys, the repeat is found at the end */
		{ "{\"k01\":1,\"k02\":1,\"k03\":1,\"k04\":1,\"k05\":1,\"k06\":1,"
		    "\"k07\":1,\"k08\":1,\"k09\":1,\"k10\":1,\"k11\":1,\"k12\":1,"
		    "\"k13\":1,\"k14\":1,\"k15\":1,\"k16\":1,\"k17\":1,"
		    "\"k\\u00301\":1}", 150, "duplicate key" },
		{ "\xef\xbb\xbf{}", 0, "unexpected character" },	/* a BOM */
	};
	struct json_text_error	err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(verdict(cases[i].text, strlen(cases[i].text),
		    &err), -1);
		if (err.position != cases[i].position ||
		    strcmp(err.text, cases[i].why) != 0)
			fail_msg("case %zu: %zu '%s', want %zu '%s'", i,
			    err.position, err.text, cases[i].position,
			    cases[i].why);
	}
	/* a NUL byte is refused, in strings and out of them */
	assert_int_equal(json_text_object("{\"a\":1}\0", 8, NULL, 0, &err),
	    -1);
	assert_string_equal(err.text, "end of text expected");
	assert_int_equal(json_text_object("{\"a\":1\0}", 8, NULL, 0, &err),
	    -1);
	assert_string_equal(err.text, "',' or '}' expected");
	assert_int_equal(json_text_object("{\"a\":\"\0\"}", 9, NULL, 0,
	    &err), -1);
	assert_string_equal(err.text, "control character in a string");
}

/* Values nested n deep: n - 1 arrays around a 0. */
static char *
nested(int n)
{
	char	*text = malloc(2 * (size_t)n + 1), *p = text;

	assert_non_null(text);
	for (int i = 1; i < n; i++)
		*p++ = '[';
	*p++ = '0';
	for (int i = 1; i < n; i++)
		*p++ = ']';
	*p = '\0';
	return text;
}

static void
test_depth(void **state)
{
	struct json_text_error	 err;
	char			*text;

	(void)state;
	text = nested(JSON_TEXT_DEPTH_MAX);
	assert_int_equal(verdict(text, strlen(text), &err), 1);
	free(text);
	text = nested(JSON_TEXT_DEPTH_MAX + 1);
	assert_int_equal(verdict(text, strlen(text), &err), -1);
	assert_int_equal(err.position, JSON_TEXT_DEPTH_MAX);
	assert_string_equal(err.text, "values nested too deep");
	free(text);
}

static void
test_members(void **state)
{
	const char	*text = "{\"s\":\"a\\u00e9\\n\\uD83D\\uDE00\",\"n\":-12,"
			    "\"r\":2.5e1,\"o\":{\"s\":1},\"t\":true,"
			    "\"\\u006Ei\":null,\"p\":\"plain\"}";
	struct json_text_member	m[] = {
		{ .name = "s" }, { .name = "n" }, { .name = "r" },
		{ .name = "o" }, { .name = "t" }, { .name = "ni" },
		{ .name = "p" }, { .name = "missing" },
	};
	char		decoded[32];

	(void)state;
	assert_int_equal(json_text_object(text, strlen(text), m, 8, NULL), 0);
	assert_int_equal(m[0].value.type, JSON_TEXT_STRING);
	assert_true(m[0].value.escaped);
	assert_int_equal(m[0].value.size, 1 + 2 + 1 + 4);
	json_text_string(&m[0].value, decoded);
	assert_memory_equal(decoded, "a\xc3\xa9\n\xf0\x9f\x98\x80", 8);
	assert_int_equal(m[1].value.type, JSON_TEXT_INTEGER);
	assert_int_equal(m[1].value.integer, -12);
	assert_true(m[1].value.number == -12);
	assert_int_equal(m[2].value.type, JSON_TEXT_REAL);
	assert_true(m[2].value.number == 25);
	/* an object's value is its text, braces included */
	assert_int_equal(m[3].value.type, JSON_TEXT_OBJECT);
	assert_int_equal(m[3].value.len, strlen("{\"s\":1}"));
	assert_memory_equal(m[3].value.text, "{\"s\":1}", m[3].value.len);
	assert_int_equal(m[4].value.type, JSON_TEXT_TRUE);
	assert_int_equal(m[5].value.type, JSON_TEXT_NULL);	/* key escaped */
	assert_int_equal(m[6].value.type, JSON_TEXT_STRING);
	assert_false(m[6].value.escaped);
	assert_int_equal(m[6].value.size, 5);
	json_text_string(&m[6].value, decoded);
	assert_memory_equal(decoded, "plain", 5);
	assert_int_equal(m[7].value.type, JSON_TEXT_ABSENT);
	/* a real longer than the stack copy converts all the same */
	text = "{\"r\":0.000000000000000000000000000000000000000000000000000000"
	    "000000000000000000000000000000000000000000000000001e100}";
	assert_int_equal(json_text_object(text, strlen(text), m + 2, 1, NULL),
	    0);
	assert_true(m[2].value.number == strtod(text + 5, NULL));
	assert_true(m[2].value.number > 0);
	/* not an object: nothing is filled in */
	assert_int_equal(json_text_object("[1]", 3, m, 1, NULL), 1);
	assert_int_equal(m[0].value.type, JSON_TEXT_ABSENT);
}

/* Many keys: the duplicate check sorts, and its key list grows. */
static void
test_many_keys(void **state)
{
	size_t	 n = 5000, cap = n * 16 + 16, len = 0;
	char	*text = malloc(cap);

	(void)state;
	assert_non_null(text);
	text[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s\"k%zu\":%zu",
		    i ? "," : "", (i * 7919) % n, i);
	text[len++] = '}';
	assert_int_equal(verdict(text, len, NULL), 0);
	/* the last key repeats the first */
	len--;
	len += (size_t)snprintf(text + len, cap - len, ",\"k0\":1}");
	assert_int_equal(verdict(text, len, NULL), -1);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_members),
		cmocka_unit_test(test_many_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
