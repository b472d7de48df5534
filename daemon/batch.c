/*
 * batch.c: the in-flight work, from consumed messages to stored offsets.
 * Each batch walks the delivery order of the product brief:
 *
 *   LOADING     parsed; bad events dead-lettered; customers not already in
 *               memory are being read from Redis (pipelined HGETALLs)
 *   DELIVERING  events applied in partition order; alerts and dead letters
 *               produced, waiting for their delivery reports
 *   WRITING     state, stage counts and partition watermarks sent to Redis
 *               in one call of the state script (atomic, like MULTI/EXEC)
 *   DONE        Redis acknowledged: offsets (offset + 1) may be stored
 *
 * Batches stay in consumption order: none applies before the one ahead of
 * it (it may build on state that batch changed, held in the customer
 * cache), none writes before the one ahead of it (Redis sees state in
 * event order), each writes its customers as it left them (a snapshot: by
 * then a later batch may have applied events whose alerts are not yet
 * acknowledged), and offsets are stored strictly from the head of the
 * queue. A crash anywhere loses only work whose offsets were not stored,
 * and the per-customer watermarks make its replay change nothing twice.
 *
 * When Redis is lost every batch in flight is abandoned: nothing of it
 * is known to be durable, so its offsets are never stored and the source
 * rewinds to the Redis watermarks once Redis is back. Its alerts may be
 * sent again, with the same alert_ids.
 *
 * Decisions about what to do next (consume more, finish a revocation,
 * put a reloaded config in force, shut down) are taken only in the pump
 * event, never inside a Redis or Kafka callback, so no callback re-enters
 * the walk over the queue.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "alert.h"
#include "customer.h"
#include "event.h"
#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

#define KEY_MAX		(EVENT_CUSTOMER_MAX + 256)
#define HGETALL_MAX	64	/* fields; ours are far fewer */
#define TEXT_MAX	332	/* a number, or "topic/partition" */
#define PUMP_BATCHES	4	/* per turn of the loop: replies get read */
#define HISTORY_MAX	"64"	/* entries kept per customer, about */

enum batch_phase {
	BATCH_LOADING,
	BATCH_DELIVERING,
	BATCH_WRITING,
	BATCH_DONE,
	BATCH_ABANDONED,	/* Redis was lost; waits for delivery reports */
};

struct batch_item {
	rd_kafka_message_t	*msg;
	struct customer_entry	*cust;	/* NULL: nothing to apply */
	struct event		 ev;
};

/* A stage change, for the customer's history stream. */
struct batch_history {
	size_t			 customer;	/* index in batch->touched */
	int			 from;
	int			 to;
	const struct event	*ev;
	char			 alert_id[ALERT_ID_LEN];
};

struct batch {
	TAILQ_ENTRY(batch)		 entry;
	uint64_t			 seq;
	enum batch_phase		 phase;
	int				 loads_pending;
	int				 deliveries_pending;
	size_t				 n;
	struct batch_item		*item;
	size_t				 ntouched;
	struct customer_entry		**touched;
	/*
	 * The touched customers' state as this batch left it. The cache holds
	 * newer state once a later batch applies, and writing that before the
	 * later batch's alerts are acknowledged could record an event whose
	 * alert a crash then loses.
	 */
	struct journey_state		*snapshot;
	size_t				 nhistory;
	struct batch_history		*history;	/* one per item at most */
	rd_kafka_topic_partition_list_t	*offsets;	/* next offset to read */
};

static rd_kafka_message_t	**pump_msgs;
static struct event		 *pump_later_ev;	/* next turn */

static size_t
customer_key(struct journeyd *env, const char *id, char key[KEY_MAX])
{
	return (size_t)snprintf(key, KEY_MAX, "%s{%s}",
	    env->conf->redis_prefix, id);
}

static size_t
prefixed_key(struct journeyd *env, const char *name, char key[KEY_MAX])
{
	return (size_t)snprintf(key, KEY_MAX, "%s%s", env->conf->redis_prefix,
	    name);
}

static void
dead_letter(struct journeyd *env, struct batch *b, struct batch_item *it,
    const char *reason)
{
	rd_kafka_message_t	*m = it->msg;
	rd_kafka_headers_t	*hdrs;
	char			 source[300];
	void			*copy = NULL;

	snprintf(source, sizeof(source), "%s/%" PRId32 "/%" PRId64,
	    rd_kafka_topic_name(m->rkt), m->partition, m->offset);
	log_debug("dead letter %s: %s", source, reason);
	if (m->len > 0) {
		if ((copy = malloc(m->len)) == NULL)
			fatal("dead letter copy");
		memcpy(copy, m->payload, m->len);
	}
	hdrs = rd_kafka_headers_new(2);
	rd_kafka_header_add(hdrs, "reason", -1, reason, -1);
	rd_kafka_header_add(hdrs, "source", -1, source, -1);
	if (kafka_sink_produce(env, env->conf->topic_dead_letter, m->key,
	    m->key_len, copy, m->len, hdrs, b) == -1)
		fatalx("cannot queue dead letter %s", source);
	b->deliveries_pending++;
	env->stats.dead_lettered++;
	metrics_dead_letter(env, reason);
}

static void
on_loaded(struct journeyd *env, redisReply *r, void *arg)
{
	struct customer_entry	*cust = arg;
	struct batch		*b = cust->loader;
	const char		*names[HGETALL_MAX], *values[HGETALL_MAX];
	size_t			 namelen[HGETALL_MAX], valuelen[HGETALL_MAX];
	size_t			 n = 0;

	cust->loader = NULL;
	cust->loaded = 1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0 ||
	    r->elements / 2 > HGETALL_MAX) {
		log_warnx("customer %s: stored state unreadable (%s)", cust->id,
		    r->type == REDIS_REPLY_ERROR ? r->str : "not a hash");
		cust->unreadable = 1;
	} else {
		for (size_t i = 0; i + 1 < r->elements; i += 2, n++) {
			names[n] = r->element[i]->str;
			namelen[n] = r->element[i]->len;
			values[n] = r->element[i + 1]->str;
			valuelen[n] = r->element[i + 1]->len;
		}
		if (customer_decode(&env->conf->model, &cust->state, n, names,
		    namelen, values, valuelen) == -1) {
			log_warnx("customer %s: stored state unreadable "
			    "(malformed field)", cust->id);
			cust->unreadable = 1;
		}
	}
	b->loads_pending--;
	batch_schedule_pump(env);
}

static void
record_offset(struct batch *b, const rd_kafka_message_t *m)
{
	const char			*topic = rd_kafka_topic_name(m->rkt);
	rd_kafka_topic_partition_t	*tp;

	tp = rd_kafka_topic_partition_list_find(b->offsets, topic,
	    m->partition);
	if (tp == NULL)
		tp = rd_kafka_topic_partition_list_add(b->offsets, topic,
		    m->partition);
	tp->offset = m->offset + 1;
}

/* LOADING: parse, dead-letter what is bad, load customers not in memory */
static void
start(struct journeyd *env, struct batch *b)
{
	struct config	*conf = env->conf;
	char		 reason[EVENT_REASON_MAX], key[KEY_MAX];
	const char	*argv[2];
	size_t		 argvlen[2];
	int		 created;
	struct timespec	 tp;
	int64_t		 now;

	clock_gettime(CLOCK_REALTIME, &tp);
	now = (int64_t)tp.tv_sec * 1000 + tp.tv_nsec / 1000000;
	for (size_t i = 0; i < b->n; i++) {
		struct batch_item	*it = &b->item[i];
		rd_kafka_message_t	*m = it->msg;
		rd_kafka_timestamp_type_t tstype;
		int64_t			 ts;

		if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			log_warnx("kafka: %s", rd_kafka_message_errstr(m));
			continue;
		}
		record_offset(b, m);
		if (m->len > conf->event_max_bytes) {
			snprintf(reason, sizeof(reason), "event is %zu bytes, "
			    "more than event.max_bytes %zu", m->len,
			    conf->event_max_bytes);
			dead_letter(env, b, it, reason);
			continue;
		}
		ts = rd_kafka_message_timestamp(m, &tstype);
		if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
			ts = -1;
		if (event_parse(m->payload, m->len, m->key, m->key_len, ts,
		    &it->ev, reason) == -1) {
			dead_letter(env, b, it, reason);
			continue;
		}
		/* a producer's clock far ahead would age everyone else */
		if (it->ev.ts_ms > now + conf->event_max_future_ms) {
			snprintf(reason, sizeof(reason), "ts is %lld s in the "
			    "future, more than event.max_future_ms %d",
			    (long long)(it->ev.ts_ms - now) / 1000,
			    conf->event_max_future_ms);
			event_release(&it->ev);
			dead_letter(env, b, it, reason);
			continue;
		}
		it->cust = customer_cache_ref(env->cache, it->ev.customer_id,
		    &created);
		if (it->cust == NULL)
			fatal("customer cache");
		if (!created)
			continue;
		it->cust->loader = b;
		b->loads_pending++;
		argv[0] = "HGETALL";
		argvlen[0] = 7;
		argv[1] = key;
		argvlen[1] = customer_key(env, it->ev.customer_id, key);
		if (redis_store_command(env, on_loaded, it->cust, 2, argv,
		    argvlen) == -1)
			fatalx("redis: cannot queue a load");
	}
}

/* Records a stage change for the history stream; returns its alert id. */
static const char *
record_history(struct batch *b, struct customer_entry *cust,
    const struct journey_result *res, const struct alert_origin *origin,
    const char *to)
{
	struct batch_history	*h = &b->history[b->nhistory];

	/* touched_at is this batch's while it applies */
	h->customer = cust->touched_at;
	h->from = res->from;
	h->to = res->to;
	h->ev = origin->event;
	alert_id("stage_change", to, origin, h->alert_id);
	b->nhistory++;
	return h->alert_id;
}

/* DELIVERING: fold the events into state, produce what they trigger */
static void
apply(struct journeyd *env, struct batch *b)
{
	const struct journey_model	*model = &env->conf->model;
	struct journey_result		 res;
	struct alert_origin		 origin;
	char				 source[300];
	char				*alert;
	const char			*id;
	size_t				 len;

	for (size_t i = 0; i < b->n; i++) {
		struct batch_item	*it = &b->item[i];
		struct customer_entry	*cust = it->cust;
		rd_kafka_message_t	*m = it->msg;

		if (cust == NULL)
			continue;
		if (cust->unreadable) {
			dead_letter(env, b, it, "stored state of this customer "
			    "is unreadable");
			continue;
		}
		origin.event = &it->ev;
		origin.topic = rd_kafka_topic_name(m->rkt);
		origin.partition = m->partition;
		origin.offset = m->offset;
		snprintf(source, sizeof(source), "%s/%" PRId32, origin.topic,
		    m->partition);
		journey_apply(model, &cust->state, &it->ev, source, m->offset,
		    &res);
		if (res.outcome == JOURNEY_DUPLICATE) {
			env->stats.duplicates++;
			continue;
		}
		/* a repeated event_id still moves the customer's offset */
		if (res.outcome == JOURNEY_DUPLICATE_ID)
			env->stats.duplicates++;
		else
			env->stats.applied++;
		if (cust->touched_by != b->seq) {
			cust->touched_by = b->seq;
			cust->touched_at = b->ntouched;
			b->touched[b->ntouched++] = cust;
		}
		if (res.outcome != JOURNEY_TRANSITION)
			continue;
		id = record_history(b, cust, &res, &origin,
		    model->stage[res.to]);
		alert = alert_encode_stage_change(&origin,
		    res.from == JOURNEY_NO_STAGE ? NULL :
		    model->stage[res.from], model->stage[res.to], id, &len);
		if (alert == NULL)
			fatal("alert");
		if (kafka_sink_produce(env, env->conf->topic_stage_change,
		    it->ev.customer_id, strlen(it->ev.customer_id), alert, len,
		    NULL, b) == -1)
			fatalx("cannot queue a stage-change alert");
		b->deliveries_pending++;
		env->stats.alerts[STATS_ALERT_STAGE_CHANGE]++;
	}
	if (b->ntouched > 0 && (b->snapshot = malloc(b->ntouched *
	    sizeof(*b->snapshot))) == NULL)
		fatal("batch snapshot");
	for (size_t i = 0; i < b->ntouched; i++)
		b->snapshot[i] = b->touched[i]->state;
}

/*
 * The batch's state write, run atomically by Redis (a script runs whole,
 * and its effects reach the AOF whole).
 * KEYS: <prefix>stages, <prefix>offsets, then per customer its hash and
 * its history stream.
 * ARGV: the number of partitions, then (field, last offset) pairs; then
 * per customer: the number of field pairs, the pairs, the number of stage
 * changes, and per change from, to, at, event type, event_id, alert_id.
 * A customer whose stored offset for a partition is ahead of the one being
 * written is left alone: the write is late (made on state that has moved
 * on since), and applying it would take the customer back. The hash is
 * rewritten whole, so fields the state no longer has go. Stage counts
 * follow the stored stage, so they always agree with the hashes, and
 * partition watermarks only move forward.
 */
static const char state_script[] =
    "local a = 1\n"
    "for i = 1, tonumber(ARGV[1]) do\n"
    "  local f, wm = ARGV[a + 1], tonumber(ARGV[a + 2])\n"
    "  local cur = tonumber(redis.call('HGET', KEYS[2], f))\n"
    "  if cur == nil or wm > cur then\n"
    "    redis.call('HSET', KEYS[2], f, ARGV[a + 2])\n"
    "  end\n"
    "  a = a + 2\n"
    "end\n"
    "a = a + 1\n"
    "local written = 0\n"
    "for c = 3, #KEYS, 2 do\n"
    "  local key, k = KEYS[c], tonumber(ARGV[a])\n"
    "  local h = tonumber(ARGV[a + 2 * k + 1])\n"
    "  local stale, stage = false, nil\n"
    "  for j = a + 1, a + 2 * k, 2 do\n"
    "    local f = ARGV[j]\n"
    "    if string.sub(f, 1, 4) == 'off:' then\n"
    "      local cur = tonumber(redis.call('HGET', key, f))\n"
    "      if cur ~= nil and cur > tonumber(ARGV[j + 1]) then\n"
    "        stale = true\n"
    "      end\n"
    "    elseif f == 'stage' then\n"
    "      stage = ARGV[j + 1]\n"
    "    end\n"
    "  end\n"
    "  if not stale then\n"
    "    local old = redis.call('HGET', key, 'stage')\n"
    "    redis.call('DEL', key)\n"
    "    redis.call('HSET', key, unpack(ARGV, a + 1, a + 2 * k))\n"
    "    if stage and old ~= stage then\n"
    "      if old then redis.call('HINCRBY', KEYS[1], old, -1) end\n"
    "      redis.call('HINCRBY', KEYS[1], stage, 1)\n"
    "    end\n"
    "    for e = a + 2 * k + 2, a + 2 * k + 1 + 6 * h, 6 do\n"
    "      redis.call('XADD', KEYS[c + 1], 'MAXLEN', '~', '" HISTORY_MAX "',\n"
    "        '*', 'from', ARGV[e], 'to', ARGV[e + 1], 'at', ARGV[e + 2],\n"
    "        'event', ARGV[e + 3], 'event_id', ARGV[e + 4],\n"
    "        'alert_id', ARGV[e + 5])\n"
    "    end\n"
    "    written = written + 1\n"
    "  end\n"
    "  a = a + 2 * k + 2 + 6 * h\n"
    "end\n"
    "return written\n";

static int	state_script_id;

static void
on_written(struct journeyd *env, redisReply *r, void *arg)
{
	struct batch	*b = arg;

	if (r->type != REDIS_REPLY_INTEGER) {
		/* e.g. NOSCRIPT after SCRIPT FLUSH: reconnecting reloads it */
		redis_store_fail(env, "batch write failed",
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		return;
	}
	if ((size_t)r->integer != b->ntouched)
		log_debug("batch %llu: %lld of %zu customers were ahead in "
		    "Redis and left alone", (unsigned long long)b->seq,
		    (long long)b->ntouched - r->integer, b->ntouched);
	b->phase = BATCH_DONE;
	batch_schedule_pump(env);
}

/* WRITING: the batch's state and watermarks in one script call */
static void
write_state(struct journeyd *env, struct batch *b)
{
	const struct journey_model	*model = &env->conf->model;
	struct customer_fields		*fields;
	int				*first, *next, *count;
	int				 cnt = b->offsets->cnt;
	size_t				 max, argc = 0, used = 0, keylen;
	const char			**argv;
	size_t				*argvlen;
	char				*text;

	if (cnt == 0) {		/* only consumer errors: nothing to record */
		b->phase = BATCH_DONE;
		return;
	}
	/* EVALSHA sha numkeys, keys, partitions, customers, stage changes */
	max = 5 + 2 * b->ntouched + 1 + 2 * (size_t)cnt +
	    b->ntouched * (2 + 2 * CUSTOMER_FIELDS_MAX) + 6 * b->nhistory;
	argv = calloc(max, sizeof(*argv));
	argvlen = calloc(max, sizeof(*argvlen));
	/* keys, then TEXT_ARGs of at most TEXT_MAX bytes each */
	text = malloc((2 * b->ntouched + 2) * KEY_MAX +
	    (2 + 2 * (size_t)cnt + 2 * b->ntouched + b->nhistory) * TEXT_MAX);
	fields = calloc(b->ntouched + 1, sizeof(*fields));
	/* each customer's stage changes, in order: first[c], then next[h] */
	first = malloc((b->ntouched + 1) * sizeof(*first));
	next = malloc((b->nhistory + 1) * sizeof(*next));
	count = calloc(b->ntouched + 1, sizeof(*count));
	if (argv == NULL || argvlen == NULL || text == NULL || fields == NULL ||
	    first == NULL || next == NULL || count == NULL)
		fatal("batch write");
	for (size_t c = 0; c < b->ntouched; c++)
		first[c] = -1;
	for (size_t h = b->nhistory; h-- > 0;) {
		next[h] = first[b->history[h].customer];
		first[b->history[h].customer] = (int)h;
		count[b->history[h].customer]++;
	}

#define ARG(p, len) do {						\
		argv[argc] = (p);					\
		argvlen[argc++] = (len);				\
	} while (0)
#define TEXT_ARG(...) do {						\
		int n_ = snprintf(text + used, TEXT_MAX, __VA_ARGS__);	\
		ARG(text + used, (size_t)n_);				\
		used += (size_t)n_ + 1;					\
	} while (0)

	ARG("EVALSHA", 7);
	ARG(redis_store_script_sha(env, state_script_id), 40);
	TEXT_ARG("%zu", 2 + 2 * b->ntouched);
	keylen = prefixed_key(env, "stages", text + used);
	ARG(text + used, keylen);
	used += keylen + 1;
	keylen = prefixed_key(env, "offsets", text + used);
	ARG(text + used, keylen);
	used += keylen + 1;
	for (size_t i = 0; i < b->ntouched; i++) {
		keylen = customer_key(env, b->touched[i]->id, text + used);
		ARG(text + used, keylen);
		used += keylen + 1;
		keylen = (size_t)snprintf(text + used, KEY_MAX, "%s{%s}:history",
		    env->conf->redis_prefix, b->touched[i]->id);
		ARG(text + used, keylen);
		used += keylen + 1;
	}
	TEXT_ARG("%d", cnt);
	for (int i = 0; i < cnt; i++) {
		rd_kafka_topic_partition_t	*tp = &b->offsets->elems[i];

		TEXT_ARG("%s/%" PRId32, tp->topic, tp->partition);
		TEXT_ARG("%" PRId64, tp->offset - 1);
	}
	for (size_t i = 0; i < b->ntouched; i++) {
		struct customer_fields	*f = &fields[i];

		customer_encode(model, &b->snapshot[i], f);
		TEXT_ARG("%d", f->n);
		for (int k = 0; k < f->n; k++) {
			ARG(f->name[k], f->namelen[k]);
			ARG(f->value[k], f->valuelen[k]);
		}
		TEXT_ARG("%d", count[i]);
		for (int h = first[i]; h != -1; h = next[h]) {
			struct batch_history	*e = &b->history[h];
			const char		*from = e->from ==
				    JOURNEY_NO_STAGE ? "" :
				    model->stage[e->from];

			ARG(from, strlen(from));
			ARG(model->stage[e->to], strlen(model->stage[e->to]));
			timestamp_format_iso8601(e->ev->ts_ms, text + used);
			ARG(text + used, TIMESTAMP_ISO_LEN - 1);
			used += TIMESTAMP_ISO_LEN;
			ARG(e->ev->type, strlen(e->ev->type));
			ARG(e->ev->event_id, strlen(e->ev->event_id));
			ARG(e->alert_id, ALERT_ID_LEN - 1);
		}
	}
#undef TEXT_ARG
#undef ARG
	b->phase = BATCH_WRITING;
	/* hiredis copies the arguments into its output buffer here */
	if (redis_store_command(env, on_written, b, (int)argc, argv,
	    argvlen) == -1)
		fatalx("redis: cannot queue a batch write");
	free(argv);
	free(argvlen);
	free(text);
	free(fields);
	free(first);
	free(next);
	free(count);
}

static void
release_items(struct journeyd *env, struct batch *b)
{
	TAILQ_REMOVE(&env->batches, b, entry);
	for (size_t i = 0; i < b->n; i++) {
		if (b->item[i].cust != NULL) {
			event_release(&b->item[i].ev);
			customer_cache_unref(env->cache, b->item[i].cust);
		}
		rd_kafka_message_destroy(b->item[i].msg);
	}
	env->inflight -= (int64_t)b->n;
	rd_kafka_topic_partition_list_destroy(b->offsets);
	free(b->touched);
	free(b->snapshot);
	free(b->history);
	free(b->item);
	b->offsets = NULL;
	b->touched = NULL;
	b->snapshot = NULL;
	b->history = NULL;
	b->item = NULL;
	b->n = 0;
}

/* DONE, at the head of the queue: store offsets and let go */
static void
finish(struct journeyd *env, struct batch *b)
{
	if (b->offsets->cnt > 0)
		kafka_source_store(env, b->offsets);
	env->stats.finished += b->n;
	release_items(env, b);
	free(b);
}

void
batch_abandon_all(struct journeyd *env)
{
	struct batch	*b;
	size_t		 n = 0;

	while ((b = TAILQ_FIRST(&env->batches)) != NULL) {
		n += b->n;
		release_items(env, b);
		if (b->deliveries_pending > 0)
			b->phase = BATCH_ABANDONED;
		else
			free(b);
	}
	if (n > 0)
		log_warnx("abandoned %zu events in flight; they will be read "
		    "again", n);
}

static void
advance(struct journeyd *env)
{
	struct batch	*b;
	int		 ahead_writing = 1;

	TAILQ_FOREACH(b, &env->batches, entry) {
		if (b->phase == BATCH_LOADING) {
			/* the batch ahead has applied, or this is the first */
			if (b->loads_pending > 0)
				break;
			apply(env, b);
			b->phase = BATCH_DELIVERING;
		}
		if (b->phase == BATCH_DELIVERING) {
			if (!ahead_writing || b->deliveries_pending > 0) {
				ahead_writing = 0;
				continue;
			}
			write_state(env, b);
		}
	}
	while ((b = TAILQ_FIRST(&env->batches)) != NULL &&
	    b->phase == BATCH_DONE)
		finish(env, b);
}

static void
on_pump(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;
	struct batch	*b;
	size_t		 want, n;
	int		 turns = 0;
	struct timeval	 now = { 0, 0 };

	(void)fd;
	(void)what;
	advance(env);
	if (env->inflight == 0) {
		if (env->stopping) {
			journeyd_shutdown_step(env);
			return;
		}
		if (env->conf_next != NULL)
			reload_apply(env);
		kafka_source_idle(env);
	}
	/* a reload waits for quiescence: take nothing new meanwhile */
	while (!env->stopping && env->conf_next == NULL &&
	    !kafka_source_blocked(env) &&
	    redis_store_ready(env) &&
	    env->inflight < env->conf->max_inflight) {
		if (turns++ == PUMP_BATCHES) {
			/* a timer runs after the loop has polled for I/O */
			evtimer_add(pump_later_ev, &now);
			break;
		}
		want = (size_t)(env->conf->max_inflight - env->inflight);
		if (want > (size_t)env->conf->batch_max)
			want = (size_t)env->conf->batch_max;
		if ((n = kafka_source_consume(env, pump_msgs, want)) == 0)
			break;
		if ((b = calloc(1, sizeof(*b))) == NULL ||
		    (b->item = calloc(n, sizeof(*b->item))) == NULL ||
		    (b->touched = calloc(n, sizeof(*b->touched))) == NULL ||
		    (b->history = calloc(n, sizeof(*b->history))) == NULL ||
		    (b->offsets = rd_kafka_topic_partition_list_new(8)) == NULL)
			fatal("batch of %zu messages", n);
		b->seq = ++env->batch_seq;
		b->n = n;
		for (size_t i = 0; i < n; i++)
			b->item[i].msg = pump_msgs[i];
		env->inflight += (int64_t)n;
		env->stats.consumed += n;
		TAILQ_INSERT_TAIL(&env->batches, b, entry);
		start(env, b);
		advance(env);
	}
}

void
batch_schedule_pump(struct journeyd *env)
{
	if (env->pump_ev != NULL)
		event_active(env->pump_ev, 0, 0);
}

void
batch_delivered(struct journeyd *env, void *opaque)
{
	struct batch	*b = opaque;

	if (--b->deliveries_pending == 0 && b->phase == BATCH_ABANDONED) {
		free(b);
		return;
	}
	batch_schedule_pump(env);
}

int
batch_init(struct journeyd *env)
{
	TAILQ_INIT(&env->batches);
	if ((state_script_id = redis_store_add_script(env, state_script)) == -1)
		return -1;
	if ((pump_msgs = calloc((size_t)env->conf->batch_max,
	    sizeof(*pump_msgs))) == NULL)
		return -1;
	if ((env->pump_ev = event_new(env->base, -1, 0, on_pump, env)) == NULL ||
	    (pump_later_ev = evtimer_new(env->base, on_pump, env)) == NULL)
		return -1;
	return 0;
}

void
batch_destroy_all(struct journeyd *env)
{
	/* only on the way out: nothing here is stored or acknowledged */
	batch_abandon_all(env);
	if (env->pump_ev != NULL)
		event_free(env->pump_ev);
	if (pump_later_ev != NULL)
		event_free(pump_later_ev);
	env->pump_ev = pump_later_ev = NULL;
	free(pump_msgs);
	pump_msgs = NULL;
}
