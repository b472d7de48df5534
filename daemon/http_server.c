/*
 * http_server.c: the operations endpoint, libevent's evhttp on the daemon's
 * own loop (config key http, loopback by default, "off" for none):
 *
 *   /healthz   200 "ok", or 503 with every reason journeyd cannot do its
 *              work now: Redis down, Kafka unreachable, the consumer not
 *              started, out of the consumer group after a long outage of
 *              Redis, alerts or dead letters failing to be delivered, a
 *              consumer lag above health.max_lag, stopping
 *   /metrics   Prometheus text (metrics.c)
 *   /map, /customer/ID, /api/map, /api/customer/ID
 *              the journey map (map_page.c)
 *
 * The first two answer from what the daemon already knows; neither waits
 * on Redis or Kafka, so a scrape never stalls the pipeline. What clients
 * may hold is bounded here, libevent 2.1 bounding none of it: the file
 * descriptors they may take (HTTP_FD_RESERVE) and a connection's life.
 */
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

#define REASONS_MAX	512
#define ACCEPT_PAUSE_S	1
/*
 * Descriptors the endpoint leaves to the rest: with fewer free, it
 * accepts nothing (the kernel's backlog holds the next connections).
 * libevent 2.1 bounds neither the connections nor the time a request's
 * headers may take, so clients could otherwise hold open every
 * descriptor, and Redis and Kafka could not connect again.
 */
#define HTTP_FD_RESERVE	64
/* and accepting starts again with this many: with just the reserve, one
 * connection would pause it again, and a line be logged for each */
#define HTTP_FD_RESUME	96
/*
 * A connection's life: then it is shut for reading, so evhttp closes it
 * once it has answered what it has read. A client that sends a header
 * line every few seconds would otherwise hold it for good (evhttp closes
 * only one silent for 10 s); a scraper's keep-alive connection is opened
 * again.
 */
#define HTTP_CONNECTION_LIFE_MS	60000
#define SWEEP_INTERVAL_MS	1000

/*
 * An accepted connection. libevent 2.1 tells neither of a connection's
 * start nor of its end; but the bufferevent evhttp is given (on_accepted)
 * has the connection for its callbacks' argument once evhttp has set
 * them up, and a connection's close callback runs when it is freed.
 */
struct http_connection {
	TAILQ_ENTRY(http_connection)	 entry;
	struct http_server		*hs;
	struct bufferevent		*bev;	/* until on_settle */
	struct evhttp_connection	*evcon;	/* from on_settle */
	struct event			 settle_ev;
	int64_t				 opened_ms;
	int				 busy;	/* a request being answered */
	int				 shut;
};

struct http_server {
	struct evhttp		*http;
	struct evconnlistener	*listener;
	struct event		*resume_ev;
	struct event		*sweep_ev;
	int			 paused;	/* for want of descriptors */
	long			 uncounted;	/* accepts before a count */
	TAILQ_HEAD(, http_connection) connections;
};

/* the listener's error callback is given evhttp's argument, not ours */
static struct http_server	*server;

static void	connection_busy(struct evhttp_request *);

static void __attribute__((format(printf, 3, 4)))
add_problem(char why[REASONS_MAX], size_t *off, const char *fmt, ...)
{
	va_list	ap;

	if (*off >= REASONS_MAX - 2)
		return;
	if (*off > 0) {
		memcpy(why + *off, "; ", 3);
		*off += 2;
	}
	va_start(ap, fmt);
	*off += (size_t)vsnprintf(why + *off, REASONS_MAX - *off, fmt, ap);
	va_end(ap);
}

/* Lists what keeps journeyd from working now in why; 0 when nothing does. */
static int
health_problems(struct journeyd *env, char why[REASONS_MAX])
{
	size_t	off = 0, failing;
	int64_t	lag = kafka_source_lag(env);
	char	failure[384];
	int	held;

	why[0] = '\0';
	if (env->stopping)
		add_problem(why, &off, "stopping");
	if (!redis_store_ready(env))
		add_problem(why, &off, "redis down (%s)",
		    redis_store_trouble(env));
	if (env->source == NULL)
		add_problem(why, &off, "kafka consumer not started");
	else if (!kafka_source_reachable(env))
		add_problem(why, &off, "kafka unreachable: all brokers down");
	if (kafka_source_left_group(env))
		add_problem(why, &off, "out of the consumer group until Redis "
		    "stays up %d s", REDIS_STABLE_MS / 1000);
	if ((held = kafka_source_held(env, failure, sizeof(failure))) > 0)
		add_problem(why, &off, "kafka: %d partitions held, their log "
		    "started again (%s)", held, failure);
	if ((failing = kafka_sink_failing(env, failure, sizeof(failure))) > 0)
		add_problem(why, &off, "kafka: %zu messages wait to be "
		    "produced again (%s)", failing, failure);
	if (lag > env->conf->health_max_lag)
		add_problem(why, &off, "consumer lag %lld over health.max_lag "
		    "%d", (long long)lag, env->conf->health_max_lag);
	return off > 0;
}

static void
reply(struct evhttp_request *req, int code, const char *status,
    const char *type, struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evhttp_send_reply(req, code, status, body);
}

static void
on_healthz(struct evhttp_request *req, void *arg)
{
	struct journeyd	*env = arg;
	struct evbuffer	*body;
	char		 why[REASONS_MAX];

	connection_busy(req);
	if ((body = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (health_problems(env, why)) {
		evbuffer_add_printf(body, "%s\n", why);
		reply(req, HTTP_SERVUNAVAIL, "Service Unavailable",
		    "text/plain", body);
	} else {
		evbuffer_add(body, "ok\n", 3);
		reply(req, HTTP_OK, "OK", "text/plain", body);
	}
	evbuffer_free(body);
}

static void
on_metrics(struct evhttp_request *req, void *arg)
{
	struct evbuffer	*body;

	connection_busy(req);
	if ((body = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	metrics_render(arg, body);
	reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4", body);
	evbuffer_free(body);
}

/* The journey map's pages (map_page.c), or 404. */
static void
on_other(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = uri ? evhttp_uri_get_path(uri) : NULL;

	connection_busy(req);
	if (path == NULL || !map_page_dispatch(arg, req, path,
	    evhttp_uri_get_query(uri)))
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
}

/*
 * The descriptors free: RLIMIT_NOFILE less those open (the directory's
 * own counted among them: one less than there are); -1 when they cannot
 * be counted (no /proc).
 */
static long
descriptors_free(void)
{
	struct rlimit	 rl;
	DIR		*dir;
	struct dirent	*de;
	long		 used = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	if ((dir = opendir("/proc/self/fd")) == NULL)
		return errno == EMFILE || errno == ENFILE ? 0 : -1;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			used++;
	closedir(dir);
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > LONG_MAX)
		return LONG_MAX;
	return (long)rl.rlim_cur - used;
}

/*
 * 1 when fewer than want descriptors are free. A count reads all of
 * /proc/self/fd, so after one that found room, the accepts that could not
 * take half of what lies beyond the reserve are let through uncounted,
 * up to half the reserve (the limit may be lowered meanwhile: prlimit):
 * a flood of connections costs a count every few dozen accepts, not one
 * per accept.
 */
static int
descriptors_low(struct http_server *hs, long want)
{
	long	free;

	if (hs->uncounted > 0) {
		hs->uncounted--;
		return 0;
	}
	if ((free = descriptors_free()) < 0)
		return 0;	/* said when the endpoint opened */
	if (free < want)
		return 1;
	hs->uncounted = (free - HTTP_FD_RESERVE) / 2;
	if (hs->uncounted > HTTP_FD_RESERVE / 2)
		hs->uncounted = HTTP_FD_RESERVE / 2;
	return 0;
}

/* Accepting pauses, said once, until the reserve is free again. */
static void
pause_accepting(struct http_server *hs, const char *why)
{
	struct timeval	tv = { ACCEPT_PAUSE_S, 0 };

	if (!hs->paused)
		log_warnx("http: %s; not accepting until %d are free "
		    "(checked every %d s)", why, HTTP_FD_RESUME,
		    ACCEPT_PAUSE_S);
	hs->paused = 1;
	hs->uncounted = 0;
	evconnlistener_disable(hs->listener);
	evtimer_add(hs->resume_ev, &tv);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http_server	*hs = arg;
	struct timeval		 tv = { ACCEPT_PAUSE_S, 0 };

	(void)fd;
	(void)what;
	if (descriptors_low(hs, HTTP_FD_RESUME)) {
		evtimer_add(hs->resume_ev, &tv);
		return;
	}
	log_info("http: accepting connections again");
	hs->paused = 0;
	evconnlistener_enable(hs->listener);
}

/*
 * accept() failed for want of file descriptors (EMFILE, ENFILE: clients
 * holding connections open), and the socket stays readable: libevent
 * would try again at once, and warn each time, for as long as it lasts.
 */
static void
on_accept_error(struct evconnlistener *listener, void *arg)
{
	char	why[160];

	(void)listener;
	(void)arg;
	snprintf(why, sizeof(why), "cannot accept: %s",
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	pause_accepting(server, why);
}

static void
forget_connection(struct http_connection *c)
{
	TAILQ_REMOVE(&c->hs->connections, c, entry);
	free(c);
}

static void
on_connection_closed(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	forget_connection(arg);
}

/*
 * Right after on_accepted, before anything is read from the connection
 * (an activated event runs ahead of the next poll): evhttp has made it,
 * and set it as its bufferevent's callbacks' argument, or given up on it
 * before it took the bufferevent (the argument is still c), or after (it
 * freed the bufferevent, which our reference keeps, and the argument is
 * NULL).
 */
static void
on_settle(evutil_socket_t fd, short what, void *arg)
{
	struct http_connection	*c = arg;
	void			*evcon;

	(void)fd;
	(void)what;
	bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
	if (evcon == c)
		bufferevent_free(c->bev);
	bufferevent_decref(c->bev);
	c->bev = NULL;
	if (evcon == c || evcon == NULL) {
		forget_connection(c);
		return;
	}
	c->evcon = evcon;
	evhttp_connection_set_closecb(c->evcon, on_connection_closed, c);
}

/*
 * A connection past its life is shut for reading: evhttp reads the end
 * and closes it. Not while a request is answered on it: evhttp reads
 * again as soon as it writes the reply, and would close the connection
 * with what is not written yet (on_answered shuts it after).
 */
static void
shut_if_old(struct http_connection *c, int64_t now)
{
	evutil_socket_t	sock;

	if (c->evcon == NULL || c->busy || c->shut ||
	    now - c->opened_ms < HTTP_CONNECTION_LIFE_MS)
		return;
	c->shut = 1;
	sock = bufferevent_getfd(evhttp_connection_get_bufferevent(c->evcon));
	if (sock != -1 && shutdown(sock, SHUT_RD) == -1)
		log_warn("http: shutdown");
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct http_server	*hs = arg;
	struct http_connection	*c;
	int64_t			 now = timestamp_monotonic_ms();

	(void)fd;
	(void)what;
	TAILQ_FOREACH(c, &hs->connections, entry)
		shut_if_old(c, now);
}

/* A reply written whole (evhttp calls this only then). */
static void
on_answered(struct evhttp_request *req, void *arg)
{
	struct http_connection	*c = arg;

	(void)req;
	c->busy = 0;
	shut_if_old(c, timestamp_monotonic_ms());
}

/*
 * A request of req's connection is being answered. (A connection that
 * goes away meanwhile forgets its entry, and its request, detached from
 * it, is never completed.)
 */
static void
connection_busy(struct evhttp_request *req)
{
	struct evhttp_connection	*evcon;
	struct http_connection		*c;

	evcon = evhttp_request_get_connection(req);
	TAILQ_FOREACH(c, &server->connections, entry)
		if (c->evcon == evcon) {
			c->busy = 1;
			evhttp_request_set_on_complete_cb(req, on_answered, c);
			return;
		}
}

/*
 * Each accepted connection, before evhttp reads it: the bufferevent
 * evhttp would make itself, tracked (struct http_connection); the last
 * connection taken while descriptors are low. (NULL: evhttp makes its
 * own, untracked.)
 */
static struct bufferevent *
on_accepted(struct event_base *base, void *arg)
{
	struct http_server	*hs = arg;
	struct http_connection	*c;
	char			 why[96];

	if (descriptors_low(hs, HTTP_FD_RESERVE)) {
		snprintf(why, sizeof(why), "fewer than %d file descriptors "
		    "left for Redis and Kafka", HTTP_FD_RESERVE);
		pause_accepting(hs, why);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->bev = bufferevent_socket_new(base, -1, 0)) == NULL) {
		free(c);
		return NULL;
	}
	bufferevent_incref(c->bev);	/* until on_settle */
	bufferevent_setcb(c->bev, NULL, NULL, NULL, c);
	c->hs = hs;
	c->opened_ms = timestamp_monotonic_ms();
	event_assign(&c->settle_ev, base, -1, 0, on_settle, c);
	event_active(&c->settle_ev, EV_TIMEOUT, 1);
	TAILQ_INSERT_TAIL(&hs->connections, c, entry);
	return c->bev;
}

int
http_server_open(struct journeyd *env)
{
	struct config			*conf = env->conf;
	struct http_server		*hs;
	struct evhttp_bound_socket	*bound;
	struct timeval			 sweep;

	if (conf->http_host == NULL)
		return 0;
	if ((hs = calloc(1, sizeof(*hs))) == NULL)
		return -1;
	env->http = server = hs;
	TAILQ_INIT(&hs->connections);
	if ((hs->http = evhttp_new(env->base)) == NULL ||
	    (hs->resume_ev = evtimer_new(env->base, on_resume, hs)) == NULL ||
	    (hs->sweep_ev = event_new(env->base, -1, EV_PERSIST, on_sweep,
	    hs)) == NULL)
		return -1;
	sweep = timestamp_timeval(SWEEP_INTERVAL_MS);
	if (event_add(hs->sweep_ev, &sweep) == -1)
		return -1;
	if ((bound = evhttp_bind_socket_with_handle(hs->http, conf->http_host,
	    (ev_uint16_t)conf->http_port)) == NULL) {
		log_warn("http: cannot listen on %s:%d", conf->http_host,
		    conf->http_port);
		return -1;
	}
	hs->listener = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(hs->listener, on_accept_error);
	evhttp_set_bevcb(hs->http, on_accepted, hs);
	if (descriptors_free() < 0)
		log_warnx("http: cannot count the open file descriptors "
		    "(/proc/self/fd): keeping none for Redis and Kafka");
	/* not HEAD: libevent 2.1 would send the body all the same */
	evhttp_set_allowed_methods(hs->http, EVHTTP_REQ_GET);
	/* libevent reads a whole request, however large, before it refuses
	 * a method: bound what any request may hold */
	evhttp_set_max_headers_size(hs->http, 16384);
	evhttp_set_max_body_size(hs->http, 4096);
	evhttp_set_timeout(hs->http, 10);
	if (evhttp_set_cb(hs->http, "/healthz", on_healthz, env) == -1 ||
	    evhttp_set_cb(hs->http, "/metrics", on_metrics, env) == -1)
		return -1;
	evhttp_set_gencb(hs->http, on_other, env);
	log_info("http: serving /healthz, /metrics and /map on %s:%d",
	    conf->http_host, conf->http_port);
	return 0;
}

void
http_server_close(struct journeyd *env)
{
	struct http_server	*hs = env->http;
	struct http_connection	*c, *next;

	if (hs == NULL)
		return;
	/* those accepted in this turn of the loop: evhttp frees the rest */
	for (c = TAILQ_FIRST(&hs->connections); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->bev != NULL) {
			event_del(&c->settle_ev);
			bufferevent_decref(c->bev);
			forget_connection(c);
		}
	}
	if (hs->resume_ev != NULL)
		event_free(hs->resume_ev);
	if (hs->sweep_ev != NULL)
		event_free(hs->sweep_ev);
	if (hs->http != NULL)
		evhttp_free(hs->http);
	free(hs);
	env->http = server = NULL;
}
