/*
 * number.c: decimal integers written digit by digit. snprintf parses its
 * format on every call, and the per-event path writes several numbers per
 * customer.
 */
#include "number.h"

size_t
number_format_u64(char *p, uint64_t v)
{
	char	digits[20];
	size_t	n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	for (size_t i = 0; i < n; i++)
		p[i] = digits[n - 1 - i];
	return n;
}

size_t
number_format_i64(char *p, int64_t v)
{
	if (v >= 0)
		return number_format_u64(p, (uint64_t)v);
	*p = '-';
	return 1 + number_format_u64(p + 1, -(uint64_t)v);
}
