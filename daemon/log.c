/*
 * log.c: leveled logging to stderr. Under systemd (JOURNAL_STREAM set) each
 * line carries an sd-daemon "<N>" priority prefix so journald files it at
 * the right level; elsewhere lines carry the program name instead.
 * errno is preserved across every call so callers can log and then act on it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char	*log_procname = "journeyd";
static enum log_level	 log_level = LOG_LEVEL_INFO;
static int		 log_journald;

void
log_init(const char *procname, enum log_level level)
{
	log_procname = procname;
	log_level = level;
	log_journald = getenv("JOURNAL_STREAM") != NULL;
}

void
log_setlevel(enum log_level level)
{
	log_level = level;
}

int
log_level_parse(const char *name, enum log_level *level)
{
	if (strcmp(name, "warn") == 0)
		*level = LOG_LEVEL_WARN;
	else if (strcmp(name, "info") == 0)
		*level = LOG_LEVEL_INFO;
	else if (strcmp(name, "debug") == 0)
		*level = LOG_LEVEL_DEBUG;
	else
		return -1;
	return 0;
}

/* syslog priorities as sd-daemon(3) prefixes: 2 crit, 4 warning, 6 info, 7 debug */
static void
log_vwrite(int priority, const char *fmt, va_list ap, const char *suffix)
{
	char	line[4096];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_journald)
		fprintf(stderr, "<%d>%s%s%s\n", priority, line,
		    suffix ? ": " : "", suffix ? suffix : "");
	else
		fprintf(stderr, "%s: %s%s%s\n", log_procname, line,
		    suffix ? ": " : "", suffix ? suffix : "");
}

void
log_warn(const char *fmt, ...)
{
	int	saved = errno;
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(4, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	int	saved = errno;
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(4, fmt, ap, NULL);
	va_end(ap);
	errno = saved;
}

void
log_info(const char *fmt, ...)
{
	int	saved = errno;
	va_list	ap;

	if (log_level < LOG_LEVEL_INFO)
		return;
	va_start(ap, fmt);
	log_vwrite(6, fmt, ap, NULL);
	va_end(ap);
	errno = saved;
}

void
log_debug(const char *fmt, ...)
{
	int	saved = errno;
	va_list	ap;

	if (log_level < LOG_LEVEL_DEBUG)
		return;
	va_start(ap, fmt);
	log_vwrite(7, fmt, ap, NULL);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	int	saved = errno;
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(2, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(2, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
