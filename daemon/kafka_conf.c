/*
 * kafka_conf.c: how journeyd configures its librdkafka clients: its own
 * defaults, then the operator's kafka.* properties, then the settings its
 * guarantees depend on; and librdkafka's log lines routed into ours.
 */
#include "journeyd.h"
#include "log.h"

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
kafka_conf_apply(struct journeyd *env, rd_kafka_conf_t *kc,
    enum config_scope scope, const char *const *defaults)
{
	struct config	*conf = env->conf;
	char		 errstr[256];

	for (; defaults[0] != NULL; defaults += 2)
		if (rd_kafka_conf_set(kc, defaults[0], defaults[1], errstr,
		    sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto bad;
	for (size_t i = 0; i < conf->nprops; i++) {
		struct config_kafka_prop	*p = &conf->props[i];

		if (p->scope != CONFIG_SCOPE_BOTH && p->scope != scope)
			continue;
		if (rd_kafka_conf_set(kc, p->name, p->value, errstr,
		    sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto bad;
	}
	if (rd_kafka_conf_set(kc, "bootstrap.servers", conf->brokers, errstr,
	    sizeof(errstr)) != RD_KAFKA_CONF_OK)
		goto bad;
	rd_kafka_conf_set_log_cb(kc, kafka_conf_log);
	rd_kafka_conf_set_opaque(kc, env);
	return 0;
bad:
	log_warnx("kafka: %s", errstr);
	return -1;
}
