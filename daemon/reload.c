/*
 * reload.c: SIGHUP puts an edited config file in force without a restart.
 *
 * The file is read whole at once, with config_load, so a broken one is
 * refused with its FILE:LINE and the running config stays in force
 * untouched. A good one cannot replace the running one at once: batches in
 * flight point into it (the stage names of its model, its topic names), so
 * it waits in conf_next while the pump takes nothing new, and the pump
 * swaps it in once nothing is in flight (customers are cached only while
 * a batch holds them, so none decoded with the old model survives). The
 * keys the running Kafka clients, Redis connection, batch buffer and HTTP
 * listener were built from are kept (config_keep_restart_keys); every
 * other key, present or future, comes into force.
 */
#include "journeyd.h"
#include "log.h"

/*
 * Before start-up completes (the consumer opens with the first READY=1)
 * the service manager must not hear READY=1 from a reload.
 */
static int
started(struct journeyd *env)
{
	return env->source != NULL;
}

void
reload_request(struct journeyd *env)
{
	struct config	*next;
	char		 err[CONFIG_ERR_MAX];

	if (env->stopping)
		return;
	if (started(env))
		notify_reloading();
	log_info("reloading %s", env->conf->path);
	if (config_load(env->conf->path, &next, err) == -1) {
		log_warnx("reload refused, running config kept: %s", err);
		goto refused;
	}
	/*
	 * kafka.* lines wait for a restart, which must not then fail on
	 * them (the service manager would restart it again and again)
	 */
	if (kafka_conf_check(next, err, sizeof(err)) == -1) {
		log_warnx("reload refused, running config kept: %s:%s (journeyd "
		    "could not start with it)", next->path, err);
		config_free(next);
		goto refused;
	}
	/* a second SIGHUP before the first took effect: the newer file wins */
	config_free(env->conf_next);
	env->conf_next = next;
	if (env->inflight > 0)
		log_info("reload waits for %lld events in flight",
		    (long long)env->inflight);
	batch_schedule_pump(env);
	return;
refused:
	/* the reload asked for before is still to come: READY=1 then */
	if (env->conf_next != NULL)
		log_info("the reload asked for before still waits for the "
		    "events in flight");
	else if (started(env))
		notify_ready(env);
}

static void
log_kept(const char *key)
{
	log_warnx("reload: %s changed but needs a restart, kept", key);
}

void
reload_apply(struct journeyd *env)
{
	struct config	*old = env->conf;

	config_keep_restart_keys(env->conf_next, old, log_kept);
	/* pages waiting for Redis read by the old model: let them retry */
	map_page_abort(env, "reloading", 0);
	env->conf = env->conf_next;
	env->conf_next = NULL;
	config_free(old);
	deadlines_reloaded(env);
	env->stats.reloads++;
	/* at the level the reload was asked at, whatever it sets */
	log_info("reloaded %s: %d stages, %zu rules", env->conf->path,
	    env->conf->model.nstages, env->conf->model.nrules);
	if (!env->debug)
		log_setlevel(env->conf->log_level);
	if (started(env))
		notify_ready(env);
}
