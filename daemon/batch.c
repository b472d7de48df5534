/*
 * batch.c: the in-flight work, from consumed messages to stored offsets.
 * Each batch walks the delivery order of the product brief:
 *
 *   LOADING     parsed; bad events dead-lettered; customers not already in
 *               memory are being read from Redis (pipelined GETs, on a
 *               connection of their own: see send_load)
 *   DELIVERING  events applied in partition order; alerts and dead letters
 *               produced, waiting for their delivery reports
 *   WRITING     state, stage counts and partition watermarks sent to Redis
 *               in one call of the state script (atomic, like MULTI/EXEC)
 *   DONE        Redis acknowledged: offsets (offset + 1) may be stored
 *
 * Batches stay in consumption order: none applies before the one ahead of
 * it (it may build on state that batch changed, held in the customer
 * cache), none writes before the one ahead of it (Redis sees state in
 * event order), each writes its customers as it left them (a copy, made
 * when a later batch changes one first: that batch's alerts may not be
 * acknowledged yet), and offsets are stored strictly from the head of the
 * queue. A crash anywhere loses only work whose offsets were not stored,
 * and the per-customer watermarks make its replay change nothing twice.
 *
 * When Redis is lost every batch in flight is abandoned: nothing of it
 * is known to be durable, so its offsets are never stored and the source
 * rewinds to the Redis watermarks once Redis is back. Its alerts may be
 * sent again, with the same alert_ids.
 *
 * Deadlines travel the same road: the customers whose deadline fell due
 * (deadlines.c) come as a batch of their own, queued behind the batches
 * already in flight, so a timer's change is applied, alerted and written
 * in order with the events around it.
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

#include <hiredis/hiredis.h>

#include "alert.h"
#include "customer.h"
#include "event.h"
#include "journeyd.h"
#include "log.h"
#include "map.h"
#include "number.h"
#include "resp.h"
#include "timestamp.h"

#define KEY_MAX		(EVENT_CUSTOMER_MAX + 256)
#define PUMP_BATCHES	4	/* per turn of the loop: replies get read */
#define CHANGES_KEPT	64	/* the latest changes kept per customer */
#define ZSET_OPS	3	/* sorted-set entries a customer moves, at most */
#define CHAIN_TTL_MS	86400000	/* a writer's chain key: a day */

enum batch_phase {
	BATCH_LOADING,
	BATCH_DELIVERING,
	BATCH_WRITING,
	BATCH_DONE,
	BATCH_ABANDONED,	/* Redis was lost; waits for delivery reports */
};

/* A consumed message, or (msg NULL) a customer whose deadline is due. */
struct batch_item {
	rd_kafka_message_t	*msg;
	struct customer_entry	*cust;	/* NULL: nothing to apply */
	struct event		 ev;
	int64_t			 due_now_ms;	/* deadlines up to this are due */
	char			*due_source;	/* the index it was found in */
	int			 applied;	/* its event moved the customer */
	int			 dead_letter;	/* 1 + its reason class, or 0 */
};

/* A change, for the customer's list of changes. */
struct batch_history {
	size_t			 customer;	/* index in batch->touched */
	struct journey_change	 change;
	const struct event	*ev;		/* NULL for a timer's change */
	char			 alert_id[ALERT_ID_LEN];	/* "" if none */
};

/*
 * A counter the batch moves, summed over its customers: a field of one of
 * the aggregate hashes (<prefix>map:SEGMENT, <prefix>stages,
 * <prefix>alerts), whose key suffix it names.
 */
struct batch_count {
	char			 key[EVENT_NAME_MAX + 8];	/* "" unused */
	char			 field[MAP_FIELD_MAX];
	int64_t			 delta;
};

/*
 * What the stored hash of a customer said before the batch: the gauges
 * it counts in, and where its deadline and at-risk entries are.
 */
struct batch_before {
	uint64_t		 version;
	int			 stage;
	char			 gone_stage[EVENT_NAME_MAX + 1];
	char			 mseg[EVENT_NAME_MAX + 1];
	int			 level;
	int			 churned;
	char			 home[JOURNEY_SOURCE_MAX];
	int64_t			 indexed_ms;
};

/* A customer's packed state as a batch left it (see batch.saved). */
struct batch_saved {
	size_t			 len;
	unsigned char		 packed[];
};

/* makes room for one more element at arr[n], doubling cap */
#define GROW(arr, n, cap) do {						\
		if ((n) == (cap)) {					\
			(cap) = (cap) ? 2 * (cap) : 64;			\
			if (((arr) = reallocarray((arr), (cap),		\
			    sizeof(*(arr)))) == NULL)			\
				fatal("batch");				\
		}							\
	} while (0)

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
	 * Per touched customer, its state as this batch left it, once a later
	 * batch changes the cache's (NULL until then: the cache's is). Writing
	 * the later state before the later batch's alerts are acknowledged
	 * could record an event whose alert a crash then loses.
	 */
	struct batch_saved		**saved;
	struct batch_before		*before;	/* per touched customer */
	size_t				 nhistory, history_cap;
	struct batch_history		*history;
	size_t				 ncounts, counts_cap;	/* open hashing */
	struct batch_count		*counts;
	rd_kafka_topic_partition_list_t	*offsets;	/* next offset to read */
	int				 due;		/* a batch of deadlines */
	/* counted in env->stats once done (applied: the items') */
	uint64_t			 duplicates;
	uint64_t			 alerts[JOURNEY_CHANGE_KINDS];
};

static rd_kafka_message_t	**pump_msgs;
static struct alert_text	  alert_text;	/* the alert being produced */
static struct event		 *pump_later_ev;	/* next turn */

_Static_assert(KEY_MAX > CONFIG_PREFIX_MAX + EVENT_CUSTOMER_MAX + 2,
    "a customer's key does not fit");

static void
dead_letter(struct journeyd *env, struct batch *b, struct batch_item *it,
    const char *reason)
{
	rd_kafka_message_t	*m = it->msg;
	rd_kafka_headers_t	*had, *hdrs;
	int64_t			 ts;
	char			 source[300], when[24];

	snprintf(source, sizeof(source), "%s/%" PRId32 "/%" PRId64,
	    rd_kafka_topic_name(m->rkt), m->partition, m->offset);
	log_debug("dead letter %s: %s", source, reason);
	/* the message as it came, its headers too, then ours */
	if (rd_kafka_message_headers(m, &had) == RD_KAFKA_RESP_ERR_NO_ERROR)
		hdrs = rd_kafka_headers_copy(had);
	else
		hdrs = rd_kafka_headers_new(3);
	rd_kafka_header_add(hdrs, "reason", -1, reason, -1);
	/*
	 * Its Kafka timestamp (an event's time when it has no ts) as a
	 * header: as the dead letter's own, a replay's old times would put
	 * it past the topic's retention at once
	 */
	if ((ts = rd_kafka_message_timestamp(m, NULL)) >= 0) {
		snprintf(when, sizeof(when), "%" PRId64, ts);
		rd_kafka_header_add(hdrs, "source_timestamp", -1, when, -1);
	}
	rd_kafka_header_add(hdrs, "source", -1, source, -1);
	kafka_sink_produce(env, env->conf->topic_dead_letter, m->key,
	    m->key_len, m->payload, m->len, hdrs, b);
	b->deliveries_pending++;
	it->dead_letter = 1 + metrics_reason_class(env, reason);
}

static void	on_loaded(struct journeyd *, redisReply *, void *);

/*
 * On the reader, so that a load does not wait behind the writes in flight
 * (its batch's alerts wait for it): none of them touches this customer,
 * since one in flight keeps its customers in memory until Redis answers.
 */
static void
send_load(struct journeyd *env, struct customer_entry *cust)
{
	char		 key[KEY_MAX];
	const char	*argv[2];
	size_t		 argvlen[2];

	argv[0] = "GET";
	argvlen[0] = 3;
	argv[1] = key;
	argvlen[1] = customer_key(key, sizeof(key), env->conf->redis_prefix,
	    cust->id, "");
	if (redis_store_read(env, on_loaded, cust, 2, argv, argvlen) == -1)
		fatalx("redis: cannot queue a load");
}

static void
on_loaded(struct journeyd *env, redisReply *r, void *arg)
{
	struct customer_entry	*cust = arg;
	struct batch		*b = cust->loader;
	const char		*why;
	int			 rc;

	/*
	 * An error other than the key's type (busy, loading, an ACL) is
	 * Redis's trouble, not the customer's: the events are read again
	 * once it answers, instead of being dead-lettered.
	 */
	if (r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "WRONGTYPE", 9) != 0) {
		redis_store_fail(env, "cannot load a customer", r->str);
		return;
	}
	rc = customer_cache_load(&env->conf->model, names_table(env), cust,
	    r, &why);
	if (rc == CUSTOMER_NAME_UNKNOWN && (!cust->names_tried ||
	    cust->names_gen != names_generation(env))) {
		/*
		 * Numbered by a table newer than our copy (another instance
		 * numbered a name, or the table was started again): read the
		 * table, then the customer, both on the reader, whose replies
		 * come in order, so the copy is as new as the state for the
		 * second reply. Again while each read changes the copy (the
		 * customer may be written meanwhile); once one does not, what
		 * the state numbers is in no table Redis has.
		 */
		cust->names_tried = 1;
		cust->names_gen = names_generation(env);
		names_read_all(env);
		send_load(env, cust);
		return;
	}
	cust->loader = NULL;
	cust->loaded = 1;
	if (rc != 0) {
		log_warnx("customer %s: stored state unreadable (%s)", cust->id,
		    why);
		cust->unreadable = 1;
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

/* Takes a reference to the customer, loading it unless it is in memory. */
static void
load_customer(struct journeyd *env, struct batch *b, struct batch_item *it,
    const char *id)
{
	int	created;

	if ((it->cust = customer_cache_ref(env->cache, id, &created)) == NULL)
		fatal("customer cache");
	if (!created)
		return;
	it->cust->loader = b;
	b->loads_pending++;
	send_load(env, it->cust);
}

/* LOADING: parse, dead-letter what is bad, load customers not in memory */
static void
start(struct journeyd *env, struct batch *b)
{
	struct config	*conf = env->conf;
	char		 reason[EVENT_REASON_MAX];
	int64_t		 now = timestamp_now_ms();

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
			dead_letter(env, b, it, reason);
			continue;
		}
		load_customer(env, b, it, it->ev.customer_id);
	}
}

static int
at_risk(const struct journey_state *s)
{
	return s->risk.level >= CHURN_MEDIUM &&
	    s->risk.churned_ms == CHURN_NOT_CHURNED;
}

/*
 * What Redis holds for a customer the batch has not touched yet, whose
 * state is s: the state before the batch (the version check of the write
 * makes sure).
 */
static void
remember_before(struct batch *b, struct customer_entry *cust,
    const struct journey_state *s, struct batch_before *bf)
{
	struct batch		*ahead = cust->writer;
	struct batch_saved	*sv;

	if (cust->touched_by == b->seq)
		return;
	/* a batch ahead has yet to write it: keep it as that batch left it */
	if (ahead != NULL && ahead->saved[cust->touched_at] == NULL) {
		if ((sv = malloc(sizeof(*sv) + cust->packed_len)) == NULL)
			fatal("batch");
		/* packed: the batch ahead touched it */
		sv->len = cust->packed_len;
		memcpy(sv->packed, cust->packed, sv->len);
		ahead->saved[cust->touched_at] = sv;
	}
	bf->version = s->version;
	bf->stage = s->stage;
	memcpy(bf->gone_stage, s->gone_stage, sizeof(bf->gone_stage));
	memcpy(bf->mseg, s->mseg, sizeof(bf->mseg));
	bf->level = s->risk.level;
	bf->churned = s->risk.churned_ms != CHURN_NOT_CHURNED;
	memcpy(bf->home, s->home, sizeof(bf->home));
	bf->indexed_ms = s->indexed_ms;
}

/*
 * The customer's index in b->touched, adding it on first touch with what
 * remember_before() saw; the batch's write will be the next version of
 * its state s.
 */
static size_t
touch(struct batch *b, struct customer_entry *cust,
    const struct batch_before *bf, struct journey_state *s)
{
	if (cust->touched_by != b->seq) {
		cust->touched_by = b->seq;
		cust->touched_at = b->ntouched;
		cust->writer = b;
		b->before[b->ntouched] = *bf;
		s->version = bf->version + 1;
		b->touched[b->ntouched++] = cust;
	}
	return cust->touched_at;	/* this batch's while it applies */
}

/* Adds delta to the batch's counter key/field (open hashing). */
static void
count(struct batch *b, const char *key, const char *field, int64_t delta)
{
	struct batch_count	*c, *old;
	size_t			 cap, i;
	uint64_t		 h;

	if (2 * (b->ncounts + 1) > b->counts_cap) {
		old = b->counts;
		cap = b->counts_cap;
		b->counts_cap = cap ? 2 * cap : 256;
		if ((b->counts = calloc(b->counts_cap, sizeof(*c))) == NULL)
			fatal("batch counters");
		b->ncounts = 0;
		for (i = 0; i < cap; i++)
			if (old[i].key[0] != '\0')
				count(b, old[i].key, old[i].field,
				    old[i].delta);
		free(old);
	}
	h = journey_id_hash(field) ^ (journey_id_hash(key) * 31);
	for (i = h & (b->counts_cap - 1);; i = (i + 1) & (b->counts_cap - 1)) {
		c = &b->counts[i];
		if (c->key[0] == '\0') {
			snprintf(c->key, sizeof(c->key), "%s", key);
			snprintf(c->field, sizeof(c->field), "%s", field);
			b->ncounts++;
			break;
		}
		if (strcmp(c->field, field) == 0 && strcmp(c->key, key) == 0)
			break;
	}
	c->delta += delta;
}

/* <prefix>map:SEGMENT's key suffix (once per event: without printf) */
static const char *
map_key(const char *segment, char buf[EVENT_NAME_MAX + 8])
{
	size_t	len = strnlen(segment, EVENT_NAME_MAX);

	memcpy(buf, "map:", 4);
	memcpy(buf + 4, segment, len);
	buf[4 + len] = '\0';
	return buf;
}

/* Adds the map counters res moves to the batch's. */
static void
count_deltas(struct journeyd *env, struct batch *b,
    const struct journey_state *s, const struct event *ev,
    const struct journey_result *res)
{
	struct map_delta	 d[MAP_DELTAS_MAX];
	char			 key[EVENT_NAME_MAX + 8];
	int			 n;

	n = map_deltas(&env->conf->model, s, ev, res, d);
	for (int i = 0; i < n; i++) {
		if (i == 0 || d[i].segment != d[i - 1].segment)
			map_key(d[i].segment, key);
		count(b, key, d[i].field, d[i].delta);
	}
}

/* Records the changes res holds and produces the alerts they raise. */
static void
produce_changes(struct journeyd *env, struct batch *b, size_t customer,
    const struct alert_origin *origin, const struct journey_result *res)
{
	const struct journey_model	*model = &env->conf->model;
	struct batch_history		*h;
	const char			*topic;

	for (int i = 0; i < res->nchanges; i++) {
		GROW(b->history, b->nhistory, b->history_cap);
		h = &b->history[b->nhistory++];
		h->customer = customer;
		h->change = res->change[i];
		h->ev = h->change.deadline_ms < 0 ? origin->event : NULL;
		h->alert_id[0] = '\0';
		if (!journey_change_alerts(&h->change))
			continue;
		alert_id(model, &h->change, origin, h->alert_id);
		if (alert_encode(model, &h->change, origin, h->alert_id,
		    &alert_text) == -1)
			fatal("alert");
		topic = h->change.kind == JOURNEY_CHANGE_STAGE ?
		    env->conf->topic_stage_change : env->conf->topic_churn_risk;
		kafka_sink_produce(env, topic, origin->customer_id,
		    strlen(origin->customer_id), alert_text.p, alert_text.len,
		    NULL, b);
		b->deliveries_pending++;
		b->alerts[h->change.kind]++;
		count(b, "alerts", alert_type(h->change.kind), 1);
	}
}

/* A due customer deleted, or unreadable: its index entry goes. */
static void
drop_due_entry(struct journeyd *env, const struct batch_item *it)
{
	char		 key[KEY_MAX];
	const char	*argv[] = { "ZREM", key, it->cust->id };

	snprintf(key, sizeof(key), "%sdue:%s", env->conf->redis_prefix,
	    it->due_source);
	redis_store_command_v(env, 3, argv);
}

/*
 * A due customer in a stage the config no longer has keeps its entry, put
 * off to the end of time (TIMESTAMP_MAX_MS): nothing else would place it
 * again once the stage is back, since a silent customer is not written.
 * The config that has the stage again sweeps the entries put off (see
 * deadlines.c) and settles their customers. Not a day or so: a sweep
 * going on meets an entry put off ahead of it again, each time.
 */
static void
put_off_due_entry(struct journeyd *env, const struct batch_item *it)
{
	char		 key[KEY_MAX], at[32];
	const char	*argv[] = { "ZADD", key, "XX", at, it->cust->id };

	snprintf(key, sizeof(key), "%sdue:%s", env->conf->redis_prefix,
	    it->due_source);
	snprintf(at, sizeof(at), "%lld", (long long)TIMESTAMP_MAX_MS);
	redis_store_command_v(env, 5, argv);
}

/* DELIVERING: fold the events into state, produce what they trigger */
static void
apply(struct journeyd *env, struct batch *b)
{
	const struct journey_model	*model = &env->conf->model;
	struct journey_result		 res;
	struct alert_origin		 origin;
	struct batch_before		 before;
	struct journey_state		 s;
	char				 source[300];
	/* messages come in runs of one partition: its name, made once */
	const rd_kafka_topic_t		*source_rkt = NULL;
	int32_t				 source_partition = -1;

	for (size_t i = 0; i < b->n; i++) {
		struct batch_item	*it = &b->item[i];
		struct customer_entry	*cust = it->cust;
		rd_kafka_message_t	*m = it->msg;

		if (cust == NULL)
			continue;
		if (!cust->unreadable)
			customer_cache_get(model, cust, &s);
		if (m == NULL && (cust->unreadable ||
		    s.stage == JOURNEY_NO_STAGE)) {
			/* no journey to settle: nothing is written */
			if (!cust->unreadable && s.gone_stage[0] != '\0')
				put_off_due_entry(env, it);
			else
				drop_due_entry(env, it);
			continue;
		}
		if (cust->unreadable) {
			dead_letter(env, b, it, "stored state of this customer "
			    "is unreadable");
			continue;
		}
		memset(&origin, 0, sizeof(origin));
		origin.customer_id = cust->id;
		remember_before(b, cust, &s, &before);
		if (m == NULL) {
			/*
			 * its entry is placed again, even at the deadline the
			 * state names: one put off while its stage was gone
			 * (put_off_due_entry) is not there. A ZADD more for a
			 * due customer whose deadline stays; most move it.
			 */
			before.indexed_ms = 0;
			journey_settle(model, &s, it->due_now_ms, &res);
			/* written even unchanged: its index entry is stale */
			produce_changes(env, b, touch(b, cust, &before, &s),
			    &origin, &res);
			count_deltas(env, b, &s, NULL, &res);
			customer_cache_put(model, cust, &s);
			continue;
		}
		origin.event = &it->ev;
		origin.topic = rd_kafka_topic_name(m->rkt);
		origin.partition = m->partition;
		origin.offset = m->offset;
		if (m->rkt != source_rkt || m->partition != source_partition) {
			snprintf(source, sizeof(source), "%s/%" PRId32,
			    origin.topic, m->partition);
			source_rkt = m->rkt;
			source_partition = m->partition;
		}
		journey_apply(model, &s, &it->ev, source, m->offset, &res);
		if (res.outcome == JOURNEY_DUPLICATE) {
			b->duplicates++;
			continue;
		}
		/* a repeated event_id still moves the customer's offset */
		if (res.outcome == JOURNEY_DUPLICATE_ID)
			b->duplicates++;
		else {
			it->applied = 1;
			deadlines_observe(env, source, it->ev.ts_ms);
		}
		produce_changes(env, b, touch(b, cust, &before, &s), &origin,
		    &res);
		count_deltas(env, b, &s, &it->ev, &res);
		customer_cache_put(model, cust, &s);
	}
}

/*
 * The batch's state write, run atomically by Redis (a script runs whole,
 * and its effects reach the AOF whole).
 * KEYS: <prefix>offsets, then per customer its key and list of changes.
 * ARGV: the key prefix; the writer's name and this write's place in its
 * chain; the number of partitions, then per partition its field, its last
 * offset and, with clock = event, the latest time of its events the batch
 * applied (else empty: none applied, or the wall clock); per
 * customer: the version the write expects to replace (its 8 bytes, empty
 * for none), the packed state (customer_pack), the number of changes and
 * their entries (customer_change_split), the latest CHANGES_KEPT at most;
 * the number of sorted-set groups to set entries of, and per group its key
 * suffix, the number of entries and (score, member) pairs; the same for
 * entries to keep (added only if missing), then for removals, with members
 * only; the number of counters, and per counter key suffix, field and
 * delta; last, for the name table (names.c): the names to number, their
 * count, how many names this instance's copy holds and its first name (0
 * and none when the states number no name).
 *
 * Writes are pipelined: several of one connection may be in Redis before
 * journeyd reads the answer to the first. None of them may run once one
 * before it was not done (refused, or failed halfway): it could build on
 * the refused one's states (and find a version the refused write meant
 * to leave, but another instance wrote), or move a partition's watermark
 * past the refused one's events, which the rewind that follows would then
 * skip. So each write names the writer connection and its place in that
 * connection's chain (redis_store_writer_chain), and runs only if
 * <prefix>writer:NAME holds the place before it: the place of the last
 * write done on the connection (0, or none, before the first: the
 * connection's setup writes 0, for a minute), kept for a day after it (one
 * that wrote nothing for a day has its next write refused, and starts a
 * new chain on a new connection).
 *
 * Every customer's stored version is checked before anything else is
 * written: if one is not the version the batch read (someone else wrote
 * it, or the key holds no string), the script puts back the states it
 * had written, writes nothing else and names it, and journeyd starts over
 * from what Redis holds (any other error of a SET, such as OOM or
 * READONLY, is answered as it is, after the same undoing). The check is
 * the state's own SET, which answers with the value it replaced (SET ...
 * GET): a GETRANGE of each customer before its SET cost a third of the
 * script's time. So everything else, gauges and stage counts included, is
 * computed by journeyd from the state it read and summed per batch: one
 * HINCRBY per counter per batch, not per customer. Partition watermarks,
 * and the event clocks beside them (<prefix>clocks: deadlines.c reads a
 * partition's when it is assigned), only move forward, and come last.
 *
 * Redis does not undo a script an error stops halfway, and states written
 * without the rest would still count their events applied (each holds its
 * partitions' offsets): the replay would skip them, and their changes,
 * index entries and counters would be lost for good. So before anything
 * but the states is written, the keys the rest writes are checked to be
 * of their kind (a key of the same name written by another tool or by
 * hand). Then come the writes that can still be refused, each undone
 * when one after it is: the counters (a field that holds no integer, or
 * would overflow, refuses its HINCRBY; the ones before it are moved
 * back, and deleted where that leaves them 0), then the lists of changes
 * (those pushed before one that refuses are popped). Either way the
 * states are put back and the error answered. The batch is refused at
 * each try, and consumption waits, until the key is mended.
 *
 * The states number names by this instance's copy of the name table, so
 * that copy must still be a beginning of the list: the list at least as
 * long, and its first name (unique to each table: the script starts a
 * table with one made of the server's clock) the copy's. If not (the list
 * was deleted, or started again), the script writes nothing and journeyd
 * reconnects, which reads the table afresh. The script numbers the names
 * given that are not numbered yet (up to NAME_TABLE_MAX), after the states
 * that spelled them out, and answers with the table's length, so that
 * journeyd reads the new names.
 */
static const char state_script[] =
    "local prefix, slice = ARGV[1], 500\n"
    "local chain, link = prefix .. 'writer:' .. ARGV[2], tonumber(ARGV[3])\n"
    "if tonumber(redis.call('GET', chain) or 0) ~= link - 1 then\n"
    "  return {'chain', ARGV[2]}\n"
    "end\n"
    "local names, last = prefix .. 'names', #ARGV\n"
    "local fresh, known = tonumber(ARGV[last - 2]), tonumber(ARGV[last - 1])\n"
    "if known > 0 and (redis.call('LLEN', names) < known or\n"
    "    redis.call('LINDEX', names, 0) ~= ARGV[last]) then\n"
    "  return {'names', ARGV[last]}\n"
    "end\n"
    "local wm, clocks = 4, prefix .. 'clocks'\n"
    "local first = wm + 1 + 3 * tonumber(ARGV[wm])\n"
    "local a, old = first, {}\n"
    "local function undo()\n"
    "  for i = #old, 1, -1 do\n"
    "    if old[i] then redis.call('SET', KEYS[2 * i], old[i])\n"
    "    else redis.call('DEL', KEYS[2 * i]) end\n"
    "  end\n"
    "end\n"
    "for c = 2, #KEYS, 2 do\n"
    "  local prev = redis.pcall('SET', KEYS[c], ARGV[a + 1], 'GET')\n"
    "  if type(prev) == 'table' or\n"
    "      (prev and string.sub(prev, 1, "
    NUMBER_TEXT(CUSTOMER_VERSION_LEN) ") or '') ~= ARGV[a] then\n"
    "    if type(prev) ~= 'table' then old[#old + 1] = prev end\n"
    "    undo()\n"
    "    if type(prev) == 'table' and\n"
    "        not string.find(prev.err, 'WRONGTYPE', 1, true) then\n"
    "      return prev\n"
    "    end\n"
    "    return {'stale', KEYS[c]}\n"
    "  end\n"
    "  old[#old + 1] = prev\n"
    "  a = a + 3 + tonumber(ARGV[a + 2])\n"
    "end\n"
    "local kinds, z = {[KEYS[1]] = 'hash', [names] = 'list'}, a\n"
    "for i = wm + 3, first - 1, 3 do\n"
    "  if ARGV[i] ~= '' then kinds[clocks] = 'hash' end\n"
    "end\n"
    "for _, width in ipairs({2, 2, 1}) do\n"
    "  for g = 1, tonumber(ARGV[z]) do\n"
    "    kinds[prefix .. ARGV[z + 1]] = 'zset'\n"
    "    z = z + 2 + width * tonumber(ARGV[z + 2])\n"
    "  end\n"
    "  z = z + 1\n"
    "end\n"
    "for i = z + 1, z + 3 * tonumber(ARGV[z]), 3 do\n"
    "  kinds[prefix .. ARGV[i]] = 'hash'\n"
    "end\n"
    "for key, kind in pairs(kinds) do\n"
    "  local t = redis.call('TYPE', key).ok\n"
    "  if t ~= kind and t ~= 'none' then\n"
    "    undo()\n"
    "    return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' ..\n"
    "      t .. ', not a ' .. kind)\n"
    "  end\n"
    "end\n"
    "local counted = z\n"
    "local function uncount()\n"
    "  for i = z + 1, counted - 1, 3 do\n"
    "    local d, key = ARGV[i + 2], prefix .. ARGV[i]\n"
    "    if string.sub(d, 1, 1) == '-' then d = string.sub(d, 2)\n"
    "    else d = '-' .. d end\n"
    "    if redis.call('HINCRBY', key, ARGV[i + 1], d) == 0 then\n"
    "      redis.call('HDEL', key, ARGV[i + 1])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for i = z + 1, z + 3 * tonumber(ARGV[z]), 3 do\n"
    "  local n = redis.pcall('HINCRBY', prefix .. ARGV[i], ARGV[i + 1],\n"
    "    ARGV[i + 2])\n"
    "  if type(n) == 'table' then\n"
    "    uncount()\n"
    "    undo()\n"
    "    return n\n"
    "  end\n"
    "  counted = i + 3\n"
    "end\n"
    "a = first\n"
    "local lens = {}\n"
    "for c = 2, #KEYS, 2 do\n"
    "  local h = tonumber(ARGV[a + 2])\n"
    "  if h > 0 then\n"
    "    local len = redis.pcall('RPUSH', KEYS[c + 1],\n"
    "      unpack(ARGV, a + 3, a + 2 + h))\n"
    "    if type(len) == 'table' then\n"
    "      a = first\n"
    "      for d = 2, c - 2, 2 do\n"
    "        local n = tonumber(ARGV[a + 2])\n"
    "        if n > 0 then redis.call('RPOP', KEYS[d + 1], n) end\n"
    "        a = a + 3 + n\n"
    "      end\n"
    "      uncount()\n"
    "      undo()\n"
    "      return len\n"
    "    end\n"
    "    lens[c] = len\n"
    "  end\n"
    "  a = a + 3 + h\n"
    "end\n"
    "for c, len in pairs(lens) do\n"
    "  if len > " NUMBER_TEXT(CHANGES_KEPT) " then\n"
    "    redis.call('LTRIM', KEYS[c + 1], -" NUMBER_TEXT(CHANGES_KEPT)
    ", -1)\n"
    "  end\n"
    "end\n"
    "for _, op in ipairs({{'ZADD', 2}, {'ZADD', 2, 'NX'}, {'ZREM', 1}}) do\n"
    "  for g = 1, tonumber(ARGV[a]) do\n"
    "    local key, n = prefix .. ARGV[a + 1], tonumber(ARGV[a + 2])\n"
    "    local from, to = a + 3, a + 2 + op[2] * n\n"
    "    for s = from, to, op[2] * slice do\n"
    "      local last = math.min(to, s + op[2] * slice - 1)\n"
    "      if op[3] then redis.call(op[1], key, op[3], unpack(ARGV, s, last))\n"
    "      else redis.call(op[1], key, unpack(ARGV, s, last)) end\n"
    "    end\n"
    "    a = to\n"
    "  end\n"
    "  a = a + 1\n"
    "end\n"
    "if fresh > 0 and redis.call('LLEN', names) == 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  redis.call('RPUSH', names, 'journeyd names ' .. t[1] .. '.' .. t[2])\n"
    "end\n"
    "for i = last - 2 - fresh, last - 3 do\n"
    "  if redis.call('LLEN', names) < " NUMBER_TEXT(NAME_TABLE_MAX) " and\n"
    "      not redis.call('LPOS', names, ARGV[i]) then\n"
    "    redis.call('RPUSH', names, ARGV[i])\n"
    "  end\n"
    "end\n"
    "for i = wm + 1, first - 1, 3 do\n"
    "  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))\n"
    "  if cur == nil or tonumber(ARGV[i + 1]) > cur then\n"
    "    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])\n"
    "  end\n"
    "  if ARGV[i + 2] ~= '' then\n"
    "    cur = tonumber(redis.call('HGET', clocks, ARGV[i]))\n"
    "    if cur == nil or tonumber(ARGV[i + 2]) > cur then\n"
    "      redis.call('HSET', clocks, ARGV[i], ARGV[i + 2])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('SET', chain, link, 'PX', " NUMBER_TEXT(CHAIN_TTL_MS) ")\n"
    "return redis.call('LLEN', names)\n";

static int	state_script_id;

static void
on_written(struct journeyd *env, redisReply *r, void *arg)
{
	struct batch	*b = arg;
	const char	*why;

	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		/* our state of it is not Redis's: start over from Redis */
		if (strcmp(r->element[0]->str, "names") == 0)
			why = "the name table in Redis is not the one read";
		else if (strcmp(r->element[0]->str, "chain") == 0)
			why = "state write refused: one before it on this "
			    "connection was not done, or none was for a day";
		else
			why = "a customer was written by someone else";
		redis_store_fail(env, why, r->element[1]->str);
		return;
	}
	if (r->type != REDIS_REPLY_INTEGER) {
		/* e.g. NOSCRIPT after SCRIPT FLUSH: reconnecting reloads it */
		redis_store_fail(env, "batch write failed",
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		return;
	}
	names_reported(env, r->integer);
	b->phase = BATCH_DONE;
	batch_schedule_pump(env);
}

/* A change's from and to: stage names, or risk levels. */
static const char *
change_end(const struct journey_model *m, const struct journey_change *c,
    int end)
{
	if (c->kind == JOURNEY_CHANGE_RISK)
		return churn_level_name(end);
	return end == JOURNEY_NO_STAGE ? "" : m->stage[end];
}

/*
 * Moves a customer's gauges by d: in its stage, at risk, churned. A hash
 * stored before the map existed has no map segment: nothing to move there.
 */
static void
count_gauges(struct batch *b, const char *stage, const char *mseg,
    int level, int churned, int d)
{
	char	key[EVENT_NAME_MAX + 8], field[MAP_FIELD_MAX];

	count(b, "stages", stage, d);
	if (mseg[0] == '\0')
		return;
	map_key(mseg, key);
	snprintf(field, sizeof(field), "%s:in", stage);
	count(b, key, field, d);
	if (level >= CHURN_MEDIUM && !churned) {
		snprintf(field, sizeof(field), "%s:at_risk", stage);
		count(b, key, field, d);
	}
	if (level == CHURN_HIGH && !churned) {
		snprintf(field, sizeof(field), "%s:high_risk", stage);
		count(b, key, field, d);
	}
	if (churned) {
		snprintf(field, sizeof(field), "%s:churned", stage);
		count(b, key, field, d);
	}
}

/*
 * What a write does with a sorted-set entry, in the order the state script
 * takes them: set it (ZADD), keep it where it is, putting it back only if
 * it is gone (ZADD NX: nothing reaches the AOF unless it was gone), or
 * remove it (ZREM).
 */
enum zset_verb { ZSET_SET, ZSET_KEEP, ZSET_REMOVE };
#define ZSET_VERBS	(ZSET_REMOVE + 1)
/*
 * A deadline index entry a write leaves where it is is put back if it went
 * (deleted by hand, or by a write that failed halfway) at every
 * KEEP_EVERY-th version of the customer: on every write, the ZADD NX cost
 * 15% of Redis's time per event, most of what not moving the entry saved.
 */
#define KEEP_EVERY	8

struct zset_op {
	const char	*index;		/* "at_risk", or "due:" and home */
	const char	*home;		/* "" for at_risk */
	enum zset_verb	 verb;
	int64_t		 due;		/* the score of a due: entry */
	double		 score;		/* the score of an at_risk entry */
	const char	*member;
};

static int
zset_op_cmp(const void *a, const void *b)
{
	const struct zset_op	*x = a, *y = b;
	int			 d;

	if (x->verb != y->verb)
		return x->verb < y->verb ? -1 : 1;
	if ((d = strcmp(x->index, y->index)) != 0)
		return d;
	return strcmp(x->home, y->home);
}

/*
 * The state write's scratch, kept from batch to batch: one write is built
 * at a time and hiredis has copied it before the next, and batches of
 * thousands of customers would otherwise allocate (and fault in) megabytes
 * each time.
 */
static struct {
	struct resp		 cmd;
	struct zset_op		*zops;
	int			*first, *next;
	char			(*home)[JOURNEY_SOURCE_MAX];	/* as written */
	int64_t			*latest;	/* per partition: latest_applied */
	size_t			 zops_cap, first_cap, next_cap, home_cap;
	size_t			 latest_cap;
	struct name_table	*want;		/* names the write spells out */
} wr;

/* arr with room for n elements of size (growing *cap) */
static void *
scratch(void *arr, size_t *cap, size_t n, size_t size)
{
	if (n <= *cap)
		return arr;
	*cap = n > 2 * *cap ? n : 2 * *cap;
	if ((arr = reallocarray(arr, *cap, size)) == NULL)
		fatal("batch write");
	return arr;
}

/*
 * wr.latest[i]: with clock = event, the latest time of the events of
 * b->offsets' partition i the batch applied, the clock it leaves durable
 * (deadlines_observe moved it as they were applied); -1 when none was.
 */
static void
latest_applied(struct journeyd *env, const struct batch *b)
{
	const rd_kafka_message_t	*m;
	const rd_kafka_topic_partition_t *tp;
	int				 cnt = b->offsets->cnt, p = 0, tries;

	wr.latest = scratch(wr.latest, &wr.latest_cap, (size_t)cnt + 1,
	    sizeof(*wr.latest));
	for (int i = 0; i < cnt; i++)
		wr.latest[i] = -1;
	if (env->conf->clock != CONFIG_CLOCK_EVENT)
		return;
	for (size_t i = 0; i < b->n; i++) {
		if (!b->item[i].applied || (m = b->item[i].msg) == NULL)
			continue;
		/* events come in runs of one partition: look there first */
		for (tries = 0; tries < cnt; tries++, p = (p + 1) % cnt) {
			tp = &b->offsets->elems[p];
			if (tp->partition == m->partition &&
			    strcmp(tp->topic, rd_kafka_topic_name(m->rkt)) == 0)
				break;
		}
		if (tries < cnt && b->item[i].ev.ts_ms > wr.latest[p])
			wr.latest[p] = b->item[i].ev.ts_ms;
	}
}

/*
 * Adds a customer's changes to the write: their count, then each entry;
 * only the latest CHANGES_KEPT, which is all the list keeps (and all Lua's
 * unpack takes: a few thousand).
 */
static void
add_changes(struct resp *cmd, const struct journey_model *model,
    const struct batch *b, int first)
{
	size_t		 n = 0;
	const char	*part[CUSTOMER_CHANGE_FIELDS];
	size_t		 len[CUSTOMER_CHANGE_FIELDS];
	char		 at[TIMESTAMP_ISO_LEN];

	for (int h = first; h != -1; h = wr.next[h])
		n++;
	for (; n > CHANGES_KEPT; n--)
		first = wr.next[first];
	resp_i64(cmd, (int64_t)n);
	for (int h = first; h != -1; h = wr.next[h]) {
		const struct batch_history	*e = &b->history[h];
		const struct journey_change	*c = &e->change;

		/* in the order of customer_change_field */
		part[0] = journey_change_kind_name(c->kind);
		part[1] = change_end(model, c, c->from);
		part[2] = change_end(model, c, c->to);
		timestamp_format_iso8601(c->at_ms, at);
		part[3] = at;
		part[4] = e->ev != NULL ? e->ev->type : "inactivity";
		part[5] = e->ev != NULL ? e->ev->event_id : "";
		part[6] = e->alert_id;
		part[7] = c->reasons;
		for (int i = 0; i < CUSTOMER_CHANGE_FIELDS; i++)
			len[i] = strlen(part[i]);
		resp_join(cmd, '\t', CUSTOMER_CHANGE_FIELDS, part, len);
	}
}

/*
 * Adds the sorted-set entries to the write, verb by verb, each as a count
 * of groups and per group its key suffix, the count of entries and the
 * entries.
 */
static void
add_zset_ops(struct resp *cmd, struct zset_op *zops, size_t nz)
{
	size_t	z = 0;

	qsort(zops, nz, sizeof(*zops), zset_op_cmp);
	for (enum zset_verb verb = 0; verb < ZSET_VERBS; verb++) {
		size_t	groups = resp_count_slot(cmd), ngroups = 0;
		int	add = verb != ZSET_REMOVE;

		while (z < nz && zops[z].verb == verb) {
			const struct zset_op	*g = &zops[z];
			size_t			 entries, n = 0;

			resp_concat(cmd, g->index, g->home, NULL);
			entries = resp_count_slot(cmd);
			for (; z < nz && zset_op_cmp(&zops[z], g) == 0;
			    z++, n++) {
				if (add && zops[z].index[0] == 'd')
					resp_i64(cmd, zops[z].due);
				else if (add)
					resp_printf(cmd, "%.3f",
					    zops[z].score);
				resp_str(cmd, zops[z].member);
			}
			resp_count_set(cmd, entries, n);
			ngroups++;
		}
		resp_count_set(cmd, groups, ngroups);
	}
}

/* The state the batch writes for its i-th customer, as it left it. */
static void
written(const struct journey_model *m, const struct batch *b, size_t i,
    struct journey_state *s)
{
	const struct customer_entry	*cust = b->touched[i];
	const struct batch_saved	*sv = b->saved[i];

	if (sv == NULL)
		customer_cache_get(m, cust, s);
	else if (customer_unpack(m, NULL, s, sv->packed, sv->len) != 0)
		fatalx("customer %s: its saved state does not unpack",
		    cust->id);
}

/* Moves the gauges of a customer from what Redis held (bf) to s. */
static void
move_gauges(const struct journey_model *m, struct batch *b,
    const struct batch_before *bf, const struct journey_state *s)
{
	int	churned = s->risk.churned_ms != CHURN_NOT_CHURNED;

	if (bf->stage == s->stage && strcmp(bf->mseg, s->mseg) == 0 &&
	    bf->level == s->risk.level && bf->churned == churned)
		return;
	if (bf->stage != JOURNEY_NO_STAGE)
		count_gauges(b, m->stage[bf->stage], bf->mseg, bf->level,
		    bf->churned, -1);
	else if (bf->gone_stage[0] != '\0')
		count_gauges(b, bf->gone_stage, bf->mseg, bf->level,
		    bf->churned, -1);
	if (s->stage != JOURNEY_NO_STAGE)
		count_gauges(b, m->stage[s->stage], s->mseg, s->risk.level,
		    churned, 1);
	else if (s->gone_stage[0] != '\0')
		count_gauges(b, s->gone_stage, s->mseg, s->risk.level,
		    churned, 1);
}

/* WRITING: the batch's state and watermarks in one script call */
static void
write_state(struct journeyd *env, struct batch *b)
{
	const struct journey_model	*model = &env->conf->model;
	const char			*prefix = env->conf->redis_prefix;
	struct resp			*cmd = &wr.cmd;
	int				 cnt = b->offsets->cnt;
	size_t				 nz = 0, len;
	const char			*wire;
	const struct name_table		*names = names_table(env);
	struct name_table		*want = NULL;
	struct journey_state		 s;
	int				 known = name_table_count(names);
	const char			*writer;
	uint64_t			 link;

	if (cnt == 0 && b->ntouched == 0) {	/* only consumer errors */
		b->phase = BATCH_DONE;
		return;
	}
	if (known < NAME_TABLE_MAX) {
		if (wr.want == NULL && (wr.want = name_table_new()) == NULL)
			fatal("batch write");
		name_table_clear(wr.want);
		want = wr.want;
	}
	wr.home = scratch(wr.home, &wr.home_cap, b->ntouched + 1,
	    sizeof(*wr.home));
	/* each customer's changes, in order: first[c], then next[h] */
	wr.zops = scratch(wr.zops, &wr.zops_cap, ZSET_OPS * b->ntouched + 1,
	    sizeof(*wr.zops));
	wr.first = scratch(wr.first, &wr.first_cap, b->ntouched + 1,
	    sizeof(*wr.first));
	wr.next = scratch(wr.next, &wr.next_cap, b->nhistory + 1,
	    sizeof(*wr.next));
	for (size_t c = 0; c < b->ntouched; c++)
		wr.first[c] = -1;
	for (size_t h = b->nhistory; h-- > 0;) {
		wr.next[h] = wr.first[b->history[h].customer];
		wr.first[b->history[h].customer] = (int)h;
	}

	resp_begin(cmd);
	resp_arg(cmd, "EVALSHA", 7);
	resp_arg(cmd, redis_store_script_sha(env, state_script_id), 40);
	resp_i64(cmd, 1 + 2 * (int64_t)b->ntouched);
	resp_concat(cmd, prefix, "offsets", NULL);
	for (size_t i = 0; i < b->ntouched; i++) {
		resp_concat(cmd, prefix, "{", b->touched[i]->id, "}", NULL);
		resp_concat(cmd, prefix, "{", b->touched[i]->id, "}"
		    CUSTOMER_CHANGES_SUFFIX, NULL);
	}
	resp_str(cmd, prefix);
	writer = redis_store_writer_chain(env, &link);
	resp_str(cmd, writer);
	resp_i64(cmd, (int64_t)link);
	resp_i64(cmd, cnt);
	latest_applied(env, b);
	for (int i = 0; i < cnt; i++) {
		rd_kafka_topic_partition_t	*tp = &b->offsets->elems[i];

		resp_printf(cmd, "%s/%" PRId32, tp->topic, tp->partition);
		resp_i64(cmd, tp->offset - 1);
		if (wr.latest[i] >= 0)
			resp_i64(cmd, wr.latest[i]);
		else
			resp_arg(cmd, "", 0);
	}
	for (size_t i = 0; i < b->ntouched; i++) {
		struct customer_entry		*cust = b->touched[i];
		const struct batch_before	*bf = &b->before[i];
		unsigned char			 packed[CUSTOMER_PACKED_MAX];
		unsigned char			 expect[CUSTOMER_VERSION_LEN];
		int				 moved;

		written(model, b, i, &s);
		/* for Redis, names by their numbers */
		if ((len = customer_pack(model, names, want, &s, packed,
		    sizeof(packed))) == 0)
			fatalx("customer %s: state too large to pack",
			    cust->id);
		/* gauges move from what Redis held to what is written */
		move_gauges(model, b, bf, &s);
		memcpy(wr.home[i], s.home, sizeof(s.home));
		/* the key's first bytes as read; none for a new customer */
		customer_version_bytes(bf->version, expect);
		resp_arg(cmd, expect, bf->version == 0 ? 0 :
		    CUSTOMER_VERSION_LEN);
		resp_arg(cmd, packed, len);
		if (cust->writer == b)
			cust->writer = NULL;
		add_changes(cmd, model, b, wr.first[i]);
		/*
		 * the deadline index of its partition (its entry moves only
		 * when the state moved it: journey_apply; one left where it
		 * is comes back every KEEP_EVERY writes if it went), the
		 * at-risk list
		 */
		moved = strcmp(bf->home, s.home) != 0;
		if (s.home[0] != '\0' && s.indexed_ms != 0 &&
		    (s.indexed_ms != bf->indexed_ms || moved ||
		    s.version % KEEP_EVERY == 0))
			wr.zops[nz++] = (struct zset_op){ .index = "due:",
			    .home = wr.home[i], .verb = s.indexed_ms !=
			    bf->indexed_ms || moved ? ZSET_SET : ZSET_KEEP,
			    .due = s.indexed_ms, .member = cust->id };
		if (bf->home[0] != '\0' && (s.indexed_ms == 0 || moved))
			wr.zops[nz++] = (struct zset_op){ .index = "due:",
			    .home = bf->home, .verb = ZSET_REMOVE,
			    .member = cust->id };
		if (at_risk(&s))
			wr.zops[nz++] = (struct zset_op){ .index = "at_risk",
			    .home = "", .verb = ZSET_SET,
			    .score = s.risk.score, .member = cust->id };
		else if (bf->level >= CHURN_MEDIUM && !bf->churned)
			wr.zops[nz++] = (struct zset_op){ .index = "at_risk",
			    .home = "", .verb = ZSET_REMOVE,
			    .member = cust->id };
	}
	add_zset_ops(cmd, wr.zops, nz);
	nz = 0;
	for (size_t i = 0; i < b->counts_cap; i++)
		nz += b->counts[i].key[0] != '\0' && b->counts[i].delta != 0;
	resp_i64(cmd, (int64_t)nz);
	for (size_t i = 0; i < b->counts_cap; i++) {
		struct batch_count	*c = &b->counts[i];

		if (c->key[0] == '\0' || c->delta == 0)
			continue;
		resp_str(cmd, c->key);
		resp_str(cmd, c->field);
		resp_i64(cmd, c->delta);
	}
	nz = want == NULL ? 0 : (size_t)name_table_count(want);
	for (size_t i = 0; i < nz; i++)
		resp_str(cmd, name_table_name(want, (int)i));
	resp_i64(cmd, (int64_t)nz);
	/* a copy without its first name has no tag and numbered nothing */
	if (name_table_tag(names) == 0)
		known = 0;
	resp_i64(cmd, known);
	resp_str(cmd, known > 0 ? name_table_name(names, 0) : "");
	b->phase = BATCH_WRITING;
	wire = resp_end(cmd, &len);
	if (redis_store_formatted(env, on_written, b, wire, len) == -1)
		fatalx("redis: cannot queue a batch write");
}

static void
release_items(struct journeyd *env, struct batch *b)
{
	TAILQ_REMOVE(&env->batches, b, entry);
	/* before the customers go: the cache may free them */
	for (size_t i = 0; i < b->ntouched; i++) {
		free(b->saved[i]);
		if (b->touched[i]->writer == b)
			b->touched[i]->writer = NULL;
	}
	free(b->saved);
	for (size_t i = 0; i < b->n; i++) {
		if (b->item[i].cust != NULL)
			customer_cache_unref(env->cache, b->item[i].cust);
		free(b->item[i].due_source);
		if (b->item[i].msg != NULL)
			rd_kafka_message_destroy(b->item[i].msg);
	}
	env->inflight -= (int64_t)b->n;
	rd_kafka_topic_partition_list_destroy(b->offsets);
	free(b->touched);
	free(b->history);
	free(b->counts);
	free(b->before);
	free(b->item);
	b->offsets = NULL;
	b->touched = NULL;
	b->saved = NULL;
	b->history = NULL;
	b->counts = NULL;
	b->before = NULL;
	b->item = NULL;
	b->n = 0;
}

/* The events a batch applied are durable: so far the clocks go back to. */
static void
observe_durable(struct journeyd *env, const struct batch *b)
{
	const rd_kafka_message_t	*m, *last = NULL;
	char				 source[JOURNEY_SOURCE_MAX];

	for (size_t i = 0; i < b->n; i++) {
		if (!b->item[i].applied)
			continue;
		m = b->item[i].msg;
		if (last == NULL || m->rkt != last->rkt ||
		    m->partition != last->partition)
			snprintf(source, sizeof(source), "%s/%" PRId32,
			    rd_kafka_topic_name(m->rkt), m->partition);
		last = m;
		deadlines_durable(env, source, b->item[i].ev.ts_ms);
	}
}

/* DONE, at the head of the queue: store offsets and let go */
static void
finish(struct journeyd *env, struct batch *b)
{
	if (env->conf->clock == CONFIG_CLOCK_EVENT)
		observe_durable(env, b);
	if (b->offsets->cnt > 0)
		kafka_source_store(env, b->offsets);
	if (b->due)
		deadlines_done(env);
	for (size_t i = 0; i < b->n; i++) {
		env->stats.applied += (uint64_t)b->item[i].applied;
		if (b->item[i].dead_letter) {
			env->stats.dead_lettered++;
			metrics_dead_lettered(env, b->item[i].dead_letter - 1);
		}
	}
	env->stats.duplicates += b->duplicates;
	for (int k = 0; k < JOURNEY_CHANGE_KINDS; k++)
		env->stats.alerts[k] += b->alerts[k];
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
		if (b->deliveries_pending > 0) {
			b->phase = BATCH_ABANDONED;
			env->abandoned_deliveries += b->deliveries_pending;
		} else
			free(b);
	}
	/* what of theirs waits to be produced again would wait the next
	 * round, holding back consumption meanwhile */
	kafka_sink_drop_abandoned(env);
	if (n > 0)
		log_warnx("abandoned %zu events and deadlines in flight; they "
		    "will be read again", n);
}

/* A new batch of n items, queued behind those in flight. */
static struct batch *
batch_new(struct journeyd *env, size_t n)
{
	struct batch	*b;

	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->item = calloc(n, sizeof(*b->item))) == NULL ||
	    (b->touched = calloc(n, sizeof(*b->touched))) == NULL ||
	    (b->before = calloc(n, sizeof(*b->before))) == NULL ||
	    (b->saved = calloc(n, sizeof(*b->saved))) == NULL ||
	    (b->offsets = rd_kafka_topic_partition_list_new(8)) == NULL)
		fatal("batch of %zu items", n);
	b->seq = ++env->batch_seq;
	b->n = n;
	env->inflight += (int64_t)n;
	TAILQ_INSERT_TAIL(&env->batches, b, entry);
	return b;
}

void
batch_enqueue_due(struct journeyd *env, size_t n, char *const *ids,
    const int64_t *now_ms, const char *const *source)
{
	struct batch	*b = batch_new(env, n);

	b->due = 1;
	for (size_t i = 0; i < n; i++) {
		b->item[i].due_now_ms = now_ms[i];
		if ((b->item[i].due_source = strdup(source[i])) == NULL)
			fatal("due batch");
		load_customer(env, b, &b->item[i], ids[i]);
	}
	batch_schedule_pump(env);
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
	if (!redis_store_ready(env))
		kafka_source_discard(env);
	if (env->inflight == 0) {
		/* first: a revocation left pending would hold the close */
		kafka_source_idle(env);
		if (env->stopping) {
			journeyd_shutdown_step(env);
			return;
		}
		if (env->conf_next != NULL)
			reload_apply(env);
	}
	/* a reload waits for quiescence: take nothing new meanwhile */
	while (!env->stopping && env->conf_next == NULL &&
	    !kafka_source_blocked(env) &&
	    redis_store_ready(env) && !batch_full(env)) {
		if (turns++ == PUMP_BATCHES) {
			/* a timer runs after the loop has polled for I/O */
			evtimer_add(pump_later_ev, &now);
			break;
		}
		want = (size_t)(env->conf->max_inflight - env->inflight -
		    env->abandoned_deliveries);
		if (want > (size_t)env->conf->batch_max)
			want = (size_t)env->conf->batch_max;
		if ((n = kafka_source_consume(env, pump_msgs, want)) == 0)
			break;
		b = batch_new(env, n);
		for (size_t i = 0; i < n; i++)
			b->item[i].msg = pump_msgs[i];
		env->stats.consumed += n;
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

int
batch_full(const struct journeyd *env)
{
	return env->inflight + env->abandoned_deliveries >=
	    env->conf->max_inflight;
}

void
batch_delivered(struct journeyd *env, void *opaque)
{
	struct batch	*b = opaque;

	if (b->phase == BATCH_ABANDONED) {
		env->abandoned_deliveries--;
		if (--b->deliveries_pending == 0)
			free(b);
	} else
		b->deliveries_pending--;
	batch_schedule_pump(env);
}

int
batch_abandoned(const void *opaque)
{
	const struct batch	*b = opaque;

	return b->phase == BATCH_ABANDONED;
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
	alert_text_free(&alert_text);
	resp_free(&wr.cmd);
	free(wr.zops);
	free(wr.first);
	free(wr.next);
	free(wr.home);
	free(wr.latest);
	name_table_free(wr.want);
	memset(&wr, 0, sizeof(wr));
}
