/*
 * redis_store.c: journeyd's one asynchronous hiredis connection, attached
 * to the event loop. hiredis 0.14 has no timeouts, so a deadline timer
 * here watches that replies keep coming while commands are outstanding
 * (replies arrive in order, so "no reply for timeout_ms while something is
 * pending" is exactly "the oldest command is overdue").
 * Losing Redis is not survivable yet: the daemon exits without storing the
 * offsets of unfinished work, and a restart replays it from Kafka.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/hiredis.h>

#include "journeyd.h"
#include "log.h"

struct redis_store {
	redisAsyncContext	*ac;
	struct event		*deadline_ev;
	int64_t			 pending;	/* commands awaiting a reply */
	int64_t			 progress_ms;	/* last reply, or first send */
	int			 ready;
};

struct pending_cmd {
	struct journeyd		*env;
	redis_store_cb		 cb;
	void			*arg;
};

static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void __attribute__((noreturn))
store_failed(const char *what, const char *detail)
{
	fatalx("redis: %s%s%s; exiting without storing offsets of unfinished "
	    "work", what, detail ? ": " : "", detail ? detail : "");
}

static void
on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct pending_cmd	*pc = privdata;
	struct journeyd		*env = pc->env;
	struct redis_store	*st = env->store;

	(void)ac;
	st->pending--;
	st->progress_ms = now_ms();
	if (r == NULL) {
		/* the context is going away; its disconnect callback reports */
		free(pc);
		return;
	}
	if (pc->cb != NULL)
		pc->cb(env, r, pc->arg);
	free(pc);
}

int
redis_store_command(struct journeyd *env, redis_store_cb cb, void *arg,
    int argc, const char **argv, const size_t *argvlen)
{
	struct redis_store	*st = env->store;
	struct pending_cmd	*pc;

	if ((pc = malloc(sizeof(*pc))) == NULL)
		return -1;
	pc->env = env;
	pc->cb = cb;
	pc->arg = arg;
	if (redisAsyncCommandArgv(st->ac, on_reply, pc, argc, argv,
	    argvlen) != REDIS_OK) {
		free(pc);
		return -1;
	}
	if (st->pending++ == 0)
		st->progress_ms = now_ms();
	return 0;
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd		*env = arg;
	struct redis_store	*st = env->store;
	char			 detail[96];

	(void)fd;
	(void)what;
	if (st->pending > 0 &&
	    now_ms() - st->progress_ms > env->conf->redis_timeout_ms) {
		snprintf(detail, sizeof(detail), "%lld commands waiting",
		    (long long)st->pending);
		store_failed("no reply within redis.timeout_ms", detail);
	}
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	if (status != REDIS_OK)
		store_failed("cannot connect", ac->errstr);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	/* a clean disconnect only happens when we close at shutdown */
	if (status != REDIS_OK)
		store_failed("connection lost", ac->errstr);
}

static void
on_setup_reply(struct journeyd *env, redisReply *r, void *arg)
{
	const char	*what = arg;

	if (r->type == REDIS_REPLY_ERROR)
		store_failed(what, r->str);
	if (strcmp(what, "PING") == 0) {
		env->store->ready = 1;
		log_info("redis: connected");
		journeyd_redis_ready(env);
	}
}

int
redis_store_open(struct journeyd *env)
{
	struct config		*conf = env->conf;
	struct redis_store	*st;
	struct timeval		 tick;
	char			 db[16];
	const char		*argv[3];
	size_t			 argvlen[3];

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -1;
	env->store = st;
	if (conf->redis_unix != NULL)
		st->ac = redisAsyncConnectUnix(conf->redis_unix);
	else
		st->ac = redisAsyncConnect(conf->redis_host, conf->redis_port);
	if (st->ac == NULL || st->ac->err) {
		log_warnx("redis: cannot connect: %s",
		    st->ac ? st->ac->errstr : "out of memory");
		return -1;
	}
	if (redisLibeventAttach(st->ac, env->base) != REDIS_OK)
		return -1;
	redisAsyncSetConnectCallback(st->ac, on_connect);
	redisAsyncSetDisconnectCallback(st->ac, on_disconnect);

	/* hiredis queues these until the socket connects */
	if (conf->redis_password != NULL) {
		argv[0] = "AUTH";
		argv[1] = conf->redis_password;
		argvlen[0] = 4;
		argvlen[1] = strlen(conf->redis_password);
		if (redis_store_command(env, on_setup_reply, "AUTH", 2, argv,
		    argvlen) == -1)
			return -1;
	}
	if (conf->redis_db != 0) {
		snprintf(db, sizeof(db), "%d", conf->redis_db);
		argv[0] = "SELECT";
		argv[1] = db;
		argvlen[0] = 6;
		argvlen[1] = strlen(db);
		if (redis_store_command(env, on_setup_reply, "SELECT", 2, argv,
		    argvlen) == -1)
			return -1;
	}
	argv[0] = "PING";
	argvlen[0] = 4;
	if (redis_store_command(env, on_setup_reply, "PING", 1, argv,
	    argvlen) == -1)
		return -1;

	if ((st->deadline_ev = event_new(env->base, -1, EV_PERSIST,
	    on_deadline, env)) == NULL)
		return -1;
	tick.tv_sec = 0;
	tick.tv_usec = 100 * 1000;
	return event_add(st->deadline_ev, &tick);
}

void
redis_store_close(struct journeyd *env)
{
	struct redis_store	*st = env->store;

	if (st == NULL)
		return;
	if (st->deadline_ev != NULL)
		event_free(st->deadline_ev);
	if (st->ac != NULL)
		redisAsyncFree(st->ac);	/* reports REDIS_OK: not a failure */
	free(st);
	env->store = NULL;
}
