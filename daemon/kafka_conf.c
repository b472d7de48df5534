/*
 * kafka_conf.c: how journeyd configures its librdkafka clients: its own
 * defaults, then the operator's kafka.* properties, then the settings its
 * guarantees depend on; librdkafka's log lines routed into ours; and the
 * check of `journeyd -n` that both clients can be made of a config.
 */
#include <stdio.h>

#include "journeyd.h"
#include "log.h"

/* journeyd's defaults: the operator's kafka.* lines come after them */
static const char *const producer_defaults[] = {
	"linger.ms", "1",
	"client.id", "journeyd",
	/*
	 * the Java clients' partitioner: an alert goes to the partition a
	 * Java producer would put its customer's key in, so alert topics can
	 * be joined with topics those keep (Kafka Streams needs it)
	 */
	"partitioner", "murmur2_random",
	NULL, NULL,
};
static const char *const consumer_defaults[] = {
	"enable.auto.commit", "true",
	"auto.commit.interval.ms", "1000",
	"fetch.wait.max.ms", "10",
	"client.id", "journeyd",
	"statistics.interval.ms", "1000",
	NULL, NULL,
};

/* librdkafka calls this from its own threads: it only writes to stderr */
static void
kafka_conf_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
	if (level <= 4)
		log_warnx("kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
	else if (level <= 6)
		log_info("kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
	else
		log_debug("kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int
kafka_conf_error_logged(int err)
{
	/* a broker's connection failed: its FAIL line says so, and why */
	return err == RD_KAFKA_RESP_ERR__TRANSPORT ||
	    err == RD_KAFKA_RESP_ERR__RESOLVE;
}

static int
set(rd_kafka_conf_t *kc, const char *name, const char *value, char *errstr,
    size_t size)
{
	return rd_kafka_conf_set(kc, name, value, errstr, size) ==
	    RD_KAFKA_CONF_OK ? 0 : -1;
}

/*
 * The configuration the client of scope (the producer or the consumer)
 * runs with, or NULL with why in errstr. Every property is one config
 * checked alone; what they are together, librdkafka checks only when the
 * client is made (kafka_conf_check).
 */
static rd_kafka_conf_t *
client_conf(const struct config *conf, enum config_scope scope,
    char *errstr, size_t size)
{
	rd_kafka_conf_t		*kc = rd_kafka_conf_new();
	const char *const	*d = scope == CONFIG_SCOPE_PRODUCER ?
				    producer_defaults : consumer_defaults;
	char			 qmax[32];

	for (; d[0] != NULL; d += 2)
		if (set(kc, d[0], d[1], errstr, size) == -1)
			goto fail;
	for (size_t i = 0; i < conf->nprops; i++) {
		const struct config_kafka_prop	*p = &conf->props[i];

		if ((p->scope == CONFIG_SCOPE_BOTH || p->scope == scope) &&
		    set(kc, p->name, p->value, errstr, size) == -1)
			goto fail;
	}
	if (set(kc, "bootstrap.servers", conf->brokers, errstr, size) == -1)
		goto fail;
	if (scope == CONFIG_SCOPE_PRODUCER) {
		/*
		 * Every in-flight event can queue at most a few messages:
		 * never full by their count, whatever max_inflight a reload
		 * sets (the producer stays). What they hold is bounded by
		 * queue.buffering.max.kbytes. (librdkafka before 2.0 takes
		 * at most 10000000.)
		 */
		snprintf(qmax, sizeof(qmax), "%d", CONFIG_INFLIGHT_MAX * 4);
		if (set(kc, "queue.buffering.max.messages", qmax, errstr,
		    size) == -1 || set(kc, "enable.idempotence", "true",
		    errstr, size) == -1)
			goto fail;
	} else if (set(kc, "group.id", conf->group, errstr, size) == -1 ||
	    set(kc, "enable.auto.offset.store", "false", errstr, size) == -1 ||
	    set(kc, "enable.partition.eof", "false", errstr, size) == -1 ||
	    /* kafka_source tells a log that moved from where it was read */
	    set(kc, "auto.offset.reset", "earliest", errstr, size) == -1)
		goto fail;
	return kc;
fail:
	rd_kafka_conf_destroy(kc);
	return NULL;
}

rd_kafka_conf_t *
kafka_conf_client(struct journeyd *env, enum config_scope scope)
{
	rd_kafka_conf_t	*kc;
	char		 errstr[256];

	if ((kc = client_conf(env->conf, scope, errstr, sizeof(errstr))) ==
	    NULL) {
		log_warnx("kafka: %s", errstr);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(kc, kafka_conf_log);
	rd_kafka_conf_set_opaque(kc, env);
	return kc;
}

int
kafka_conf_check(const struct config *conf, char *why, size_t size)
{
	const enum config_scope	 scope[] = { CONFIG_SCOPE_PRODUCER,
				    CONFIG_SCOPE_CONSUMER };
	rd_kafka_conf_t		*kc;
	rd_kafka_t		*rk;
	char			 errstr[256];
	int			 line = 0;

	for (size_t s = 0; s < sizeof(scope) / sizeof(scope[0]); s++) {
		/* rd_kafka_new takes kc only when it makes the client */
		if ((kc = client_conf(conf, scope[s], errstr,
		    sizeof(errstr))) != NULL &&
		    set(kc, "log_level", "0", errstr, sizeof(errstr)) == 0 &&
		    (rk = rd_kafka_new(scope[s] == CONFIG_SCOPE_PRODUCER ?
		    RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, kc, errstr,
		    sizeof(errstr))) != NULL) {
			/* it joined no group: nothing to leave */
			rd_kafka_destroy_flags(rk,
			    RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
			continue;
		}
		if (kc != NULL)
			rd_kafka_conf_destroy(kc);
		/* the operator's lines are what can clash: the last one */
		for (size_t i = 0; i < conf->nprops; i++)
			if (conf->props[i].scope == CONFIG_SCOPE_BOTH ||
			    conf->props[i].scope == scope[s])
				line = conf->props[i].line;
		snprintf(why, size, "%d: kafka.* lines make no %s: %s", line,
		    scope[s] == CONFIG_SCOPE_PRODUCER ? "producer" :
		    "consumer", errstr);
		return -1;
	}
	return 0;
}
