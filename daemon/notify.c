/*
 * notify.c: journeyd's messages to the service manager (sd_notify):
 * READY=1 once Redis is ready and the consumer is open, RELOADING=1 and
 * READY=1 around a reload, STOPPING=1 on SIGTERM, a STATUS= line with the
 * main counters every few seconds, and the watchdog ping.
 *
 * The watchdog is pinged from a timer at half of WATCHDOG_USEC, but only
 * while the pipeline moves: a batch completed since the last tick, or
 * nothing is in flight. A loop that still turns while its in-flight work
 * is stuck is as wedged as a loop that does not turn, so at the third
 * tick in a row without progress (one and a half to two intervals, so
 * that one slow batch is not taken for a wedge) the pings stop, and
 * systemd restarts the daemon an interval after the last one (unfinished
 * work is replayed from Kafka). Without
 * NOTIFY_SOCKET there is no service manager and nothing here runs.
 */
#include <stdlib.h>

#include <systemd/sd-daemon.h>

#include "journeyd.h"
#include "log.h"

#define STATUS_INTERVAL_S	2
#define STALLED_TICKS_MAX	2	/* ticks are half the watchdog interval */

static struct event	*status_ev;
static struct event	*watchdog_ev;
static uint64_t		 seen_finished;
static int		 stalled_ticks;

static void
send_status(struct journeyd *env, const char *state)
{
	uint64_t	alerts = 0;

	for (int i = 0; i < JOURNEY_CHANGE_KINDS; i++)
		alerts += env->stats.alerts[i];
	sd_notifyf(0, "%sSTATUS=events applied %llu, in flight %lld, "
	    "dead-lettered %llu, alerts %llu, Redis %s", state,
	    (unsigned long long)env->stats.applied, (long long)env->inflight,
	    (unsigned long long)env->stats.dead_lettered,
	    (unsigned long long)alerts, redis_store_ready(env) ? "up" : "down");
}

static void
on_status(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_status(arg, "");
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;

	(void)fd;
	(void)what;
	if (env->inflight == 0 || env->stats.finished != seen_finished) {
		if (stalled_ticks > STALLED_TICKS_MAX)
			log_info("pipeline moves again; watchdog pings resume");
		seen_finished = env->stats.finished;
		stalled_ticks = 0;
	} else if (++stalled_ticks == STALLED_TICKS_MAX + 1)
		log_warnx("%lld events in flight and no batch completed for a "
		    "watchdog interval; watchdog pings withheld",
		    (long long)env->inflight);
	if (stalled_ticks <= STALLED_TICKS_MAX)
		sd_notify(0, "WATCHDOG=1");
}

void
notify_init(struct journeyd *env)
{
	struct timeval	 status_tv = { STATUS_INTERVAL_S, 0 }, tick;
	uint64_t	 usec;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	if ((status_ev = event_new(env->base, -1, EV_PERSIST, on_status,
	    env)) == NULL || event_add(status_ev, &status_tv) == -1)
		fatalx("status timer");
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return;
	tick.tv_sec = (time_t)(usec / 2 / 1000000);
	tick.tv_usec = (suseconds_t)(usec / 2 % 1000000);
	if ((watchdog_ev = event_new(env->base, -1, EV_PERSIST, on_watchdog,
	    env)) == NULL || event_add(watchdog_ev, &tick) == -1)
		fatalx("watchdog timer");
	log_info("watchdog: pinging every %llu ms while the pipeline moves",
	    (unsigned long long)(usec / 2000));
}

void
notify_close(void)
{
	if (status_ev != NULL)
		event_free(status_ev);
	if (watchdog_ev != NULL)
		event_free(watchdog_ev);
	status_ev = watchdog_ev = NULL;
}

void
notify_ready(struct journeyd *env)
{
	send_status(env, "READY=1\n");
}

void
notify_reloading(void)
{
	sd_notify(0, "RELOADING=1");
}

void
notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}
