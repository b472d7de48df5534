/*
 * log.h: the one logging API of journeyd, after OpenBSD's log.c.
 * log_warn appends strerror(errno); the x variants do not. fatal/fatalx are
 * for "cannot continue" only and exit(1).
 */
#ifndef JOURNEYD_LOG_H
#define JOURNEYD_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_WARN = 0, LOG_LEVEL_INFO = 1, LOG_LEVEL_DEBUG = 2 };

void	log_init(const char *procname, enum log_level level);
void	log_setlevel(enum log_level level);
int	log_level_parse(const char *name, enum log_level *level);

void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
