/*
 * json_text.c: a strict JSON reader (RFC 8259) for event payloads. It
 * checks a whole document in one pass over the text without building a
 * tree, and hands back the top-level members the caller names as spans of
 * the text; strings are decoded only when asked for. It refuses what
 * jansson's json_loadb with JSON_REJECT_DUPLICATES refuses: invalid UTF-8,
 * \u0000 and lone surrogates, duplicate keys at any depth, integers beyond
 * int64, reals that overflow, values nested deeper than
 * JSON_TEXT_DEPTH_MAX. An event is read without allocating: only objects
 * with many keys and very long reals need the heap.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"

#define KEYS_INLINE	32	/* keys held without allocating */
#define KEYS_SCANNED	16	/* past this many keys, sort to find repeats */
#define NUMBER_INLINE	64	/* bytes of a real converted on the stack */

/* A key of an object being read, kept for the duplicate check. */
struct key {
	const unsigned char	*text;	/* inside its quotes */
	size_t			 len;
	size_t			 size;	/* decoded */
	int			 escaped;
};

struct scan {
	const unsigned char	*start, *p, *end;
	struct json_text_error	*err;
	/* the keys of every object being read, the innermost last */
	struct key		*keys;
	size_t			 nkeys, keys_cap;
	struct key		 inline_keys[KEYS_INLINE];
};

/* A validated string, decoded a byte at a time. */
struct cursor {
	const unsigned char	*p, *end;
	unsigned char		 pending[4];
	size_t			 npending, next;
};

static int	value(struct scan *, int, struct json_text_value *,
		    struct json_text_member *, size_t);

static int
fail(struct scan *s, const char *why)
{
	if (s->err != NULL) {
		s->err->position = (size_t)(s->p - s->start);
		strncpy(s->err->text, why, sizeof(s->err->text) - 1);
		s->err->text[sizeof(s->err->text) - 1] = '\0';
	}
	return -1;
}

static int
is_digit(const struct scan *s, const unsigned char *p)
{
	return p < s->end && *p >= '0' && *p <= '9';
}

static void
skip_space(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' ||
	    *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

size_t
json_text_utf8_sequence(const unsigned char *p, size_t avail)
{
	size_t		n;
	uint32_t	cp;

	if (avail == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (avail < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	/* overlong forms, surrogates and what lies past Unicode */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int
hex4(const unsigned char *p, uint32_t *out)
{
	uint32_t	v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char	c = p[i], lower = c | 0x20;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (lower >= 'a' && lower <= 'f')
			v |= (uint32_t)(lower - 'a' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/*
 * Decodes the escape after a backslash at p into out (*n bytes of UTF-8).
 * Returns the bytes of text it takes, or 0 with *why when it is invalid.
 */
static size_t
escape(const unsigned char *p, const unsigned char *end, unsigned char out[4],
    size_t *n, const char **why)
{
	static const char	from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char		*simple;
	uint32_t		 cp, low;
	size_t			 took = 5;

	*n = 1;
	if (p >= end) {
		*why = "unterminated string";
		return 0;
	}
	if (*p != 'u') {
		if (*p == '\0' || (simple = strchr(from, *p)) == NULL) {
			*why = "invalid escape";
			return 0;
		}
		out[0] = (unsigned char)to[simple - from];
		return 1;
	}
	if (end - p < 5 || hex4(p + 1, &cp) == -1) {
		*why = "invalid \\u escape";
		return 0;
	}
	if (cp == 0) {
		*why = "\\u0000 is not allowed";
		return 0;
	}
	if (cp >= 0xd800 && cp <= 0xdfff) {
		if (cp >= 0xdc00 || end - p < 11 || p[5] != '\\' ||
		    p[6] != 'u' || hex4(p + 7, &low) == -1 ||
		    low < 0xdc00 || low > 0xdfff) {
			*why = "lone surrogate in a \\u escape";
			return 0;
		}
		cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
		took = 11;
	}
	if (cp < 0x80)
		out[0] = (unsigned char)cp;
	else if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		*n = 2;
	} else if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		*n = 3;
	} else {
		out[0] = (unsigned char)(0xf0 | cp >> 18);
		out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (unsigned char)(0x80 | (cp & 0x3f));
		*n = 4;
	}
	return took;
}

/* The next decoded byte, or -1 at the end. */
static int
cursor_next(struct cursor *c)
{
	const char	*why;

	if (c->next < c->npending)
		return c->pending[c->next++];
	if (c->p >= c->end)
		return -1;
	if (*c->p != '\\')
		return *c->p++;
	c->p += 1 + escape(c->p + 1, c->end, c->pending, &c->npending, &why);
	c->next = 1;
	return c->pending[0];
}

/* Orders keys by their decoded bytes. */
static int
key_cmp(const struct key *a, const struct key *b)
{
	struct cursor	ca = { a->text, a->text + a->len, { 0 }, 0, 0 };
	struct cursor	cb = { b->text, b->text + b->len, { 0 }, 0, 0 };
	int		x, y;

	if (!a->escaped && !b->escaped) {
		int	r = memcmp(a->text, b->text,
			    a->len < b->len ? a->len : b->len);

		return r != 0 ? r : (a->len > b->len) - (a->len < b->len);
	}
	do {
		x = cursor_next(&ca);
		y = cursor_next(&cb);
	} while (x == y && x != -1);
	return x - y;
}

static int
key_qsort_cmp(const void *a, const void *b)
{
	return key_cmp(a, b);
}

/* Reads the string whose opening quote is at s->p. */
static int
string(struct scan *s, struct json_text_value *v)
{
	const unsigned char	*p = s->p + 1;
	const char		*why;
	unsigned char		 out[4];
	size_t			 size = 0, n, took;

	v->type = JSON_TEXT_STRING;
	v->text = (const char *)p;
	v->escaped = 0;
	for (;;) {
		if (p >= s->end) {
			s->p = p;
			return fail(s, "unterminated string");
		}
		if (*p == '"')
			break;
		if (*p == '\\') {
			took = escape(p + 1, s->end, out, &n, &why);
			if (took == 0) {
				s->p = p;
				return fail(s, why);
			}
			v->escaped = 1;
			size += n;
			p += 1 + took;
		} else if (*p < 0x20) {
			s->p = p;
			return fail(s, "control character in a string");
		} else if (*p < 0x80) {
			size++;
			p++;
		} else {
			took = json_text_utf8_sequence(p, (size_t)(s->end - p));
			if (took == 0) {
				s->p = p;
				return fail(s, "invalid UTF-8");
			}
			size += took;
			p += took;
		}
	}
	v->len = (size_t)(p - (const unsigned char *)v->text);
	v->size = size;
	s->p = p + 1;
	return 0;
}

static int
number(struct scan *s, struct json_text_value *v)
{
	const unsigned char	*p = s->p;
	char			 inline_copy[NUMBER_INLINE], *copy;
	uint64_t		 magnitude = 0, limit = INT64_MAX;
	int			 real = 0, too_big = 0;

	if (*p == '-') {
		limit = (uint64_t)INT64_MAX + 1;
		p++;
	}
	if (p < s->end && *p == '0')
		p++;
	else if (is_digit(s, p)) {
		for (; is_digit(s, p); p++) {
			unsigned int	d = *p - '0';

			if (magnitude > (limit - d) / 10)
				too_big = 1;
			else
				magnitude = magnitude * 10 + d;
		}
	} else
		goto invalid;
	if (p < s->end && *p == '.') {
		real = 1;
		if (!is_digit(s, ++p))
			goto invalid;
		while (is_digit(s, p))
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		real = 1;
		p++;
		if (p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (!is_digit(s, p))
			goto invalid;
		while (is_digit(s, p))
			p++;
	}
	v->text = (const char *)s->p;
	v->len = (size_t)(p - s->p);
	if (real) {
		/* strtod needs the number NUL-terminated */
		copy = inline_copy;
		if (v->len >= sizeof(inline_copy) &&
		    (copy = malloc(v->len + 1)) == NULL)
			return fail(s, "out of memory");
		memcpy(copy, v->text, v->len);
		copy[v->len] = '\0';
		v->number = strtod(copy, NULL);
		if (copy != inline_copy)
			free(copy);
		if (isinf(v->number))
			return fail(s, "real number overflow");
		v->type = JSON_TEXT_REAL;
	} else {
		if (too_big)
			return fail(s, "integer out of range");
		v->integer = limit == INT64_MAX ? (int64_t)magnitude :
		    magnitude == limit ? INT64_MIN : -(int64_t)magnitude;
		v->number = (double)v->integer;
		v->type = JSON_TEXT_INTEGER;
	}
	s->p = p;
	return 0;
invalid:
	s->p = p;
	return fail(s, "invalid number");
}

static int
literal(struct scan *s, struct json_text_value *v, const char *word,
    enum json_text_type type)
{
	size_t	len = strlen(word);

	if ((size_t)(s->end - s->p) < len || memcmp(s->p, word, len) != 0)
		return fail(s, "invalid literal");
	v->type = type;
	v->text = (const char *)s->p;
	v->len = len;
	s->p += len;
	return 0;
}

/*
 * Keeps the key of an object whose keys start at keys[base], refusing a
 * repeat among its first KEYS_SCANNED; the object's end checks the rest.
 */
static int
add_key(struct scan *s, size_t base, const struct json_text_value *v)
{
	struct key	 k = { (const unsigned char *)v->text, v->len, v->size,
			    v->escaped };
	struct key	*grown;

	if (s->nkeys - base < KEYS_SCANNED)
		for (size_t i = base; i < s->nkeys; i++)
			if (s->keys[i].size == k.size &&
			    key_cmp(&s->keys[i], &k) == 0) {
				s->p = k.text - 1;
				return fail(s, "duplicate key");
			}
	if (s->nkeys == s->keys_cap) {
		if (s->keys == s->inline_keys) {
			grown = reallocarray(NULL, 2 * s->keys_cap,
			    sizeof(*grown));
			if (grown != NULL)
				memcpy(grown, s->keys,
				    s->nkeys * sizeof(*grown));
		} else
			grown = reallocarray(s->keys, 2 * s->keys_cap,
			    sizeof(*grown));
		if (grown == NULL)
			return fail(s, "out of memory");
		s->keys = grown;
		s->keys_cap *= 2;
	}
	s->keys[s->nkeys++] = k;
	return 0;
}

static int
member_of(const struct key *k, const char *name)
{
	struct key	n = { (const unsigned char *)name, strlen(name), 0, 0 };

	n.size = n.len;
	return k->size == n.size && key_cmp(k, &n) == 0;
}

/* Reads the object at s->p; at the top (members) keeps what is asked. */
static int
object(struct scan *s, int depth, struct json_text_member *members,
    size_t n)
{
	struct json_text_value	 key, v;
	size_t			 base = s->nkeys, count;
	int			 rv = -1;

	s->p++;
	skip_space(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		skip_space(s);
		if (s->p >= s->end || *s->p != '"') {
			fail(s, "object key expected");
			goto done;
		}
		if (string(s, &key) == -1 || add_key(s, base, &key) == -1)
			goto done;
		skip_space(s);
		if (s->p >= s->end || *s->p != ':') {
			fail(s, "':' expected");
			goto done;
		}
		s->p++;
		if (value(s, depth + 1, &v, NULL, 0) == -1)
			goto done;
		for (size_t i = 0; i < n; i++)
			if (member_of(&s->keys[s->nkeys - 1], members[i].name)) {
				members[i].value = v;
				break;
			}
		skip_space(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			break;
		}
		fail(s, "',' or '}' expected");
		goto done;
	}
	if ((count = s->nkeys - base) > KEYS_SCANNED) {
		qsort(s->keys + base, count, sizeof(*s->keys), key_qsort_cmp);
		for (size_t i = base + 1; i < s->nkeys; i++)
			if (key_cmp(&s->keys[i - 1], &s->keys[i]) == 0) {
				fail(s, "duplicate key");
				goto done;
			}
	}
	rv = 0;
done:
	s->nkeys = base;
	return rv;
}

static int
array(struct scan *s, int depth)
{
	struct json_text_value	v;

	s->p++;
	skip_space(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		if (value(s, depth + 1, &v, NULL, 0) == -1)
			return -1;
		skip_space(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return 0;
		}
		return fail(s, "',' or ']' expected");
	}
}

/* Reads the value at s->p; depth counts it and the values around it. */
static int
value(struct scan *s, int depth, struct json_text_value *v,
    struct json_text_member *members, size_t n)
{
	const unsigned char	*start;

	skip_space(s);
	if (depth > JSON_TEXT_DEPTH_MAX)
		return fail(s, "values nested too deep");
	if (s->p >= s->end)
		return fail(s, "unexpected end of text");
	start = s->p;
	switch (*s->p) {
	case '"':
		return string(s, v);
	case 't':
		return literal(s, v, "true", JSON_TEXT_TRUE);
	case 'f':
		return literal(s, v, "false", JSON_TEXT_FALSE);
	case 'n':
		return literal(s, v, "null", JSON_TEXT_NULL);
	case '{':
		v->type = JSON_TEXT_OBJECT;
		if (object(s, depth, members, n) == -1)
			return -1;
		break;
	case '[':
		v->type = JSON_TEXT_ARRAY;
		if (array(s, depth) == -1)
			return -1;
		break;
	default:
		if (*s->p == '-' || is_digit(s, s->p))
			return number(s, v);
		return fail(s, "unexpected character");
	}
	v->text = (const char *)start;
	v->len = (size_t)(s->p - start);
	return 0;
}

int
json_text_object(const char *text, size_t len,
    struct json_text_member *members, size_t n, struct json_text_error *err)
{
	struct scan		s;
	struct json_text_value	root;
	int			rv;

	s.start = s.p = (const unsigned char *)text;
	s.end = len > 0 ? s.start + len : s.start;	/* text may be NULL */
	s.err = err;
	s.keys = s.inline_keys;
	s.nkeys = 0;
	s.keys_cap = KEYS_INLINE;
	for (size_t i = 0; i < n; i++)
		members[i].value.type = JSON_TEXT_ABSENT;
	if ((rv = value(&s, 1, &root, members, n)) == 0) {
		skip_space(&s);
		if (s.p != s.end)
			rv = fail(&s, "end of text expected");
		else if (root.type != JSON_TEXT_OBJECT)
			rv = 1;
	}
	if (s.keys != s.inline_keys)
		free(s.keys);
	return rv;
}

void
json_text_string(const struct json_text_value *v, char *dst)
{
	struct cursor	c = { (const unsigned char *)v->text,
			    (const unsigned char *)v->text + v->len, { 0 }, 0,
			    0 };

	if (!v->escaped) {
		memcpy(dst, v->text, v->len);
		return;
	}
	for (size_t i = 0; i < v->size; i++)
		dst[i] = (char)cursor_next(&c);
}
