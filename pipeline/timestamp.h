/*
 * timestamp.h: event time as milliseconds since the Unix epoch (UTC), and
 * its ISO-8601 text form. Pure functions, no time zone database, but for
 * timestamp_now_ms and timestamp_monotonic_ms: this machine's clocks.
 */
#ifndef JOURNEYD_TIMESTAMP_H
#define JOURNEYD_TIMESTAMP_H

#include <sys/time.h>
#include <stddef.h>
#include <stdint.h>

/* Latest accepted instant: 9999-12-31T23:59:59.999Z. */
#define TIMESTAMP_MAX_MS	INT64_C(253402300799999)
/* "YYYY-MM-DDTHH:MM:SS.mmmZ" plus NUL */
#define TIMESTAMP_ISO_LEN	25

int	timestamp_parse_iso8601(const char *s, size_t len, int64_t *ms);
void	timestamp_format_iso8601(int64_t ms, char out[TIMESTAMP_ISO_LEN]);
/* 41d, 1d10h, 5h, 12m30s or 250ms: the two largest units that fit */
void	timestamp_format_duration(int64_t ms, char *out, size_t len);
/* The wall clock (CLOCK_REALTIME), in milliseconds since the epoch. */
int64_t	timestamp_now_ms(void);
/* CLOCK_MONOTONIC in milliseconds: for deadlines, not for event time. */
int64_t	timestamp_monotonic_ms(void);
/* A duration of ms (at least 0) as the timeval a timer is armed with. */
struct timeval timestamp_timeval(int64_t ms);

#endif
