/*
 * json_text.h: a strict JSON reader that works in place on the text, for
 * the one JSON document journeyd reads per event. See json_text.c.
 */
#ifndef JOURNEYD_JSON_TEXT_H
#define JOURNEYD_JSON_TEXT_H

#include <stddef.h>
#include <stdint.h>

#define JSON_TEXT_DEPTH_MAX	2048	/* values nested in each other */
#define JSON_TEXT_ERROR_MAX	64

enum json_text_type {
	JSON_TEXT_ABSENT = 0,	/* not in the object */
	JSON_TEXT_NULL,
	JSON_TEXT_FALSE,
	JSON_TEXT_TRUE,
	JSON_TEXT_INTEGER,
	JSON_TEXT_REAL,
	JSON_TEXT_STRING,
	JSON_TEXT_ARRAY,
	JSON_TEXT_OBJECT,
};

struct json_text_value {
	enum json_text_type	 type;
	/* the value as written; a string's without its quotes */
	const char		*text;
	size_t			 len;
	size_t			 size;		/* a string's decoded bytes */
	int			 escaped;	/* a string has escapes */
	int64_t			 integer;	/* JSON_TEXT_INTEGER */
	double			 number;	/* INTEGER and REAL */
};

struct json_text_member {
	const char		*name;	/* in: a key of the top-level object */
	struct json_text_value	 value;	/* out */
};

struct json_text_error {
	size_t	 position;	/* bytes from the start of the text */
	char	 text[JSON_TEXT_ERROR_MAX];
};

/*
 * Reads text[0..len) as one JSON document. Returns 0 when it is an object
 * (each of the n members then holds the value of its name, or ABSENT), 1
 * when it is valid JSON but not an object, and -1 when it is not valid
 * JSON: then err (if not NULL) says where and why. The values point into
 * text.
 */
int	json_text_object(const char *text, size_t len,
	    struct json_text_member *members, size_t n,
	    struct json_text_error *err);

/*
 * The length of the valid UTF-8 sequence at p (avail bytes there), or 0:
 * no overlong forms, surrogates or code points past U+10FFFF.
 */
size_t	json_text_utf8_sequence(const unsigned char *p, size_t avail);

/* Writes the v->size decoded bytes of string v to dst (no NUL added). */
void	json_text_string(const struct json_text_value *v, char *dst);

#endif
