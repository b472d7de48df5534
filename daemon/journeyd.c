/*
 * journeyd.c: the daemon's entry point and lifecycle: options, config,
 * malloc's arenas, signals (as libevent signal events: handlers never run
 * in signal context), start-up order (Redis first, so nothing is consumed
 * before state can be read; ready for the service manager once the
 * consumer is open), and the drain-then-exit shutdown.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "customer.h"
#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

/* what closing the Kafka clients gets when the drain left less */
#define CLOSE_MIN_MS	1000

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: journeyd [-dnV] [-f file]\n");
	exit(2);
}

/*
 * One malloc arena for all threads, unless the environment sets the
 * number (MALLOC_ARENA_MAX, or arena_max in GLIBC_TUNABLES). librdkafka's
 * threads allocate the messages and buffers that this thread frees, and
 * with glibc's several arenas (up to 8 per core) the room freed in theirs
 * stayed scattered: over a drain of 2M events the peak RSS crept from 150
 * to 208 MB while in-flight work stayed the same. With one arena it stayed
 * at 126-130 MB. The threads then share the arena's lock for what their
 * small-block caches miss and for large blocks; twelve alternating drains
 * measured no cost in CPU or throughput. Set before any thread exists.
 */
static void
limit_malloc_arenas(void)
{
	const char	*tunables;

	if (getenv("MALLOC_ARENA_MAX") != NULL)
		return;
	/* read last: another getenv may overwrite what one returned */
	tunables = getenv("GLIBC_TUNABLES");
	if (tunables != NULL && strstr(tunables, "glibc.malloc.arena_max") !=
	    NULL)
		return;
	if (mallopt(M_ARENA_MAX, 1) != 1)
		log_debug("mallopt: cannot limit malloc arenas");
}

static void
log_stats(struct journeyd *env, const char *when)
{
	uint64_t	alerts = 0;

	for (int i = 0; i < JOURNEY_CHANGE_KINDS; i++)
		alerts += env->stats.alerts[i];
	log_info("%s: consumed %llu, applied %llu, duplicates %llu, "
	    "dead-lettered %llu, alerts %llu", when,
	    (unsigned long long)env->stats.consumed,
	    (unsigned long long)env->stats.applied,
	    (unsigned long long)env->stats.duplicates,
	    (unsigned long long)env->stats.dead_lettered,
	    (unsigned long long)alerts);
}

void
journeyd_redis_ready(struct journeyd *env)
{
	names_redis_ready(env);
	deadlines_redis_ready(env);
	if (env->stopping)
		return;
	heartbeat_now(env);
	if (env->source != NULL) {
		kafka_source_redis_ready(env);
		/* the queue's wake-up may have come while Redis was away */
		batch_schedule_pump(env);
		return;
	}
	if (kafka_source_open(env) == -1)
		fatalx("cannot start the Kafka consumer");
	notify_ready(env);
}

void
journeyd_redis_lost(struct journeyd *env)
{
	kafka_source_pause(env);
	batch_abandon_all(env);
	deadlines_redis_lost(env);
	map_page_abort(env, "Redis was lost", 1);
	batch_schedule_pump(env);
}

/* Called by the pump once stopping and nothing is in flight. */
void
journeyd_shutdown_step(struct journeyd *env)
{
	int64_t	deadline;

	if (env->stopping != 1)
		return;
	env->stopping = 2;
	log_info("drained; committing offsets and flushing alerts");
	/*
	 * within the drain deadline too (its timer cannot fire meanwhile),
	 * but with a second at least for the final commit to go out
	 */
	deadline = timestamp_monotonic_ms() + CLOSE_MIN_MS;
	if (deadline < env->stop_deadline_ms)
		deadline = env->stop_deadline_ms;
	kafka_source_close(env, deadline);
	kafka_sink_close(env, deadline);
	log_stats(env, "stopped");
	event_base_loopexit(env->base, NULL);
}

static void
on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;

	(void)fd;
	(void)what;
	/* offsets of unfinished work stay unstored: a restart replays it */
	log_warnx("drain deadline passed with %lld events in flight; exiting",
	    (long long)env->inflight);
	log_stats(env, "aborted");
	exit(1);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct journeyd	*env = arg;
	struct timeval	 tv;

	(void)what;
	if (env->stopping)
		return;
	log_info("%s: stopping; draining %lld events in flight",
	    strsignal((int)sig), (long long)env->inflight);
	notify_stopping();
	env->stopping = 1;
	env->stop_deadline_ms = timestamp_monotonic_ms() +
	    env->conf->drain_timeout_ms;
	heartbeat_stop(env);
	tv = timestamp_timeval(env->conf->drain_timeout_ms);
	if ((env->drain_timer = evtimer_new(env->base, on_drain_deadline,
	    env)) == NULL || evtimer_add(env->drain_timer, &tv) == -1)
		fatalx("drain timer");
	batch_schedule_pump(env);
}

static void
on_hangup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	reload_request(arg);
}

int
main(int argc, char *argv[])
{
	struct journeyd	 env;
	struct event	*sigterm, *sigint, *sighup;
	const char	*conffile = JOURNEYD_CONF;
	char		 err[CONFIG_ERR_MAX];
	int		 ch, check_only = 0, debug = 0;

	while ((ch = getopt(argc, argv, "df:nV")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			conffile = optarg;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'V':
			printf("journeyd %s\n", JOURNEYD_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	log_init("journeyd", debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	/* before the clients kafka_conf_check makes leave arenas behind */
	limit_malloc_arenas();
	memset(&env, 0, sizeof(env));
	if (config_load(conffile, &env.conf, err) == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/*
	 * What the lines are together, as the clients will see them: a
	 * start refuses them as -n and a reload do, naming the line,
	 * before anything is opened.
	 */
	if (kafka_conf_check(env.conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s:%s\n", conffile, err);
		config_free(env.conf);
		return 1;
	}
	if (check_only) {
		fprintf(stderr, "%s: configuration OK\n", conffile);
		config_free(env.conf);
		return 0;
	}
	env.debug = debug;
	if (!debug)
		log_setlevel(env.conf->log_level);

	signal(SIGPIPE, SIG_IGN);
	if ((env.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((sigterm = evsignal_new(env.base, SIGTERM, on_signal, &env)) ==
	    NULL || (sigint = evsignal_new(env.base, SIGINT, on_signal,
	    &env)) == NULL || (sighup = evsignal_new(env.base, SIGHUP,
	    on_hangup, &env)) == NULL || evsignal_add(sigterm, NULL) == -1 ||
	    evsignal_add(sigint, NULL) == -1 || evsignal_add(sighup, NULL) == -1)
		fatalx("signal events");
	if ((env.cache = customer_cache_new()) == NULL ||
	    names_init(&env) == -1 || metrics_init(&env) == -1 ||
	    redis_store_open(&env) == -1 || batch_init(&env) == -1 ||
	    deadlines_init(&env) == -1 || heartbeat_init(&env) == -1)
		fatal("init");
	if (http_server_open(&env) == -1)
		fatalx("cannot serve HTTP on %s:%d", env.conf->http_host,
		    env.conf->http_port);
	notify_init(&env);
	redis_store_start(&env);
	if (kafka_sink_open(&env) == -1)
		fatalx("cannot start the Kafka producer");
	log_info("journeyd %s started (config %s)", JOURNEYD_VERSION,
	    conffile);

	event_base_dispatch(env.base);

	notify_close();
	/* the loop is over: no reply comes any more */
	map_page_abort(&env, "stopping", 1);
	http_server_close(&env);
	batch_destroy_all(&env);
	deadlines_free(&env);
	heartbeat_free(&env);
	redis_store_close(&env);
	metrics_close(&env);
	customer_cache_free(env.cache);
	names_free(&env);
	if (env.drain_timer != NULL)
		event_free(env.drain_timer);
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	event_base_free(env.base);
	config_free(env.conf_next);
	config_free(env.conf);
	return 0;
}
