/*
 * metrics.c: the Prometheus text that /metrics serves, and the state
 * behind it that is more than a counter in env->stats: dead letters by
 * reason class, the histogram of Redis round trips, and the number of
 * customers per stage, read from <prefix>stages every few seconds through
 * the store (never on a scrape: a scrape must not wait for Redis) and
 * cached.
 *
 * Label sets stay bounded whatever the input: reason classes are the fixed
 * text of journeyd's own reasons (up to the first ':' or digit, where the
 * details start), and past REASON_CLASSES_MAX classes the rest are counted
 * as "other".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "alert.h"
#include "journeyd.h"
#include "log.h"

#define REASON_CLASS_MAX	64
#define REASON_CLASSES_MAX	32
#define STAGES_REFRESH_S	3

/* upper bounds of the round-trip buckets, in microseconds; then +Inf */
static const int64_t	rtt_bound_us[] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
	1000000, 2500000,
};
#define RTT_BUCKETS	(sizeof(rtt_bound_us) / sizeof(*rtt_bound_us))

struct reason_class {
	char		 name[REASON_CLASS_MAX];
	uint64_t	 count;
};

struct metrics {
	/* per connection; not cumulative */
	uint64_t		 rtt_count[REDIS_CONNECTIONS][RTT_BUCKETS + 1];
	int64_t			 rtt_sum_us[REDIS_CONNECTIONS];
	int			 nreasons;
	struct reason_class	 reason[REASON_CLASSES_MAX];
	struct evbuffer		*customers;	/* rendered sample lines */
	struct event		*refresh_ev;
};

/* Prometheus label values escape backslash, double quote and newline. */
static void
add_label_value(struct evbuffer *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' || s[i] == '"')
			evbuffer_add_printf(out, "\\%c", s[i]);
		else if (s[i] == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, &s[i], 1);
	}
}

static void
add_family(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* A family of one sample without labels. */
static void
add_single(struct evbuffer *out, const char *name, const char *type,
    const char *help, long long n)
{
	add_family(out, name, type, help);
	evbuffer_add_printf(out, "%s %lld\n", name, n);
}

static void
add_sample(struct evbuffer *out, const char *name, const char *label,
    const char *value, uint64_t n)
{
	evbuffer_add_printf(out, "%s{%s=\"", name, label);
	add_label_value(out, value, strlen(value));
	evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)n);
}

static struct reason_class *
reason_slot(struct metrics *m, const char *name)
{
	for (int i = 0; i < m->nreasons; i++)
		if (strcmp(m->reason[i].name, name) == 0)
			return &m->reason[i];
	/* the last slot is kept for "other", which is then always found */
	if (m->nreasons >= REASON_CLASSES_MAX - 1 && strcmp(name, "other") != 0)
		return reason_slot(m, "other");
	snprintf(m->reason[m->nreasons].name, REASON_CLASS_MAX, "%s", name);
	return &m->reason[m->nreasons++];
}

int
metrics_reason_class(struct journeyd *env, const char *reason)
{
	char	class[REASON_CLASS_MAX];
	size_t	n = strcspn(reason, ":0123456789");

	while (n > 0 && reason[n - 1] == ' ')
		n--;
	if (n >= sizeof(class))
		n = sizeof(class) - 1;
	memcpy(class, reason, n);
	class[n] = '\0';
	return (int)(reason_slot(env->metrics, n > 0 ? class : "other") -
	    env->metrics->reason);
}

void
metrics_dead_lettered(struct journeyd *env, int reason_class)
{
	env->metrics->reason[reason_class].count++;
}

void
metrics_redis_roundtrip(struct journeyd *env, enum redis_connection conn,
    int64_t usec)
{
	struct metrics	*m = env->metrics;
	size_t		 i = 0;

	while (i < RTT_BUCKETS && usec > rtt_bound_us[i])
		i++;
	m->rtt_count[conn][i]++;
	m->rtt_sum_us[conn] += usec;
}

static void
add_customers(struct evbuffer *buf, const char *stage, size_t len,
    long long n)
{
	evbuffer_add_printf(buf, "journeyd_customers{stage=\"");
	add_label_value(buf, stage, len);
	evbuffer_add_printf(buf, "\"} %lld\n", n);
}

static void
on_stages(struct journeyd *env, redisReply *r, void *arg)
{
	struct evbuffer			*buf = env->metrics->customers;
	const struct journey_model	*m = &env->conf->model;

	(void)arg;
	if (r->type != REDIS_REPLY_ARRAY)
		return;
	evbuffer_drain(buf, evbuffer_get_length(buf));
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		if (r->element[i]->type != REDIS_REPLY_STRING ||
		    r->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		add_customers(buf, r->element[i]->str, r->element[i]->len,
		    strtoll(r->element[i + 1]->str, NULL, 10));
	}
	/* a stage nobody is in yet is 0, not a gap in a dashboard */
	for (int s = 0; s < m->nstages; s++) {
		size_t	i;

		for (i = 0; i + 1 < r->elements; i += 2)
			if (r->element[i]->type == REDIS_REPLY_STRING &&
			    strcmp(r->element[i]->str, m->stage[s]) == 0)
				break;
		if (i + 1 >= r->elements)
			add_customers(buf, m->stage[s], strlen(m->stage[s]), 0);
	}
}

static void
on_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;
	char		 key[CONFIG_PREFIX_MAX + 8];
	const char	*argv[] = { "HGETALL", key };
	size_t		 argvlen[] = { 7, 0 };

	(void)fd;
	(void)what;
	if (!redis_store_ready(env))
		return;
	argvlen[1] = (size_t)snprintf(key, sizeof(key), "%sstages",
	    env->conf->redis_prefix);
	/* the store drops it with the connection if Redis goes: no harm */
	redis_store_command(env, on_stages, NULL, 2, argv, argvlen);
}

int
metrics_init(struct journeyd *env)
{
	struct metrics	*m;
	struct timeval	 tv = { STAGES_REFRESH_S, 0 };

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -1;
	env->metrics = m;
	if ((m->customers = evbuffer_new()) == NULL ||
	    (m->refresh_ev = event_new(env->base, -1, EV_PERSIST, on_refresh,
	    env)) == NULL || event_add(m->refresh_ev, &tv) == -1)
		return -1;
	return 0;
}

void
metrics_close(struct journeyd *env)
{
	struct metrics	*m = env->metrics;

	if (m == NULL)
		return;
	if (m->customers != NULL)
		evbuffer_free(m->customers);
	if (m->refresh_ev != NULL)
		event_free(m->refresh_ev);
	free(m);
	env->metrics = NULL;
}

static void
add_lag(void *arg, const char *topic, int32_t partition, int64_t lag)
{
	struct evbuffer	*out = arg;

	evbuffer_add_printf(out, "journeyd_consumer_lag{topic=\"");
	add_label_value(out, topic, strlen(topic));
	evbuffer_add_printf(out, "\",partition=\"%d\"} %lld\n", (int)partition,
	    (long long)lag);
}

/*
 * Per connection: when Redis is slow to write, the writer's round trips
 * grow while the reader's (loads, timers) stay short.
 */
static void
add_roundtrips(struct metrics *m, struct evbuffer *out)
{
	const char	*name = "journeyd_redis_roundtrip_seconds";
	const char	*conn_name[] = { "writer", "reader" };

	_Static_assert(REDIS_CONNECTIONS == 2, "a name per connection");
	add_family(out, name, "histogram",
	    "Redis commands from send to reply, by connection.");
	for (int c = 0; c < REDIS_CONNECTIONS; c++) {
		const char	*conn = conn_name[c];
		uint64_t	 cumulative = 0;

		for (size_t i = 0; i < RTT_BUCKETS; i++) {
			cumulative += m->rtt_count[c][i];
			evbuffer_add_printf(out, "%s_bucket{connection=\"%s\","
			    "le=\"%g\"} %llu\n", name, conn,
			    (double)rtt_bound_us[i] / 1e6,
			    (unsigned long long)cumulative);
		}
		cumulative += m->rtt_count[c][RTT_BUCKETS];
		evbuffer_add_printf(out, "%s_bucket{connection=\"%s\","
		    "le=\"+Inf\"} %llu\n%s_sum{connection=\"%s\"} %.6f\n"
		    "%s_count{connection=\"%s\"} %llu\n", name, conn,
		    (unsigned long long)cumulative, name, conn,
		    (double)m->rtt_sum_us[c] / 1e6, name, conn,
		    (unsigned long long)cumulative);
	}
}

void
metrics_render(struct journeyd *env, struct evbuffer *out)
{
	struct metrics	*m = env->metrics;
	const char	*name;

	name = "journeyd_events_total";
	add_family(out, name, "counter", "Events consumed, by outcome.");
	add_sample(out, name, "outcome", "applied", env->stats.applied);
	add_sample(out, name, "outcome", "duplicate", env->stats.duplicates);
	add_sample(out, name, "outcome", "dead_lettered",
	    env->stats.dead_lettered);

	name = "journeyd_alerts_total";
	add_family(out, name, "counter", "Alerts produced, by type.");
	for (int i = 0; i < JOURNEY_CHANGE_KINDS; i++)
		add_sample(out, name, "type", alert_type(i),
		    env->stats.alerts[i]);

	name = "journeyd_dead_letters_total";
	add_family(out, name, "counter",
	    "Events sent to the dead-letter topic, by reason.");
	for (int i = 0; i < m->nreasons; i++)
		add_sample(out, name, "reason", m->reason[i].name,
		    m->reason[i].count);

	add_single(out, "journeyd_inflight_events", "gauge",
	    "Events consumed and not yet durable.",
	    env->inflight);

	add_family(out, "journeyd_consumer_lag", "gauge",
	    "Events in Kafka not yet consumed, per assigned partition.");
	kafka_source_lags(env, add_lag, out);

	add_family(out, "journeyd_customers", "gauge",
	    "Customers per stage, as last read from Redis.");
	evbuffer_add(out, evbuffer_pullup(m->customers, -1),
	    evbuffer_get_length(m->customers));

	add_roundtrips(m, out);

	add_single(out, "journeyd_redis_up", "gauge",
	    "1 while the Redis connection is ready.",
	    redis_store_ready(env));
	add_single(out, "journeyd_kafka_up", "gauge",
	    "0 while the consumer reports every broker down.",
	    kafka_source_reachable(env));
	add_single(out, "journeyd_kafka_left_group", "gauge",
	    "1 from leaving the consumer group after a long outage of Redis "
	    "to joining again.",
	    kafka_source_left_group(env));

	add_single(out, "journeyd_kafka_offsets_gone_total", "counter",
	    "Input offsets Kafka's retention deleted before they were read.",
	    kafka_source_offsets_gone(env));
	add_single(out, "journeyd_kafka_partitions_held", "gauge",
	    "Input partitions held: their log starts again below where it "
	    "was read.",
	    kafka_source_held(env, NULL, 0));

	add_single(out, "journeyd_produced_again_total", "counter",
	    "Alerts and dead letters produced again after a failed delivery.",
	    kafka_sink_resent(env));

	add_single(out, "journeyd_reloads_total", "counter",
	    "Configurations put in force by SIGHUP.",
	    env->stats.reloads);
}
