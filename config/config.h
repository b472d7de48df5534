/*
 * config.h: journeyd's configuration, one "key = value" file.
 * config/journeyd.conf documents every key and its default.
 */
#ifndef JOURNEYD_CONFIG_H
#define JOURNEYD_CONFIG_H

#include <stddef.h>

#include "journey.h"
#include "log.h"

#define CONFIG_TOPICS_MAX	16
#define CONFIG_ERR_MAX		512
#define CONFIG_PREFIX_MAX	64	/* bytes of redis.prefix */
/* the most max_inflight may be: 4 times it is librdkafka's (before 2.0)
 * largest producer queue, which holds what events in flight produce */
#define CONFIG_INFLIGHT_MAX	2500000

enum config_scope {
	CONFIG_SCOPE_BOTH,	/* kafka.<property> */
	CONFIG_SCOPE_CONSUMER,	/* kafka.consumer.<property> */
	CONFIG_SCOPE_PRODUCER,	/* kafka.producer.<property> */
};

enum config_clock {
	CONFIG_CLOCK_WALL,	/* deadlines fall due by this machine's clock */
	CONFIG_CLOCK_EVENT,	/* by stream time: latest event time - lateness */
};

struct config_kafka_prop {
	enum config_scope	 scope;
	int			 line;
	char			*name;
	char			*value;
};

struct config {
	char			*path;
	char			*brokers;
	char			*group;
	int			 ninput;
	char			*input_topic[CONFIG_TOPICS_MAX];
	char			*topic_stage_change;
	char			*topic_churn_risk;
	char			*topic_dead_letter;
	size_t			 nprops;
	struct config_kafka_prop *props;

	char			*redis_host;	/* NULL when redis_unix is set */
	int			 redis_port;
	char			*redis_unix;
	char			*redis_password;
	int			 redis_db;
	char			*redis_prefix;
	int			 redis_timeout_ms;

	int			 max_inflight;
	int			 batch_max;
	int			 drain_timeout_ms;
	size_t			 event_max_bytes;
	int			 event_max_future_ms;
	enum log_level		 log_level;
	enum config_clock	 clock;
	int64_t			 clock_lateness_ms;

	char			*http_host;	/* NULL: http = off */
	int			 http_port;
	int			 health_max_lag;

	/* stages, rules, event traits, churn parameters, map segments */
	struct journey_model	 model;
};

/*
 * Reads and validates path. On error returns -1 with "FILE:LINE: what is
 * wrong" (or "FILE: ..." for whole-file problems) in err.
 */
int	config_load(const char *path, struct config **out,
	    char err[CONFIG_ERR_MAX]);
void	config_free(struct config *conf);

/*
 * For a reload: next takes from running the keys that only a restart can
 * change (the Kafka clients, the Redis connection, the batch buffer and
 * the HTTP listener are built from them), and running gets next's values
 * in exchange, to be freed with it. Every other field of next, including
 * any key added later, comes into force. changed(key) is called for each
 * kept key whose value the new file differs in.
 */
void	config_keep_restart_keys(struct config *next, struct config *running,
	    void (*changed)(const char *key));

#endif
