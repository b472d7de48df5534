/*
 * number.h: integers written in decimal without printf, for the per-event
 * path (customer fields, the state write).
 */
#ifndef JOURNEYD_NUMBER_H
#define JOURNEYD_NUMBER_H

#include <stddef.h>
#include <stdint.h>

#define NUMBER_TEXT_MAX	20	/* characters of INT64_MIN or UINT64_MAX */
/* a macro's number as a string literal, for texts made when compiling */
#define NUMBER_TEXT(x)		NUMBER_TEXT_OF(x)
#define NUMBER_TEXT_OF(x)	#x

/* v in decimal at p, not NUL-terminated; returns its length. */
size_t	number_format_u64(char *p, uint64_t v);
size_t	number_format_i64(char *p, int64_t v);

#endif
