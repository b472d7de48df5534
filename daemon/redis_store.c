/*
 * redis_store.c: journeyd's one asynchronous hiredis connection, attached
 * to the event loop, with what hiredis 0.14 lacks: deadlines and
 * reconnection.
 *
 * A deadline timer watches that replies keep coming while commands are
 * outstanding (replies arrive in order, so "no reply for timeout_ms while
 * something is pending" is exactly "the oldest command is overdue"), and
 * sends a PING when the connection has been idle for half of that; a
 * frozen Redis is treated like a lost one. When the connection is lost the
 * daemon is told (journeyd_redis_lost) so it can abandon in-flight work
 * and pause Kafka, and the store reconnects with capped exponential
 * backoff. Commands queued on a lost connection are dropped: their
 * callbacks never run.
 *
 * A connection we gave up on may still hold commands in the server's
 * socket buffer (a frozen Redis reads them once it runs again), and a
 * batch transaction executed after we resumed would apply its changes on
 * top of their replay. So on reconnecting to the same server process (same
 * run_id) the old connection is killed server-side, by its client id,
 * before anything else is sent: whatever it had not executed is discarded.
 * Client ids are never reused within one server's lifetime; after a
 * restart (new run_id) the old connection is gone anyway.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/hiredis.h>

#include "journeyd.h"
#include "log.h"

#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		5000
#define DEADLINE_TICK_MS	100

struct redis_store {
	redisAsyncContext	*ac;
	struct event		*deadline_ev;
	struct event		*reconnect_ev;
	int64_t			 pending;	/* commands awaiting a reply */
	int64_t			 progress_ms;	/* last reply, or first send */
	int64_t			 last_tick_ms;	/* of the deadline timer */
	int			 backoff_ms;
	int			 ready;
	uint64_t		 reconnects;
	long long		 client_id;		/* this connection */
	long long		 last_client_id;	/* last ready one */
	char			 run_id[41];		/* of this server */
	char			 last_run_id[41];
	int			 nscripts;
	const char		*script[REDIS_STORE_SCRIPTS_MAX];
	char			 sha[REDIS_STORE_SCRIPTS_MAX][41];
};

struct pending_cmd {
	struct journeyd		*env;
	redis_store_cb		 cb;
	void			*arg;
	int64_t			 sent_us;	/* for the round-trip metric */
};

static void	store_connect(struct journeyd *);

static int64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
now_ms(void)
{
	return now_us() / 1000;
}

/*
 * The connection is gone or useless. free_it is set when we, not hiredis,
 * must release the context (hiredis frees it itself after reporting a
 * failed connect or a disconnect).
 */
static void
store_lost(struct journeyd *env, const char *why, const char *detail,
    int free_it)
{
	struct redis_store	*st = env->store;
	redisAsyncContext	*ac = st->ac;
	struct timeval		 tv;
	int			 was_ready = st->ready;

	st->ac = NULL;
	st->ready = 0;
	st->pending = 0;
	log_warnx("redis: %s%s%s; reconnecting in %d ms", why,
	    detail ? ": " : "", detail ? detail : "", st->backoff_ms);
	if (ac != NULL && free_it)
		redisAsyncFree(ac);	/* pending callbacks get no reply */
	if (was_ready)
		journeyd_redis_lost(env);
	tv.tv_sec = st->backoff_ms / 1000;
	tv.tv_usec = (st->backoff_ms % 1000) * 1000;
	evtimer_add(st->reconnect_ev, &tv);
	st->backoff_ms *= 2;
	if (st->backoff_ms > BACKOFF_MAX_MS)
		st->backoff_ms = BACKOFF_MAX_MS;
}

static void
on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct pending_cmd	*pc = privdata;
	struct journeyd		*env = pc->env;
	struct redis_store	*st = env->store;

	if (r != NULL && ac == st->ac) {
		int64_t	now = now_us();

		st->pending--;
		st->progress_ms = now / 1000;
		metrics_redis_roundtrip(env, now - pc->sent_us);
		if (pc->cb != NULL)
			pc->cb(env, r, pc->arg);
	}
	free(pc);
}

/*
 * Queues a command, given either as argv or already in RESP (cmd), with
 * the bookkeeping every command gets: its round trip and progress.
 */
static int
send_command(struct journeyd *env, redis_store_cb cb, void *arg, int argc,
    const char **argv, const size_t *argvlen, const char *cmd, size_t len)
{
	struct redis_store	*st = env->store;
	struct pending_cmd	*pc;
	int64_t			 now = now_us();
	int			 rc;

	if (st->ac == NULL || (pc = malloc(sizeof(*pc))) == NULL)
		return -1;
	pc->env = env;
	pc->cb = cb;
	pc->arg = arg;
	pc->sent_us = now;
	if (cmd != NULL)
		rc = redisAsyncFormattedCommand(st->ac, on_reply, pc, cmd, len);
	else
		rc = redisAsyncCommandArgv(st->ac, on_reply, pc, argc, argv,
		    argvlen);
	if (rc != REDIS_OK) {
		free(pc);
		return -1;
	}
	if (st->pending++ == 0)
		st->progress_ms = now / 1000;
	return 0;
}

int
redis_store_command(struct journeyd *env, redis_store_cb cb, void *arg,
    int argc, const char **argv, const size_t *argvlen)
{
	if (!env->store->ready)
		return -1;
	return send_command(env, cb, arg, argc, argv, argvlen, NULL, 0);
}

int
redis_store_formatted(struct journeyd *env, redis_store_cb cb, void *arg,
    const char *cmd, size_t len)
{
	if (!env->store->ready)
		return -1;
	return send_command(env, cb, arg, 0, NULL, NULL, cmd, len);
}

int
redis_store_command_v(struct journeyd *env, int argc, const char **argv)
{
	size_t	argvlen[32];

	if (argc > 32)
		return -1;
	for (int i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	return redis_store_command(env, NULL, NULL, argc, argv, argvlen);
}

void
redis_store_fail(struct journeyd *env, const char *why, const char *detail)
{
	if (env->store->ac != NULL)
		store_lost(env, why, detail, 1);
}

int
redis_store_add_script(struct journeyd *env, const char *lua)
{
	struct redis_store	*st = env->store;

	if (st->nscripts == REDIS_STORE_SCRIPTS_MAX)
		return -1;
	st->script[st->nscripts] = lua;
	return st->nscripts++;
}

const char *
redis_store_script_sha(struct journeyd *env, int script)
{
	return env->store->sha[script];
}

int
redis_store_ready(struct journeyd *env)
{
	return env->store != NULL && env->store->ready;
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd		*env = arg;
	struct redis_store	*st = env->store;
	char			 detail[64];

	int64_t			 now = now_ms(), stall;
	const char		*ping[] = { "PING" };
	size_t			 pinglen[] = { 4 };

	(void)fd;
	(void)what;
	/*
	 * Time our own loop spent busy elsewhere is not Redis's delay: its
	 * replies may be sitting unread in the socket. Leave it out.
	 */
	stall = now - st->last_tick_ms - DEADLINE_TICK_MS;
	st->last_tick_ms = now;
	if (stall > DEADLINE_TICK_MS)
		st->progress_ms += stall;
	if (st->ac != NULL && st->pending > 0 &&
	    now - st->progress_ms > env->conf->redis_timeout_ms) {
		snprintf(detail, sizeof(detail), "%lld commands waiting",
		    (long long)st->pending);
		store_lost(env, "no reply within redis.timeout_ms", detail, 1);
		return;
	}
	/* idle: ask, so that a dead or frozen Redis is noticed all the same */
	if (st->ready && st->pending == 0 &&
	    now - st->progress_ms > env->conf->redis_timeout_ms / 2)
		send_command(env, NULL, NULL, 1, ping, pinglen, NULL, 0);
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct journeyd	*env = ac->data;

	if (status != REDIS_OK && env->store->ac == ac)
		store_lost(env, "cannot connect", ac->errstr, 0);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct journeyd	*env = ac->data;

	/* a context we dropped ourselves is no longer env->store->ac */
	if (env->store->ac == ac)
		store_lost(env, "connection lost",
		    status == REDIS_OK ? "closed" : ac->errstr, 0);
}

static void	on_setup_reply(struct journeyd *, redisReply *, void *);

static void
send_setup(struct journeyd *env, const char *what, int argc,
    const char **argv)
{
	size_t	argvlen[4];

	for (int i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	send_command(env, on_setup_reply, (void *)what, argc, argv, argvlen,
	    NULL, 0);
}

/* After INFO: fence off the previous connection, then PING. */
static void
fence_and_ping(struct journeyd *env, const char *info)
{
	struct redis_store	*st = env->store;
	const char		*p = strstr(info, "run_id:");
	char			 id[32];
	const char		*kill[] = { "CLIENT", "KILL", "ID", id };
	const char		*ping[] = { "PING" };
	size_t			 n;

	st->run_id[0] = '\0';
	if (p != NULL) {
		p += 7;
		n = strcspn(p, "\r\n");
		if (n < sizeof(st->run_id)) {
			memcpy(st->run_id, p, n);
			st->run_id[n] = '\0';
		}
	}
	if (st->last_client_id > 0 && st->run_id[0] != '\0' &&
	    strcmp(st->run_id, st->last_run_id) == 0) {
		snprintf(id, sizeof(id), "%lld", st->last_client_id);
		log_info("redis: fencing off our previous connection (client "
		    "id %s)", id);
		send_setup(env, "CLIENT KILL", 4, kill);
	}
	send_setup(env, "PING", 1, ping);
}

static void
on_setup_reply(struct journeyd *env, redisReply *r, void *arg)
{
	struct redis_store	*st = env->store;
	const char		*what = arg;

	if (strcmp(what, "CLIENT KILL") == 0)
		return;		/* "No such client": it is gone already */
	if (r->type == REDIS_REPLY_ERROR) {
		store_lost(env, what, r->str, 1);
		return;
	}
	if (strcmp(what, "CLIENT ID") == 0 &&
	    r->type == REDIS_REPLY_INTEGER) {
		st->client_id = r->integer;
		return;
	}
	if (strcmp(what, "SCRIPT LOAD") == 0) {
		if (r->type != REDIS_REPLY_STRING || r->len != 40) {
			store_lost(env, what, "unexpected reply", 1);
			return;
		}
		/* Redis answers in order: the first unanswered script */
		for (int i = 0; i < st->nscripts; i++)
			if (st->sha[i][0] == '\0') {
				memcpy(st->sha[i], r->str, 41);
				break;
			}
		return;
	}
	if (strcmp(what, "INFO") == 0) {
		fence_and_ping(env, r->type == REDIS_REPLY_STRING ? r->str : "");
		return;
	}
	if (strcmp(what, "PING") != 0)
		return;
	st->last_client_id = st->client_id;
	memcpy(st->last_run_id, st->run_id, sizeof(st->last_run_id));
	st->ready = 1;
	st->backoff_ms = BACKOFF_MIN_MS;
	log_info("redis: connected%s", st->reconnects ? " again" : "");
	st->reconnects++;
	journeyd_redis_ready(env);
}

static void
store_connect(struct journeyd *env)
{
	struct config		*conf = env->conf;
	struct redis_store	*st = env->store;
	char			 db[16];
	const char		*auth[] = { "AUTH", conf->redis_password };
	const char		*select[] = { "SELECT", db };
	const char		*client_id[] = { "CLIENT", "ID" };
	const char		*info[] = { "INFO", "server" };

	if (conf->redis_unix != NULL)
		st->ac = redisAsyncConnectUnix(conf->redis_unix);
	else
		st->ac = redisAsyncConnect(conf->redis_host, conf->redis_port);
	if (st->ac == NULL)
		fatalx("redis: out of memory");
	if (st->ac->err) {
		store_lost(env, "cannot connect", st->ac->errstr, 1);
		return;
	}
	st->ac->data = env;
	if (redisLibeventAttach(st->ac, env->base) != REDIS_OK) {
		store_lost(env, "cannot attach to the event loop", NULL, 1);
		return;
	}
	redisAsyncSetConnectCallback(st->ac, on_connect);
	redisAsyncSetDisconnectCallback(st->ac, on_disconnect);

	/* hiredis queues these until the socket connects */
	if (conf->redis_password != NULL)
		send_setup(env, "AUTH", 2, auth);
	if (conf->redis_db != 0) {
		snprintf(db, sizeof(db), "%d", conf->redis_db);
		send_setup(env, "SELECT", 2, select);
	}
	/* a restarted Redis has an empty script cache: load on every connect */
	for (int i = 0; i < st->nscripts; i++) {
		const char	*load[] = { "SCRIPT", "LOAD", st->script[i] };

		st->sha[i][0] = '\0';
		send_setup(env, "SCRIPT LOAD", 3, load);
	}
	st->client_id = 0;
	send_setup(env, "CLIENT ID", 2, client_id);
	send_setup(env, "INFO", 2, info);	/* its reply sends PING */
}

static void
on_reconnect(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	store_connect(arg);
}

int
redis_store_open(struct journeyd *env)
{
	struct redis_store	*st;
	struct timeval		 tick = { 0, DEADLINE_TICK_MS * 1000 };

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -1;
	env->store = st;
	st->backoff_ms = BACKOFF_MIN_MS;
	st->last_tick_ms = now_ms();
	if ((st->deadline_ev = event_new(env->base, -1, EV_PERSIST,
	    on_deadline, env)) == NULL ||
	    (st->reconnect_ev = evtimer_new(env->base, on_reconnect,
	    env)) == NULL || event_add(st->deadline_ev, &tick) == -1)
		return -1;
	return 0;
}

void
redis_store_start(struct journeyd *env)
{
	store_connect(env);
}

/*
 * Sends what is still queued (the last words, such as removing this
 * instance's heartbeat) before the connection goes: the loop has stopped
 * and will not write it. A few tries, never waiting for the server.
 */
static void
flush_output(redisAsyncContext *ac)
{
	int	done = 0;

	for (int tries = 0; tries < 100 && !done; tries++)
		if (redisBufferWrite(&ac->c, &done) == REDIS_ERR)
			return;
}

void
redis_store_close(struct journeyd *env)
{
	struct redis_store	*st = env->store;
	redisAsyncContext	*ac;

	if (st == NULL)
		return;
	if (st->deadline_ev != NULL)
		event_free(st->deadline_ev);
	if (st->reconnect_ev != NULL)
		event_free(st->reconnect_ev);
	if ((ac = st->ac) != NULL) {
		st->ac = NULL;
		flush_output(ac);
		redisAsyncFree(ac);
	}
	free(st);
	env->store = NULL;
}
