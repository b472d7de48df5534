/*
 * redis_store.c: journeyd's asynchronous hiredis connections to Redis,
 * attached to the event loop, with what hiredis 0.14 lacks: deadlines and
 * reconnection.
 *
 * There are two. The writer carries the state writes and everything whose
 * order matters to them; the reader carries reads that may overtake the
 * writes queued before them (a batch's loads, the timers' scans, the name
 * table: see redis_store_read). Replies on one connection come in order, so
 * on a single one a load waited behind every state write sent before it:
 * when Redis slows down (an AOF rewrite's fork and copy-on-write made each
 * write four times slower), the writes in flight held up the next batch's
 * loads, and with them its alerts, by hundreds of milliseconds. Redis
 * serves its clients in turn, so a read on its own connection waits for one
 * write at most. The two are one store: it is ready when both are, and
 * losing either is losing Redis.
 *
 * A deadline timer watches, on each connection, that replies keep coming
 * while commands are outstanding (replies arrive in order, so "no reply for
 * timeout_ms while something is pending" is exactly "the oldest command is
 * overdue"), and sends a PING when it has been idle for half of that; a
 * frozen Redis is treated like a lost one. When Redis is lost the daemon is
 * told (journeyd_redis_lost) so it can abandon in-flight work and pause
 * Kafka, and the store reconnects with capped exponential backoff. Commands
 * queued on a lost connection are dropped: their callbacks never run.
 *
 * A connection we gave up on may still hold commands in the server's socket
 * buffer (a frozen Redis reads them once it runs again), and a batch
 * transaction executed after we resumed would apply its changes on top of
 * their replay. So on reconnecting to the same server process (same run_id)
 * the old writer is killed server-side, by its client id, before anything
 * else is sent: whatever it had not executed is discarded (the old reader's
 * leftovers are reads, harmless). Client ids are never reused within one
 * server's lifetime; after a restart (new run_id) the old connection is
 * gone anyway. The same INFO tells whether Redis persists and keeps its
 * keys as the guarantees assume; if not, it is logged, not refused.
 *
 * A Redis that answers but refuses writes (full under noeviction, a disk
 * error, a replica, an ACL) is as useless as a lost one, and is treated
 * as one. Setup ends with a write (the new writer's chain, at 0): were
 * it to count as up, each reconnect would resume consuming, and produce
 * the alerts of up to max_inflight events again before their first state
 * write found Redis still full. And a write sent with no callback that
 * Redis refuses so (the heartbeat, the deadline index's marks and tags)
 * loses the connection too: else its refusal goes unseen, and a tag not
 * recorded stays wrong until a restart. The new writer's chain expires a
 * minute after its setup unless a state write sets it again: a state
 * write takes a missing chain for 0, and connections that never write
 * (a reconnection refused each time) leave no key for a day.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/hiredis.h>

#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		5000
#define DEADLINE_TICK_MS	100
#define CHAIN_SETUP_TTL_MS	60000

struct redis_link {
	enum redis_connection	 conn;
	redisAsyncContext	*ac;
	int64_t			 pending;	/* commands awaiting a reply */
	int64_t			 progress_ms;	/* last reply, or first send */
	int			 up;		/* its setup is answered */
};

struct redis_store {
	struct redis_link	 link[REDIS_CONNECTIONS];
	struct event		*deadline_ev;
	struct event		*reconnect_ev;
	int64_t			 last_tick_ms;	/* of the deadline timer */
	int64_t			 ready_ms;	/* when it was last ready */
	int			 backoff_ms;
	int			 ready;
	uint64_t		 reconnects;
	long long		 client_id;		/* this writer */
	long long		 last_client_id;	/* the last ready one */
	char			 run_id[41];		/* of this server */
	char			 last_run_id[41];	/* of the last ready */
	int			 server_changed;	/* since the last ready */
	char			 trouble[160];	/* why it was lost last */
	/* the writer's chain of state writes: redis_store_writer_chain */
	char			 writer_name[64];
	uint64_t		 writer_links;
	int			 nscripts;
	const char		*script[REDIS_STORE_SCRIPTS_MAX];
	char			 sha[REDIS_STORE_SCRIPTS_MAX][41];
};

struct pending_cmd {
	struct journeyd		*env;
	struct redis_link	*link;
	redis_store_cb		 cb;
	void			*arg;
	int64_t			 sent_us;	/* for the round-trip metric */
	char			 name[16];	/* with no cb: for the log */
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
 * Redis is gone or useless: both connections go. hiredis releases itself
 * the context it reports a failed connect or a disconnect of (released);
 * we release the others.
 */
static void
store_lost(struct journeyd *env, const char *why, const char *detail,
    const redisAsyncContext *released)
{
	struct redis_store	*st = env->store;
	struct timeval		 tv;
	int			 was_ready = st->ready;

	st->ready = 0;
	/*
	 * a new outage starts the backoff afresh; one going on (ready only
	 * for moments) goes on growing it rather than reconnecting ten times
	 * a second for as long as it lasts
	 */
	if (was_ready && now_ms() - st->ready_ms >= REDIS_STABLE_MS)
		st->backoff_ms = BACKOFF_MIN_MS;
	for (int l = 0; l < REDIS_CONNECTIONS; l++) {
		redisAsyncContext	*ac = st->link[l].ac;

		st->link[l].ac = NULL;
		st->link[l].pending = 0;
		st->link[l].up = 0;
		if (ac != NULL && ac != released)
			redisAsyncFree(ac);	/* callbacks get no reply */
	}
	snprintf(st->trouble, sizeof(st->trouble), "%s%s%s", why,
	    detail ? ": " : "", detail ? detail : "");
	log_warnx("redis: %s; reconnecting in %d ms", st->trouble,
	    st->backoff_ms);
	if (was_ready)
		journeyd_redis_lost(env);
	tv = timestamp_timeval(st->backoff_ms);
	evtimer_add(st->reconnect_ev, &tv);
	st->backoff_ms *= 2;
	if (st->backoff_ms > BACKOFF_MAX_MS)
		st->backoff_ms = BACKOFF_MAX_MS;
}

/*
 * An error answering a command sent with no callback. Redis refusing
 * writes (full, a replica, a failing disk, an ACL, a script it lost) is
 * Redis lost; anything else is the key's trouble (another tool's key of
 * another type, say): logged, and the stream goes on, as these writes (the
 * heartbeat, the deadline index's marks and tags) are not the journeys'.
 */
static void
unanswered_error(struct journeyd *env, const struct pending_cmd *pc,
    const char *err)
{
	static const char *const refusals[] = { "OOM ", "READONLY ",
	    "MISCONF ", "NOPERM ", "NOREPLICAS ", "NOSCRIPT " };

	for (size_t i = 0; i < sizeof(refusals) / sizeof(*refusals); i++)
		if (strncmp(err, refusals[i], strlen(refusals[i])) == 0) {
			store_lost(env, "write refused", err, NULL);
			return;
		}
	log_warnx("redis: %s refused: %s", pc->name, err);
}

static void
on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct pending_cmd	*pc = privdata;
	struct journeyd		*env = pc->env;

	if (r != NULL && ac == pc->link->ac) {
		int64_t	now = now_us();

		pc->link->pending--;
		pc->link->progress_ms = now / 1000;
		metrics_redis_roundtrip(env, pc->link->conn,
		    now - pc->sent_us);
		if (pc->cb != NULL)
			pc->cb(env, r, pc->arg);
		else if (((redisReply *)r)->type == REDIS_REPLY_ERROR)
			unanswered_error(env, pc, ((redisReply *)r)->str);
	}
	free(pc);
}

/*
 * Queues a command on link (-1 when there is none, or it is closed),
 * given either as argv or already in RESP (cmd), with the bookkeeping
 * every command gets: its round trip and progress.
 */
static int
send_command(struct journeyd *env, struct redis_link *link, redis_store_cb cb,
    void *arg, int argc, const char **argv, const size_t *argvlen,
    const char *cmd, size_t len)
{
	struct pending_cmd	*pc;
	int64_t			 now = now_us();
	int			 rc;

	if (link == NULL || link->ac == NULL ||
	    (pc = malloc(sizeof(*pc))) == NULL)
		return -1;
	pc->env = env;
	pc->link = link;
	pc->cb = cb;
	pc->arg = arg;
	pc->sent_us = now;
	pc->name[0] = '\0';
	if (cb == NULL && argc > 0)
		snprintf(pc->name, sizeof(pc->name), "%.*s",
		    (int)(argvlen[0] < sizeof(pc->name) ? argvlen[0] :
		    sizeof(pc->name) - 1), argv[0]);
	if (cmd != NULL)
		rc = redisAsyncFormattedCommand(link->ac, on_reply, pc, cmd,
		    len);
	else
		rc = redisAsyncCommandArgv(link->ac, on_reply, pc, argc, argv,
		    argvlen);
	if (rc != REDIS_OK) {
		free(pc);
		return -1;
	}
	if (link->pending++ == 0)
		link->progress_ms = now / 1000;
	return 0;
}

/* That connection, once the store is ready; NULL before. */
static struct redis_link *
ready_link(struct journeyd *env, enum redis_connection conn)
{
	return env->store->ready ? &env->store->link[conn] : NULL;
}

int
redis_store_command(struct journeyd *env, redis_store_cb cb, void *arg,
    int argc, const char **argv, const size_t *argvlen)
{
	return send_command(env, ready_link(env, REDIS_WRITER), cb, arg, argc,
	    argv, argvlen, NULL, 0);
}

int
redis_store_read(struct journeyd *env, redis_store_cb cb, void *arg,
    int argc, const char **argv, const size_t *argvlen)
{
	return send_command(env, ready_link(env, REDIS_READER), cb, arg, argc,
	    argv, argvlen, NULL, 0);
}

int
redis_store_formatted(struct journeyd *env, redis_store_cb cb, void *arg,
    const char *cmd, size_t len)
{
	return send_command(env, ready_link(env, REDIS_WRITER), cb, arg, 0,
	    NULL, NULL, cmd, len);
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

int
redis_store_server_changed(struct journeyd *env)
{
	return env->store->server_changed;
}

const char *
redis_store_writer_chain(struct journeyd *env, uint64_t *link)
{
	struct redis_store	*st = env->store;

	*link = ++st->writer_links;
	return st->writer_name;
}

void
redis_store_fail(struct journeyd *env, const char *why, const char *detail)
{
	if (env->store->link[REDIS_WRITER].ac != NULL)
		store_lost(env, why, detail, NULL);
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

const char *
redis_store_trouble(struct journeyd *env)
{
	if (env->store == NULL || env->store->ready)
		return "";
	return env->store->trouble;
}

int64_t
redis_store_ready_for_ms(struct journeyd *env)
{
	if (!redis_store_ready(env))
		return -1;
	return now_ms() - env->store->ready_ms;
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
	for (int l = 0; l < REDIS_CONNECTIONS; l++) {
		struct redis_link	*link = &st->link[l];

		if (stall > DEADLINE_TICK_MS)
			link->progress_ms += stall;
		if (link->ac != NULL && link->pending > 0 &&
		    now - link->progress_ms > env->conf->redis_timeout_ms) {
			snprintf(detail, sizeof(detail), "%lld commands "
			    "waiting on the %s", (long long)link->pending,
			    l == REDIS_WRITER ? "writer" : "reader");
			store_lost(env, "no reply within redis.timeout_ms",
			    detail, NULL);
			return;
		}
		/* idle: ask, so that a dead or frozen Redis is noticed */
		if (st->ready && link->pending == 0 &&
		    now - link->progress_ms > env->conf->redis_timeout_ms / 2)
			send_command(env, link, NULL, NULL, 1, ping, pinglen,
			    NULL, 0);
	}
}

/* The store's link whose context ac is, if any: not one we dropped. */
static struct redis_link *
link_of(struct journeyd *env, const redisAsyncContext *ac)
{
	for (int l = 0; l < REDIS_CONNECTIONS; l++)
		if (env->store->link[l].ac == ac)
			return &env->store->link[l];
	return NULL;
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct journeyd	*env = ac->data;

	if (status != REDIS_OK && link_of(env, ac) != NULL)
		store_lost(env, "cannot connect", ac->errstr, ac);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct journeyd	*env = ac->data;

	if (link_of(env, ac) != NULL)
		store_lost(env, "connection lost",
		    status == REDIS_OK ? "closed" : ac->errstr, ac);
}

/* A connection has answered its setup; the store is ready with both. */
static void
link_up(struct journeyd *env, enum redis_connection conn)
{
	struct redis_store	*st = env->store;

	st->link[conn].up = 1;
	for (int l = 0; l < REDIS_CONNECTIONS; l++)
		if (!st->link[l].up)
			return;
	/*
	 * Compared, and kept, only now: a writer whose reader then failed
	 * wrote nothing, and taking its server for the last one would hide
	 * a restart from the next connection that does become ready.
	 */
	st->server_changed = st->last_run_id[0] != '\0' &&
	    strcmp(st->run_id, st->last_run_id) != 0;
	memcpy(st->last_run_id, st->run_id, sizeof(st->last_run_id));
	st->last_client_id = st->client_id;
	st->ready = 1;
	st->ready_ms = now_ms();
	log_info("redis: connected%s%s", st->reconnects ? " again" : "",
	    st->server_changed ? ", to a new server process (its run_id "
	    "changed)" : "");
	st->reconnects++;
	journeyd_redis_ready(env);
}

static void	on_setup_reply(struct journeyd *, redisReply *, void *);
static void	on_reader_setup_reply(struct journeyd *, redisReply *,
		    void *);

static void
send_setup(struct journeyd *env, enum redis_connection conn, const char *what,
    int argc, const char **argv)
{
	size_t	argvlen[5];

	for (int i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	send_command(env, &env->store->link[conn], conn == REDIS_WRITER ?
	    on_setup_reply : on_reader_setup_reply, (void *)what, argc, argv,
	    argvlen, NULL, 0);
}

/*
 * The value of INFO's field name into v (size bytes at most, NUL
 * included); "" when absent or longer.
 */
static void
info_field(const char *info, const char *name, char *v, size_t size)
{
	size_t		 len = strlen(name), n;
	const char	*p;

	v[0] = '\0';
	for (p = info; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, name, len) != 0 || p[len] != ':')
			continue;
		p += len + 1;
		if ((n = strcspn(p, "\r\n")) < size) {
			memcpy(v, p, n);
			v[n] = '\0';
		}
		return;
	}
}

/*
 * Says so when Redis runs in a way the guarantees do not hold for: without
 * its append-only file a restart goes back to its last snapshot (if any),
 * which journeyd makes good only as far back as Kafka still holds the
 * events; and a Redis that may evict any key (allkeys-*: customers have no
 * TTL, so volatile-* spares them; a writer's chain, which has one, makes
 * its writer reconnect when it goes) drops customers, whose journeys then
 * start over. A warning, not a refusal: the operator may know better
 * (a replica, a Kafka that keeps everything).
 */
static void
check_guarantees(const char *info)
{
	char	aof[8], maxmemory[32], policy[32];

	info_field(info, "aof_enabled", aof, sizeof(aof));
	info_field(info, "maxmemory", maxmemory, sizeof(maxmemory));
	info_field(info, "maxmemory_policy", policy, sizeof(policy));
	if (strcmp(aof, "0") == 0)
		log_warnx("redis: appendonly is off: a restart of Redis loses "
		    "what it wrote since its last snapshot, and journeyd "
		    "applies it again only as far back as Kafka still holds "
		    "the events (README \"The Redis it writes to\")");
	if (maxmemory[0] != '\0' && strcmp(maxmemory, "0") != 0 &&
	    strncmp(policy, "allkeys-", 8) == 0)
		log_warnx("redis: maxmemory-policy is %s: Redis may evict "
		    "customers, whose journeys then start over; journeyd "
		    "needs noeviction", policy);
}

/*
 * After INFO: fence off the previous writer, then start the new one's
 * chain, a write that a Redis refusing writes refuses.
 */
static void
fence_and_start_chain(struct journeyd *env, const char *info)
{
	struct redis_store	*st = env->store;
	char			 id[32], key[CONFIG_PREFIX_MAX + 80], ttl[24];
	const char		*kill[] = { "CLIENT", "KILL", "ID", id };
	const char		*set[] = { "SET", key, "0", "PX", ttl };

	info_field(info, "run_id", st->run_id, sizeof(st->run_id));
	check_guarantees(info);
	if (st->last_client_id > 0 && st->run_id[0] != '\0' &&
	    strcmp(st->run_id, st->last_run_id) == 0) {
		snprintf(id, sizeof(id), "%lld", st->last_client_id);
		log_info("redis: fencing off our previous connection (client "
		    "id %s)", id);
		send_setup(env, REDIS_WRITER, "CLIENT KILL", 4, kill);
	}
	/* client ids start again at 1 when Redis does: its run_id tells */
	snprintf(st->writer_name, sizeof(st->writer_name), "%.16s:%lld",
	    st->run_id, st->client_id);
	st->writer_links = 0;
	snprintf(key, sizeof(key), "%swriter:%s", env->conf->redis_prefix,
	    st->writer_name);
	snprintf(ttl, sizeof(ttl), "%d", CHAIN_SETUP_TTL_MS);
	send_setup(env, REDIS_WRITER, "SET writer chain", 5, set);
}

static void
on_setup_reply(struct journeyd *env, redisReply *r, void *arg)
{
	struct redis_store	*st = env->store;
	const char		*what = arg;

	if (strcmp(what, "CLIENT KILL") == 0) {
		/* the number killed: 0 when it is gone already */
		if (r->type == REDIS_REPLY_ERROR)
			log_warnx("redis: cannot fence off our previous "
			    "connection, whose commands may still run: %s",
			    r->str);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		store_lost(env, what, r->str, NULL);
		return;
	}
	if (strcmp(what, "CLIENT ID") == 0 &&
	    r->type == REDIS_REPLY_INTEGER) {
		st->client_id = r->integer;
		return;
	}
	if (strcmp(what, "SCRIPT LOAD") == 0) {
		if (r->type != REDIS_REPLY_STRING || r->len != 40) {
			store_lost(env, what, "unexpected reply", NULL);
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
		fence_and_start_chain(env, r->type == REDIS_REPLY_STRING ?
		    r->str : "");
		return;
	}
	if (strcmp(what, "SET writer chain") == 0)
		link_up(env, REDIS_WRITER);
}

/*
 * The reader never writes, so nothing it sent can run late: it needs no
 * fencing, only its AUTH and SELECT answered.
 */
static void
on_reader_setup_reply(struct journeyd *env, redisReply *r, void *arg)
{
	const char	*what = arg;

	if (r->type == REDIS_REPLY_ERROR)
		store_lost(env, what, r->str, NULL);
	else if (strcmp(what, "PING") == 0)
		link_up(env, REDIS_READER);
}

/* Opens a connection and queues its AUTH and SELECT: 0, or -1 if lost. */
static int
link_open(struct journeyd *env, enum redis_connection conn, const char *db)
{
	struct config		*conf = env->conf;
	struct redis_link	*link = &env->store->link[conn];
	const char		*auth[] = { "AUTH", conf->redis_password };
	const char		*select[] = { "SELECT", db };
	char			 err[sizeof(link->ac->c.errstr)];

	if (conf->redis_unix != NULL)
		link->ac = redisAsyncConnectUnix(conf->redis_unix);
	else
		link->ac = redisAsyncConnect(conf->redis_host,
		    conf->redis_port);
	if (link->ac == NULL)
		fatalx("redis: out of memory");
	if (link->ac->err) {
		/* the text is the context's, which store_lost frees */
		snprintf(err, sizeof(err), "%s", link->ac->errstr);
		store_lost(env, "cannot connect", err, NULL);
		return -1;
	}
	link->ac->data = env;
	if (redisLibeventAttach(link->ac, env->base) != REDIS_OK) {
		store_lost(env, "cannot attach to the event loop", NULL, NULL);
		return -1;
	}
	redisAsyncSetConnectCallback(link->ac, on_connect);
	redisAsyncSetDisconnectCallback(link->ac, on_disconnect);
	/* hiredis queues these until the socket connects */
	if (conf->redis_password != NULL)
		send_setup(env, conn, "AUTH", 2, auth);
	if (conf->redis_db != 0)
		send_setup(env, conn, "SELECT", 2, select);
	return 0;
}

static void
store_connect(struct journeyd *env)
{
	struct redis_store	*st = env->store;
	char			 db[16];
	const char		*client_id[] = { "CLIENT", "ID" };
	/* the default sections: server's run_id, persistence, memory */
	const char		*info[] = { "INFO" };
	const char		*ping[] = { "PING" };

	snprintf(db, sizeof(db), "%d", env->conf->redis_db);
	if (link_open(env, REDIS_WRITER, db) == -1 ||
	    link_open(env, REDIS_READER, db) == -1)
		return;
	/* a restarted Redis has an empty script cache: load on every connect */
	for (int i = 0; i < st->nscripts; i++) {
		const char	*load[] = { "SCRIPT", "LOAD", st->script[i] };

		st->sha[i][0] = '\0';
		send_setup(env, REDIS_WRITER, "SCRIPT LOAD", 3, load);
	}
	st->client_id = 0;
	send_setup(env, REDIS_WRITER, "CLIENT ID", 2, client_id);
	send_setup(env, REDIS_WRITER, "INFO", 1, info);	/* its reply writes */
	send_setup(env, REDIS_READER, "PING", 1, ping);
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
	for (int c = 0; c < REDIS_CONNECTIONS; c++)
		st->link[c].conn = c;
	st->backoff_ms = BACKOFF_MIN_MS;
	st->last_tick_ms = now_ms();
	snprintf(st->trouble, sizeof(st->trouble), "not connected yet");
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

	if (st == NULL)
		return;
	if (st->deadline_ev != NULL)
		event_free(st->deadline_ev);
	if (st->reconnect_ev != NULL)
		event_free(st->reconnect_ev);
	for (int l = 0; l < REDIS_CONNECTIONS; l++) {
		redisAsyncContext	*ac = st->link[l].ac;

		if (ac == NULL)
			continue;
		st->link[l].ac = NULL;
		if (l == REDIS_WRITER)
			flush_output(ac);
		redisAsyncFree(ac);
	}
	free(st);
	env->store = NULL;
}
