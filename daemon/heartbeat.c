/*
 * heartbeat.c: this instance's heartbeat in Redis, so that `redis-cli`
 * or `journeyctl instances` alone tell whether journeyd is alive, what it
 * owns and how far behind it is. It owns the heartbeat timer and the
 * instance's keys:
 *
 *   <prefix>instance:HOST:PID  hash, expires HEARTBEAT_TTL_S after the
 *                              last beat: version, started, partitions,
 *                              consumed, events_per_s, lag, beat
 *   <prefix>instances          sorted set: instance -> last beat (ms);
 *                              entries silent for a minute are dropped
 *
 * A beat is written only while Redis is up; a dead instance's hash
 * expires by itself.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

#define HEARTBEAT_INTERVAL_S	5
#define HEARTBEAT_TTL_S		"15"
#define HEARTBEAT_FORGET_MS	60000
#define KEY_LEN			(CONFIG_PREFIX_MAX + 320)	/* and an id */

struct heartbeat {
	struct event	*timer;
	char		 id[300];		/* HOST:PID */
	char		 started[TIMESTAMP_ISO_LEN];
	uint64_t	 last_consumed;
	int64_t		 last_mono_ms;	/* the last beat, monotonic */
};

/* "touchpoints/0 touchpoints/3" */
static void
partitions_text(struct journeyd *env, char *buf, size_t len)
{
	rd_kafka_topic_partition_list_t	*l = kafka_source_assignment(env);
	size_t				 off = 0;

	buf[0] = '\0';
	for (int i = 0; l != NULL && i < l->cnt && off + 1 < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s/%d",
		    i ? " " : "", l->elems[i].topic, (int)l->elems[i].partition);
	if (l != NULL)
		rd_kafka_topic_partition_list_destroy(l);
}

static void
beat(struct journeyd *env)
{
	struct heartbeat	*hb = env->heartbeat;
	char			 key[KEY_LEN], set[KEY_LEN];
	char			 parts[2048], consumed[24], rate[24], lag[24];
	char			 now_text[TIMESTAMP_ISO_LEN], score[24], old[24];
	int64_t			 now = timestamp_now_ms(), l = kafka_source_lag(env);
	int64_t			 mono = timestamp_monotonic_ms();
	/* a step of the wall clock (NTP) is no interval */
	double			 secs = (double)(mono - hb->last_mono_ms) / 1000;
	const char		*hset[] = { "HSET", key, "version",
				    JOURNEYD_VERSION, "started", hb->started,
				    "partitions", parts, "consumed", consumed,
				    "events_per_s", rate, "lag", lag, "beat",
				    now_text };
	const char		*expire[] = { "EXPIRE", key, HEARTBEAT_TTL_S };
	const char		*zadd[] = { "ZADD", set, score, hb->id };
	const char		*zrem[] = { "ZREMRANGEBYSCORE", set, "-inf",
				    old };

	snprintf(key, sizeof(key), "%sinstance:%s", env->conf->redis_prefix,
	    hb->id);
	snprintf(set, sizeof(set), "%sinstances", env->conf->redis_prefix);
	partitions_text(env, parts, sizeof(parts));
	snprintf(consumed, sizeof(consumed), "%" PRIu64, env->stats.consumed);
	snprintf(rate, sizeof(rate), "%.0f", secs > 0 ?
	    (double)(env->stats.consumed - hb->last_consumed) / secs : 0.0);
	if (l < 0)
		snprintf(lag, sizeof(lag), "unknown");
	else
		snprintf(lag, sizeof(lag), "%" PRId64, l);
	timestamp_format_iso8601(now, now_text);
	snprintf(score, sizeof(score), "%" PRId64, now);
	snprintf(old, sizeof(old), "(%" PRId64, now - HEARTBEAT_FORGET_MS);
	hb->last_consumed = env->stats.consumed;
	hb->last_mono_ms = mono;
	redis_store_command_v(env, sizeof(hset) / sizeof(*hset), hset);
	redis_store_command_v(env, 3, expire);
	redis_store_command_v(env, 4, zadd);
	redis_store_command_v(env, 4, zrem);
}

static void
on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;

	(void)fd;
	(void)what;
	if (redis_store_ready(env) && !env->stopping)
		beat(env);
}

int
heartbeat_init(struct journeyd *env)
{
	struct heartbeat	*hb;
	struct timeval		 tv = { HEARTBEAT_INTERVAL_S, 0 };
	char			 host[256];

	if ((hb = calloc(1, sizeof(*hb))) == NULL)
		return -1;
	env->heartbeat = hb;
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(hb->id, sizeof(hb->id), "%s:%ld", host, (long)getpid());
	hb->last_mono_ms = timestamp_monotonic_ms();
	timestamp_format_iso8601(timestamp_now_ms(), hb->started);
	if ((hb->timer = event_new(env->base, -1, EV_PERSIST, on_heartbeat,
	    env)) == NULL || event_add(hb->timer, &tv) == -1)
		return -1;
	return 0;
}

/*
 * Redis is up, or partitions came: beat at once, so a new instance shows
 * without delay. Not once stopping: heartbeat_stop may have removed it
 * (an assignment whose watermarks were being read can end after it).
 */
void
heartbeat_now(struct journeyd *env)
{
	if (env->heartbeat != NULL && redis_store_ready(env) &&
	    !env->stopping)
		beat(env);
}

/* On the way out: this instance is gone, not just late. */
void
heartbeat_stop(struct journeyd *env)
{
	struct heartbeat	*hb = env->heartbeat;
	char			 key[KEY_LEN], set[KEY_LEN];
	const char		*del[] = { "DEL", key };
	const char		*zrem[] = { "ZREM", set, hb->id };

	if (!redis_store_ready(env))
		return;
	snprintf(key, sizeof(key), "%sinstance:%s", env->conf->redis_prefix,
	    hb->id);
	snprintf(set, sizeof(set), "%sinstances", env->conf->redis_prefix);
	redis_store_command_v(env, 2, del);
	redis_store_command_v(env, 3, zrem);
}

void
heartbeat_free(struct journeyd *env)
{
	if (env->heartbeat == NULL)
		return;
	if (env->heartbeat->timer != NULL)
		event_free(env->heartbeat->timer);
	free(env->heartbeat);
	env->heartbeat = NULL;
}
