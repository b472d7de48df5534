/*
 * timestamp.c: ISO-8601 parsing and formatting for event time.
 * Accepts the forms touchpoint producers really send: a date alone
 * ("2017-06-14"), date and time separated by 'T' or a space, optional
 * fractional seconds, and 'Z', "+HH:MM", "+HHMM" or no zone (taken as UTC).
 * Days are counted with the proleptic Gregorian calendar directly so the
 * result never depends on the process time zone.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "timestamp.h"

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t	era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t	era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static int
parse_digits(const char *s, size_t len, size_t *pos, int n, int *out)
{
	int	v = 0;

	for (int i = 0; i < n; i++) {
		if (*pos >= len || s[*pos] < '0' || s[*pos] > '9')
			return -1;
		v = v * 10 + (s[(*pos)++] - '0');
	}
	*out = v;
	return 0;
}

static int
days_in_month(int y, int m)
{
	static const int	mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
				    31, 30, 31 };
	int			leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : mdays[m - 1];
}

int
timestamp_parse_iso8601(const char *s, size_t len, int64_t *ms)
{
	size_t	pos = 0;
	int	y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, tzh = 0, tzm = 0;
	int	sign = 0;
	int64_t	v;

	if (parse_digits(s, len, &pos, 4, &y) == -1 || pos >= len ||
	    s[pos++] != '-' || parse_digits(s, len, &pos, 2, &mo) == -1 ||
	    pos >= len || s[pos++] != '-' ||
	    parse_digits(s, len, &pos, 2, &d) == -1)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -1;
	if (pos < len && (s[pos] == 'T' || s[pos] == 't' || s[pos] == ' ')) {
		pos++;
		if (parse_digits(s, len, &pos, 2, &h) == -1 || pos >= len ||
		    s[pos++] != ':' || parse_digits(s, len, &pos, 2, &mi) == -1)
			return -1;
		if (pos < len && s[pos] == ':') {
			pos++;
			if (parse_digits(s, len, &pos, 2, &sec) == -1)
				return -1;
			if (pos < len && (s[pos] == '.' || s[pos] == ',')) {
				int	scale = 100, digits = 0;

				pos++;
				while (pos < len && s[pos] >= '0' &&
				    s[pos] <= '9') {
					frac += (s[pos++] - '0') * scale;
					scale /= 10;
					digits++;
				}
				if (digits == 0)
					return -1;
			}
		}
		if (h > 23 || mi > 59 || sec > 60)
			return -1;
		if (pos < len && (s[pos] == 'Z' || s[pos] == 'z'))
			pos++;
		else if (pos < len && (s[pos] == '+' || s[pos] == '-')) {
			sign = s[pos++] == '-' ? -1 : 1;
			if (parse_digits(s, len, &pos, 2, &tzh) == -1)
				return -1;
			if (pos < len && s[pos] == ':')
				pos++;
			if (parse_digits(s, len, &pos, 2, &tzm) == -1 ||
			    tzh > 23 || tzm > 59)
				return -1;
		}
	}
	if (pos != len)
		return -1;
	v = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	v -= sign * (tzh * 3600 + tzm * 60);
	*ms = v * 1000 + frac;
	return 0;
}

/* v as exactly n decimal digits, zero-padded */
static void
put_digits(char *out, int v, int n)
{
	while (n-- > 0) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

void
timestamp_format_iso8601(int64_t ms, char out[TIMESTAMP_ISO_LEN])
{
	int64_t	secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	int64_t	days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	int64_t	rem = secs - days * 86400;
	int	y, m, d;

	civil_from_days(days, &y, &m, &d);
	/*
	 * Digit by digit: every customer write formats several of these, and
	 * snprintf was a good part of its cost. Callers pass validated event
	 * times (years 1970..9999); a year out of range is clamped to 4 digits.
	 */
	put_digits(out, y < 0 ? 0 : y > 9999 ? 9999 : y, 4);
	out[4] = '-';
	put_digits(out + 5, m, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = 'T';
	put_digits(out + 11, (int)(rem / 3600), 2);
	out[13] = ':';
	put_digits(out + 14, (int)(rem / 60 % 60), 2);
	out[16] = ':';
	put_digits(out + 17, (int)(rem % 60), 2);
	out[19] = '.';
	put_digits(out + 20, (int)(ms - secs * 1000), 3);
	out[23] = 'Z';
	out[24] = '\0';
}

void
timestamp_format_duration(int64_t ms, char *out, size_t len)
{
	static const struct {
		int64_t		 ms;
		const char	*unit;
	} units[] = { { 86400000, "d" }, { 3600000, "h" }, { 60000, "m" },
	    { 1000, "s" } };

	const size_t	 n = sizeof(units) / sizeof(units[0]);
	int64_t		 rest;

	for (size_t i = 0; i < n; i++) {
		if (ms < units[i].ms)
			continue;
		rest = i + 1 < n ? ms % units[i].ms / units[i + 1].ms : 0;
		if (rest > 0)
			snprintf(out, len, "%lld%s%lld%s",
			    (long long)(ms / units[i].ms), units[i].unit,
			    (long long)rest, units[i + 1].unit);
		else
			snprintf(out, len, "%lld%s",
			    (long long)(ms / units[i].ms), units[i].unit);
		return;
	}
	snprintf(out, len, "%lldms", (long long)ms);
}

static int64_t
clock_ms(clockid_t clock)
{
	struct timespec	ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
timestamp_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t
timestamp_monotonic_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

struct timeval
timestamp_timeval(int64_t ms)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	return tv;
}
