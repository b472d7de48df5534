/*
 * deadlines.c: finds the customers whose silence has reached a deadline
 * (a rise of churn risk, or churn) without any event of theirs, and hands
 * them to the batch pipeline. It owns the scan timer and the per-partition
 * stream clocks.
 *
 * The state script keeps each customer's next deadline in a sorted set per
 * Kafka partition (<prefix>due:TOPIC/PARTITION), so an instance reads only
 * the partitions it owns, and each read is a range of the sorted set from
 * its start: O(log N) however many customers there are, and nothing is
 * held in memory between scans. The scan runs every SCAN_INTERVAL_MS; one
 * runs at a time, and the next starts once the batch of what it found is
 * durable, so a customer is never queued twice.
 *
 * It reads on the reader, like the loads, so that timers are not held up
 * by state writes in flight when Redis is slow. What it may miss is
 * harmless: an entry such a write brings forward is found by the next
 * scan, and one it moves on (or removes) is found where it was: its
 * customer, in memory until that write lands, settles to nothing due.
 *
 * "Now" is this machine's clock (clock = wall), or per partition the
 * latest event time applied from it minus clock.lateness (clock = event),
 * so a replay of history falls due exactly where the live stream did.
 * When Redis is lost, the events in flight are abandoned, and each clock
 * goes back to the latest time of its events that are durable: one their
 * events had moved would find due, before their replay, customers they
 * keep from being due. If the Redis that answers again is another process
 * (restarted), what it acknowledged last may be gone too: the clocks
 * start again with the events read again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

#define SCAN_INTERVAL_MS	200
/*
 * A scan brings a quarter of max_inflight due customers at most, shared
 * between the partitions owned (at least one each, so more when there
 * are more partitions than that; at most 500 each): they sit in flight
 * beside the events, and 500 from each of many partitions made memory
 * follow how many partitions an instance owns.
 */
#define SCAN_SHARE		4
#define SCAN_PARTITION_MAX	500
#define KEY_LEN			(CONFIG_PREFIX_MAX + JOURNEY_SOURCE_MAX + 8)

struct stream_clock {
	char	source[JOURNEY_SOURCE_MAX];	/* "topic/partition" */
	int64_t	latest_ms;			/* latest event time */
	int64_t	durable_ms;	/* the same, of events durable; -1: none */
};

struct deadlines {
	struct event		*scan_ev;
	int			 scanning;	/* replies or a batch to come */
	int			 replies_pending;
	/* the due customers found by this scan, and each one's now */
	size_t			 n, cap;
	char			**id;
	int64_t			*now_ms;
	const char		**source;	/* into scan_source */
	/* per partition: this scan's source and now, the event-time clocks */
	size_t			 nscan_now;
	int64_t			*scan_now_ms;
	char			(*scan_source)[JOURNEY_SOURCE_MAX];
	size_t			 nclocks;
	struct stream_clock	*clock;
	size_t			 last_clock;	/* events come in runs */
	uint64_t		 scan_generation;	/* of the assignment */
};

static struct stream_clock *
find_clock(struct deadlines *dl, const char *source)
{
	if (dl->last_clock < dl->nclocks &&
	    strcmp(dl->clock[dl->last_clock].source, source) == 0)
		return &dl->clock[dl->last_clock];
	for (size_t i = 0; i < dl->nclocks; i++)
		if (strcmp(dl->clock[i].source, source) == 0) {
			dl->last_clock = i;
			return &dl->clock[i];
		}
	return NULL;
}

void
deadlines_observe(struct journeyd *env, const char *source, int64_t ts)
{
	struct deadlines	*dl = env->deadlines;
	struct stream_clock	*c, *grown;

	if (env->conf->clock != CONFIG_CLOCK_EVENT)
		return;
	if ((c = find_clock(dl, source)) == NULL) {
		if ((grown = reallocarray(dl->clock, dl->nclocks + 1,
		    sizeof(*dl->clock))) == NULL)
			fatal("stream clocks");
		dl->clock = grown;
		c = &dl->clock[dl->nclocks++];
		snprintf(c->source, sizeof(c->source), "%s", source);
		c->latest_ms = ts;
		c->durable_ms = -1;
	}
	if (ts > c->latest_ms)
		c->latest_ms = ts;
}

void
deadlines_durable(struct journeyd *env, const char *source, int64_t ts)
{
	struct stream_clock	*c = find_clock(env->deadlines, source);

	/* made when the event was applied */
	if (c != NULL && ts > c->durable_ms)
		c->durable_ms = ts;
}

static void
forget_found(struct deadlines *dl)
{
	for (size_t i = 0; i < dl->n; i++)
		free(dl->id[i]);
	dl->n = 0;
}

/*
 * Removes an index entry that is no customer id journeyd could have
 * written (too long): skipped, it would come back first in every scan.
 */
static void
drop_stranger(struct journeyd *env, const char *source, const redisReply *m)
{
	char		 key[KEY_LEN];
	const char	*argv[] = { "ZREM", key, m->str };
	size_t		 argvlen[] = { 4, 0, m->len };

	argvlen[1] = (size_t)snprintf(key, sizeof(key), "%sdue:%s",
	    env->conf->redis_prefix, source);
	log_warnx("deadline index %s: dropped an entry of %zu bytes, longer "
	    "than any customer id", key, m->len);
	redis_store_command(env, NULL, NULL, 3, argv, argvlen);
}

static void
on_due(struct journeyd *env, redisReply *r, void *arg)
{
	struct deadlines	*dl = env->deadlines;
	int64_t			 now = dl->scan_now_ms[(uintptr_t)arg];
	const char		*source = dl->scan_source[(uintptr_t)arg];

	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < r->elements; i++) {
			if (r->element[i]->type != REDIS_REPLY_STRING)
				continue;
			if (r->element[i]->len > EVENT_CUSTOMER_MAX) {
				drop_stranger(env, source, r->element[i]);
				continue;
			}
			if (dl->n == dl->cap) {
				dl->cap = dl->cap ? 2 * dl->cap : 256;
				if ((dl->id = reallocarray(dl->id, dl->cap,
				    sizeof(*dl->id))) == NULL ||
				    (dl->now_ms = reallocarray(dl->now_ms,
				    dl->cap, sizeof(*dl->now_ms))) == NULL ||
				    (dl->source = reallocarray(dl->source,
				    dl->cap, sizeof(*dl->source))) == NULL)
					fatal("due customers");
			}
			if ((dl->id[dl->n] = strdup(r->element[i]->str)) ==
			    NULL)
				fatal("due customer");
			dl->source[dl->n] = source;
			dl->now_ms[dl->n++] = now;
		}
	} else
		log_warnx("redis: deadline scan: %s", r->type ==
		    REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	if (--dl->replies_pending > 0)
		return;
	/* partitions may have gone meanwhile: their new owner scans them */
	if (dl->n == 0 || env->stopping || kafka_source_blocked(env) ||
	    kafka_source_generation(env) != dl->scan_generation) {
		forget_found(dl);
		dl->scanning = 0;
		return;
	}
	log_debug("deadlines: %zu customers due", dl->n);
	batch_enqueue_due(env, dl->n, dl->id, dl->now_ms, dl->source);
	forget_found(dl);
}

/* Now for partition source, or -1 when its clock has not started. */
static int64_t
now_for(struct journeyd *env, const char *source, int64_t wall)
{
	struct stream_clock	*c = find_clock(env->deadlines, source);

	return churn_clock_now(env->conf->clock == CONFIG_CLOCK_EVENT, wall,
	    c != NULL ? c->latest_ms : -1, env->conf->clock_lateness_ms);
}

static void
scan(struct journeyd *env)
{
	struct deadlines		*dl = env->deadlines;
	rd_kafka_topic_partition_list_t	*parts;
	char				 key[KEY_LEN];
	char				 source[JOURNEY_SOURCE_MAX];
	char				 max[24], limit[24];
	const char			*argv[7];
	size_t				 argvlen[7];
	int64_t				 wall = timestamp_now_ms(), now;
	int				 per;

	if ((parts = kafka_source_assignment(env)) == NULL)
		return;
	dl->scan_generation = kafka_source_generation(env);
	if (parts->cnt > 0) {
		per = env->conf->max_inflight / SCAN_SHARE / parts->cnt;
		per = per < 1 ? 1 : per > SCAN_PARTITION_MAX ?
		    SCAN_PARTITION_MAX : per;
		argvlen[6] = (size_t)snprintf(limit, sizeof(limit), "%d", per);
	}
	if ((size_t)parts->cnt > dl->nscan_now) {
		if ((dl->scan_now_ms = reallocarray(dl->scan_now_ms,
		    (size_t)parts->cnt, sizeof(*dl->scan_now_ms))) == NULL ||
		    (dl->scan_source = reallocarray(dl->scan_source,
		    (size_t)parts->cnt, sizeof(*dl->scan_source))) == NULL)
			fatal("deadline scan");
		dl->nscan_now = (size_t)parts->cnt;
	}
	for (int i = 0; i < parts->cnt; i++) {
		snprintf(source, sizeof(source), "%s/%d", parts->elems[i].topic,
		    (int)parts->elems[i].partition);
		if ((now = now_for(env, source, wall)) < 0)
			continue;
		dl->scan_now_ms[i] = now;
		memcpy(dl->scan_source[i], source, sizeof(source));
		argv[0] = "ZRANGEBYSCORE";
		argv[1] = key;
		argvlen[1] = (size_t)snprintf(key, sizeof(key), "%sdue:%s",
		    env->conf->redis_prefix, source);
		argv[2] = "-inf";
		argv[3] = max;
		argvlen[3] = (size_t)snprintf(max, sizeof(max), "%" PRId64,
		    now);
		argv[4] = "LIMIT";
		argv[5] = "0";
		argv[6] = limit;
		for (int k = 0; k < 6; k++)
			if (k != 1 && k != 3)
				argvlen[k] = strlen(argv[k]);
		if (redis_store_read(env, on_due, (void *)(uintptr_t)i, 7,
		    argv, argvlen) == -1)
			break;
		dl->replies_pending++;
		dl->scanning = 1;
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

static void
on_scan_timer(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;

	(void)fd;
	(void)what;
	/* like consumption: not while stopping, rebalancing or full */
	if (env->deadlines->scanning || env->stopping ||
	    !redis_store_ready(env) || kafka_source_blocked(env) ||
	    env->inflight >= env->conf->max_inflight)
		return;
	scan(env);
}

void
deadlines_done(struct journeyd *env)
{
	env->deadlines->scanning = 0;
}

void
deadlines_redis_lost(struct journeyd *env)
{
	struct deadlines	*dl = env->deadlines;

	/* a lost connection's callbacks never run */
	forget_found(dl);
	dl->replies_pending = 0;
	dl->scanning = 0;
	for (size_t i = 0; i < dl->nclocks; i++)
		dl->clock[i].latest_ms = dl->clock[i].durable_ms;
}

void
deadlines_redis_ready(struct journeyd *env)
{
	struct deadlines	*dl = env->deadlines;

	/* what the clocks took for durable may be lost: start them again */
	if (redis_store_server_changed(env)) {
		dl->nclocks = 0;
		dl->last_clock = 0;
	}
}

int
deadlines_init(struct journeyd *env)
{
	struct deadlines	*dl;
	struct timeval		 tv = { 0, SCAN_INTERVAL_MS * 1000 };

	if ((dl = calloc(1, sizeof(*dl))) == NULL)
		return -1;
	env->deadlines = dl;
	if ((dl->scan_ev = event_new(env->base, -1, EV_PERSIST, on_scan_timer,
	    env)) == NULL || event_add(dl->scan_ev, &tv) == -1)
		return -1;
	return 0;
}

void
deadlines_free(struct journeyd *env)
{
	struct deadlines	*dl = env->deadlines;

	if (dl == NULL)
		return;
	if (dl->scan_ev != NULL)
		event_free(dl->scan_ev);
	forget_found(dl);
	free(dl->id);
	free(dl->now_ms);
	free(dl->source);
	free(dl->scan_now_ms);
	free(dl->scan_source);
	free(dl->clock);
	free(dl);
	env->deadlines = NULL;
}
