/*
 * map_page.c: the journey map on journeyd's HTTP endpoint: the page
 * (/map, /customer/ID or /customer?id=ID: daemon/map_page.html, built in)
 * and the JSON it draws (/api/map[?segment=S&window=DAYS],
 * /api/customer/ID or /api/customer?id=ID), read from
 * Redis on the daemon's reader connection (never behind its state
 * writes). It owns the requests waiting for Redis: each is answered once
 * (a client that went away meanwhile leaves its request detached, and
 * answering frees it), and all are answered 503 at once when Redis is
 * lost (whose replies then never come) or a reload replaces the model
 * they read by (whose replies are then awaited and ignored). Requests for
 * the map share the read of its hashes in flight (map_fetch).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "journeyd.h"
#include "log.h"
#include "map_view.h"

#define WINDOW_MAX_DAYS	3660
#define CUSTOMER_API	"/api/customer"
#define WAITING_MAX	64

extern const char		map_page_html[];
extern const unsigned long	map_page_html_len;

enum page_kind { PAGE_MAP, PAGE_CUSTOMER };

/*
 * One read of the map's hashes (of one segment, or of all), and the view
 * they add up to, shared by every request for them that comes while it is
 * in flight: a map grown large costs Redis hundreds of milliseconds per
 * HGETALL on the connection the loads of the pipeline share, and a page
 * polled by many browsers (or a client asking in a loop) must not cost
 * that once per request.
 */
struct map_fetch {
	TAILQ_ENTRY(map_fetch)	 entry;
	char			 segment[EVENT_NAME_MAX + 1];	/* "" all */
	struct map_view		 view;
	int			 pending;	/* Redis replies to come */
	int			 failed;
	int			 aborted;	/* its requests answered 503 */
};

struct page_request {
	TAILQ_ENTRY(page_request) entry;
	struct journeyd		*env;
	struct evhttp_request	*req;		/* NULL: the client went */
	enum page_kind		 kind;
	struct map_fetch	*fetch;		/* the map's */
	int			 window_days;
	int			 pending;	/* the customer's replies */
	int			 failed;
	int			 status;	/* an answer other than 200 */
	char			 reason[160];	/* and why */
	int			 aborted;	/* answered: ignore replies */
	int			 reread;	/* the customer, after names */
	char			*customer;
	json_t			*doc;
};

static TAILQ_HEAD(, page_request) waiting = TAILQ_HEAD_INITIALIZER(waiting);
static TAILQ_HEAD(, map_fetch) fetches = TAILQ_HEAD_INITIALIZER(fetches);
/*
 * Requests still to be answered, against WAITING_MAX; and those answered
 * 503 while their replies are still to come (abandon). A reload must not
 * leave the pages refused until Redis answers the ones it abandoned, but
 * those hold memory and reads queued on the reader: twice WAITING_MAX in
 * all, not WAITING_MAX more per reload.
 */
static int	nwaiting, nabandoned;

static void
send_text(struct evhttp_request *req, int code, const char *reason,
    const char *type, const char *body, size_t len)
{
	struct evbuffer	*buf = evbuffer_new();

	if (buf == NULL) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evbuffer_add(buf, body, len);
	evhttp_send_reply(req, code, reason, buf);
	evbuffer_free(buf);
}

static void
send_json(struct evhttp_request *req, json_t *doc)
{
	char	*text = json_dumps(doc, JSON_COMPACT);

	if (text == NULL) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	send_text(req, 200, "OK", "application/json", text, strlen(text));
	free(text);
}

/*
 * The request, taken out of pr to be answered exactly once. A client that
 * went away meanwhile leaves the request to us, detached from its
 * connection; answering it then just frees it.
 */
static struct evhttp_request *
take_request(struct page_request *pr)
{
	struct evhttp_request	*req = pr->req;

	pr->req = NULL;
	return req;
}

static void
release(struct page_request *pr)
{
	TAILQ_REMOVE(&waiting, pr, entry);
	if (pr->aborted)
		nabandoned--;
	else
		nwaiting--;
	take_request(pr);
	json_decref(pr->doc);
	free(pr->customer);
	free(pr);
}

/* Answered 503 at once; its replies, if any come, are ignored. */
static void
abandon(struct page_request *pr, const char *why)
{
	struct evhttp_request	*req;

	if ((req = take_request(pr)) != NULL)
		evhttp_send_error(req, 503, why);
	if (!pr->aborted) {
		pr->aborted = 1;
		nwaiting--;
		nabandoned++;
	}
}

static void
fetch_free(struct map_fetch *f)
{
	TAILQ_REMOVE(&fetches, f, entry);
	map_view_free(&f->view);
	free(f);
}

static void
answer_map(struct journeyd *env, struct map_fetch *f, int window_days,
    struct evhttp_request *req)
{
	const char			*seg[JOURNEY_SEGMENTS_MAX + 1];
	int				 nsegs;
	json_t				*doc, *segs;

	nsegs = journey_model_map_segments(&env->conf->model, seg);
	map_view_set_window(&f->view, window_days);
	if ((doc = map_view_json(&f->view, f->segment[0] ? f->segment :
	    "all")) == NULL || (segs = json_array()) == NULL) {
		json_decref(doc);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	for (int i = 0; i < nsegs; i++)
		json_array_append_new(segs, json_string(seg[i]));
	json_object_set_new(doc, "segments", segs);
	send_json(req, doc);
	json_decref(doc);
}

/*
 * What a customer's reply r says is wrong with what: a key Redis holds
 * that journeyd did not write (another type, or a string it cannot read)
 * is the data's fault, not Redis's (500); Redis refusing the read (an
 * ACL, say) is Redis's (502).
 */
static void
refused(struct page_request *pr, const redisReply *r, const char *what,
    const char *why)
{
	int	unreadable = r->type != REDIS_REPLY_ERROR ||
		    strncmp(r->str, "WRONGTYPE ", 10) == 0;

	pr->status = unreadable ? 500 : 502;
	snprintf(pr->reason, sizeof(pr->reason), "%s %s (%s)", what,
	    unreadable ? "unreadable" : "refused by Redis", why);
}

/* One reply came; the last one answers the request. */
static void
reply_done(struct page_request *pr)
{
	struct evhttp_request	*req;

	if (--pr->pending > 0)
		return;
	if ((req = take_request(pr)) != NULL) {
		if (pr->status != 0)
			evhttp_send_error(req, pr->status, pr->reason);
		else if (pr->failed)
			evhttp_send_error(req, 502, "bad reply from Redis");
		else if (json_object_size(json_object_get(pr->doc,
		    "fields")) == 0)
			evhttp_send_error(req, 404, "no such customer");
		else
			send_json(req, pr->doc);
	}
	release(pr);
}

/* One hash came; the last one answers every request for the fetch. */
static void
on_map_hash(struct journeyd *env, redisReply *r, void *arg)
{
	struct map_fetch	*f = arg;
	struct page_request	*pr, *next;
	struct evhttp_request	*req;

	if (r->type != REDIS_REPLY_ARRAY)
		f->failed = 1;
	for (size_t i = 0; !f->failed && !f->aborted &&
	    i + 1 < r->elements; i += 2)
		if (map_view_add(&f->view, r->element[i]->str,
		    r->element[i]->len, r->element[i + 1]->str,
		    r->element[i + 1]->len) == -1)
			f->failed = 1;
	if (--f->pending > 0)
		return;
	if (!f->failed && !f->aborted)
		map_view_finish(&f->view);
	for (pr = TAILQ_FIRST(&waiting); pr != NULL; pr = next) {
		next = TAILQ_NEXT(pr, entry);
		if (pr->fetch != f)
			continue;
		if ((req = take_request(pr)) != NULL) {
			if (f->failed)
				evhttp_send_error(req, 502,
				    "bad reply from Redis");
			else
				answer_map(env, f, pr->window_days, req);
		}
		release(pr);
	}
	fetch_free(f);
}

/* A read of the map hashes of segment ("" all); NULL if none was sent. */
static struct map_fetch *
fetch_start(struct journeyd *env, const char *segment)
{
	const struct journey_model	*m = &env->conf->model;
	const char			*seg[JOURNEY_SEGMENTS_MAX + 1];
	char				 key[CONFIG_PREFIX_MAX +
					    EVENT_NAME_MAX + 8];
	struct map_fetch		*f;
	int				 nsegs;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	snprintf(f->segment, sizeof(f->segment), "%s", segment);
	map_view_init(&f->view, m, 0);
	TAILQ_INSERT_TAIL(&fetches, f, entry);
	/* these are every map journeyd writes: no key scan */
	nsegs = journey_model_map_segments(m, seg);
	for (int i = 0; i < nsegs; i++) {
		const char	*argv[] = { "HGETALL", key };
		size_t		 argvlen[] = { 7, 0 };

		if (segment[0] != '\0' && strcmp(seg[i], segment) != 0)
			continue;
		argvlen[1] = (size_t)snprintf(key, sizeof(key), "%smap:%s",
		    env->conf->redis_prefix, seg[i]);
		if (redis_store_read(env, on_map_hash, f, 2, argv,
		    argvlen) == 0)
			f->pending++;
	}
	if (f->pending == 0) {
		fetch_free(f);
		return NULL;
	}
	return f;
}

static void	on_customer_state(struct journeyd *, redisReply *, void *);

/* GET of the customer's state: 0 if sent */
static int
send_customer_get(struct journeyd *env, struct page_request *pr)
{
	char		 key[CONFIG_PREFIX_MAX + EVENT_CUSTOMER_MAX + 16];
	const char	*get[] = { "GET", key };
	size_t		 glen[2];

	glen[0] = 3;
	/* the id was checked: it fits */
	glen[1] = customer_key(key, sizeof(key), env->conf->redis_prefix,
	    pr->customer, "");
	return redis_store_read(env, on_customer_state, pr, 2, get, glen);
}

static void
on_customer_state(struct journeyd *env, redisReply *r, void *arg)
{
	struct page_request		*pr = arg;
	const struct journey_model	*m = &env->conf->model;
	json_t				*fields = json_object_get(pr->doc,
					    "fields");
	struct journey_state		 s;
	struct customer_fields		 f;
	const char			*why;
	char				 reasons[CHURN_REASONS_MAX];
	int				 rc = 0;

	reasons[0] = '\0';
	if (!pr->aborted && (rc = customer_cache_decode(m, names_table(env), r,
	    &s, &why)) == CUSTOMER_NAME_UNKNOWN && !pr->reread) {
		/* numbered since the table was read: its tail, then again */
		pr->reread = 1;
		names_read_all(env);
		if (send_customer_get(env, pr) == 0)
			return;
	}
	if (!pr->aborted && rc != 0)
		refused(pr, r, "stored state", why);
	if (pr->aborted || rc != 0)
		pr->failed = 1;
	else if (r->type != REDIS_REPLY_NIL) {	/* nil: no such customer */
		customer_encode(m, &s, &f);
		for (int i = 0; i < f.n; i++)
			json_object_set_new(fields, f.name[i],
			    json_stringn(f.value[i], f.valuelen[i]));
		/* the state keeps what gives the reasons, not their text */
		journey_risk_reasons(m, &s, reasons);
	}
	json_object_set_new(pr->doc, "risk_reasons", json_string(reasons));
	reply_done(pr);
}

static void
on_customer_history(struct journeyd *env, redisReply *r, void *arg)
{
	struct page_request	*pr = arg;
	json_t			*history = json_object_get(pr->doc, "history");
	const char		*field[CUSTOMER_CHANGE_FIELDS];
	size_t			 len[CUSTOMER_CHANGE_FIELDS];

	(void)env;
	if (r->type == REDIS_REPLY_ERROR && !pr->aborted)
		refused(pr, r, "list of changes", r->str);
	if (r->type != REDIS_REPLY_ARRAY || pr->aborted)
		pr->failed = 1;
	for (size_t i = 0; !pr->failed && i < r->elements; i++) {
		redisReply	*e = r->element[i];
		json_t		*entry;

		if (e->type != REDIS_REPLY_STRING || customer_change_split(
		    e->str, e->len, field, len) == -1)
			continue;	/* not ours: show the others */
		entry = json_object();
		for (int k = 0; k < CUSTOMER_CHANGE_FIELDS; k++)
			json_object_set_new(entry, customer_change_field[k],
			    json_stringn(field[k], len[k]));
		json_array_append_new(history, entry);
	}
	reply_done(pr);
}

static struct page_request *
page_request_new(struct journeyd *env, struct evhttp_request *req,
    enum page_kind kind)
{
	struct page_request	*pr;

	if ((pr = calloc(1, sizeof(*pr))) == NULL)
		return NULL;
	pr->env = env;
	pr->req = req;
	pr->kind = kind;
	TAILQ_INSERT_TAIL(&waiting, pr, entry);
	nwaiting++;
	return pr;
}

static void
serve_map(struct journeyd *env, struct evhttp_request *req,
    const char *query)
{
	const struct journey_model	*m = &env->conf->model;
	struct evkeyvalq		 params;
	struct page_request		*pr;
	struct map_fetch		*f;
	const char			*segment = NULL, *window = NULL;
	char				*end, wanted[EVENT_NAME_MAX + 1];
	long				 days = 0;

	TAILQ_INIT(&params);
	/* a NUL decoded would cut a value short: window=1%00x is not 1 */
	if (query != NULL && (strstr(query, "%00") != NULL ||
	    evhttp_parse_query_str(query, &params) == -1)) {
		/* not the whole map for a query it cannot read */
		evhttp_clear_headers(&params);
		evhttp_send_error(req, 400, "not a query of NAME=VALUE pairs");
		return;
	}
	segment = evhttp_find_header(&params, "segment");
	window = evhttp_find_header(&params, "window");
	/* digits only: strtol would also take spaces and a sign first */
	if (window != NULL && *window != '\0' && (!isdigit((unsigned char)
	    *window) || (days = strtol(window, &end, 10)) > WINDOW_MAX_DAYS ||
	    *end != '\0')) {
		evhttp_clear_headers(&params);
		evhttp_send_error(req, 400, "window: a number of days");
		return;
	}
	if (segment != NULL && *segment != '\0' &&
	    strcmp(journey_model_map_segment(m, segment), segment) != 0) {
		evhttp_clear_headers(&params);
		evhttp_send_error(req, 404, "no such segment");
		return;
	}
	snprintf(wanted, sizeof(wanted), "%s", segment != NULL ? segment :
	    "");
	evhttp_clear_headers(&params);
	if ((pr = page_request_new(env, req, PAGE_MAP)) == NULL) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	pr->window_days = (int)days;
	TAILQ_FOREACH(f, &fetches, entry)
		if (!f->aborted && strcmp(f->segment, wanted) == 0)
			break;
	if (f == NULL && (f = fetch_start(env, wanted)) == NULL) {
		evhttp_send_error(take_request(pr), 503,
		    "Redis is not available");
		release(pr);
		return;
	}
	pr->fetch = f;
}

static void
serve_customer(struct journeyd *env, struct evhttp_request *req, char *id,
    size_t len)
{
	struct page_request	*pr;
	char			 key[CONFIG_PREFIX_MAX + EVENT_CUSTOMER_MAX + 16];
	char			 reason[EVENT_REASON_MAX];
	const char		*lrange[] = { "LRANGE", key, "0", "-1" };
	size_t			 llen[4] = { 6, 0, 1, 2 };

	if (event_customer_id_check(id, len, reason) == -1 ||
	    strlen(id) != len) {
		free(id);
		evhttp_send_error(req, 400, "not a customer id");
		return;
	}
	if ((pr = page_request_new(env, req, PAGE_CUSTOMER)) == NULL ||
	    (pr->doc = json_pack("{s:s, s:{}, s:[]}", "customer_id", id,
	    "fields", "history")) == NULL) {
		free(id);
		if (pr != NULL)
			release(pr);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	pr->customer = id;
	if (send_customer_get(env, pr) == 0)
		pr->pending++;
	llen[1] = customer_key(key, sizeof(key), env->conf->redis_prefix, id,
	    CUSTOMER_CHANGES_SUFFIX);
	if (pr->pending == 1 && redis_store_read(env, on_customer_history,
	    pr, 4, lrange, llen) == 0)
		pr->pending++;
	if (pr->pending < 2) {
		/* nothing, or half, was sent: the store is down */
		abandon(pr, "Redis is not available");
		if (pr->pending == 0)
			release(pr);
	}
}

/*
 * /api/customer/ID, or /api/customer?id=ID: a browser resolves the ids
 * "." and ".." in a path as its dot segments before asking.
 */
static void
serve_customer_at(struct journeyd *env, struct evhttp_request *req,
    const char *path, const char *query)
{
	struct evkeyvalq	 params;
	const char		*given;
	char			*id;
	size_t			 len;

	TAILQ_INIT(&params);
	if (path[sizeof(CUSTOMER_API) - 1] == '/')
		id = evhttp_uridecode(path + sizeof(CUSTOMER_API), 0, &len);
	else if (query == NULL || strstr(query, "%00") != NULL ||
	    evhttp_parse_query_str(query, &params) == -1 ||
	    (given = evhttp_find_header(&params, "id")) == NULL) {
		evhttp_clear_headers(&params);
		evhttp_send_error(req, 400, "not a customer id");
		return;
	} else if ((id = strdup(given)) != NULL)
		len = strlen(id);
	evhttp_clear_headers(&params);
	if (id == NULL) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	serve_customer(env, req, id, len);
}

int
map_page_dispatch(struct journeyd *env, struct evhttp_request *req,
    const char *path, const char *query)
{
	int	map = strcmp(path, "/api/map") == 0;
	int	customer = strcmp(path, CUSTOMER_API) == 0 ||
		    (strncmp(path, CUSTOMER_API "/", sizeof(CUSTOMER_API)) ==
		    0 && path[sizeof(CUSTOMER_API)] != '\0');

	/* a GET: http_server.c allows no other method */
	if (strcmp(path, "/map") == 0 || strcmp(path, "/customer") == 0 ||
	    (strncmp(path, "/customer/", 10) == 0 && path[10] != '\0'))
		send_text(req, 200, "OK", "text/html; charset=utf-8",
		    map_page_html, map_page_html_len);
	else if (!map && !customer)
		return 0;
	else if (nwaiting >= WAITING_MAX ||
	    nwaiting + nabandoned >= 2 * WAITING_MAX)
		evhttp_send_error(req, 503, "too many requests waiting for "
		    "Redis");
	else if (map)
		serve_map(env, req, query);
	else
		serve_customer_at(env, req, path, query);
	return 1;
}

void
map_page_abort(struct journeyd *env, const char *why, int replies_lost)
{
	struct page_request	*pr, *next;
	struct map_fetch	*f, *fnext;

	(void)env;
	for (pr = TAILQ_FIRST(&waiting); pr != NULL; pr = next) {
		next = TAILQ_NEXT(pr, entry);
		abandon(pr, why);
		/* replies still to come find pr, or its fetch, and let go */
		if (replies_lost || pr->pending == 0)
			release(pr);
	}
	for (f = TAILQ_FIRST(&fetches); f != NULL; f = fnext) {
		fnext = TAILQ_NEXT(f, entry);
		f->aborted = 1;
		if (replies_lost)
			fetch_free(f);
	}
}
