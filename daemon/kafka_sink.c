/*
 * kafka_sink.c: the idempotent producer that carries stage-change alerts
 * and dead letters. Delivery reports are served on the event loop (the
 * main queue wakes a pipe) and handed to the batch that produced the
 * message. A message that still fails after librdkafka's own retries is
 * produced again: alerts are at-least-once, and the batch that owns it
 * does not finish (nor store its offsets) until it is acknowledged. But
 * not for a batch abandoned meanwhile (Redis was lost): its events are
 * read again and produce the same message again, and its own copies,
 * kept, would pile up at every loss while a topic refuses.
 *
 * The messages to produce again wait in a backlog per topic, in the order
 * journeyd first produced them: those whose delivery failed and those the
 * producer refused at once (a topic it knows unauthorized keeps refusing
 * until its metadata is read again), with every later message to the same
 * topic behind them, so that waiting never reorders a topic. Each message
 * carries a ticket with its place in that order, for one to come back
 * behind messages produced after it: a producer that fails fatally hands
 * back all it held, after some later messages may have begun to wait.
 * A round produces each backlog in order until one message is refused:
 * at once the first time, then after a delay that doubles, up to
 * RESEND_DELAY_MAX_MS, while failures keep coming (a topic that refuses
 * every write would otherwise be retried as fast as the broker answers).
 * One topic refusing holds back no other. While messages wait, /healthz
 * says so.
 *
 * A fatal error ends an idempotent producer for good. journeyd then puts a
 * new producer in its place, and retires the old one: purged and flushed,
 * every message it had not had acknowledged comes back as a failed
 * delivery report and waits to be produced again on the new producer, for
 * the same batch. Nothing in flight is abandoned. The new producer comes
 * at once the first time, then, while fatal errors keep coming (a cluster
 * that refuses this client an idempotent producer id fails each new one at
 * its start), after a delay that doubles, as the rounds of resends do:
 * each producer is a whole client, its threads and connections. Meanwhile
 * there is none, and what is produced waits in the backlogs.
 *
 * Dead letters (the messages with headers) carry what a producer sent us,
 * of any size. One larger than this producer may send (message.max.bytes),
 * or refused by the broker as too large, is produced cut: the first bytes
 * of its key and payload, and a "truncated" header with their whole sizes
 * (the whole message stays in the partition its "source" header names);
 * if the event's own headers leave no room, only journeyd's are kept.
 * Failing instead would stop the stream at that message for good: it is
 * consumed again after every restart.
 */
#include <sys/queue.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

/*
 * A message's opaque, from its first produce to its delivery: its batch,
 * and its place in the order of all journeyd produced. Taken from chunks
 * kept for the next messages, as alerts are produced at the event rate.
 */
struct ticket {
	SLIST_ENTRY(ticket)	 spare;
	void			*batch;
	uint64_t		 seq;
};
SLIST_HEAD(tickets, ticket);

#define TICKETS_PER_CHUNK	256

struct ticket_chunk {
	SLIST_ENTRY(ticket_chunk) entry;
	struct ticket		 tickets[TICKETS_PER_CHUNK];
};
SLIST_HEAD(ticket_chunks, ticket_chunk);

/* A message to produce again, with copies of all it holds. */
struct pending {
	TAILQ_ENTRY(pending)	 entry;
	void			*key, *payload;
	size_t			 keylen, len;
	rd_kafka_headers_t	*headers;
	struct ticket		*ticket;
};
TAILQ_HEAD(pendings, pending);

/* The messages of one topic waiting to be produced again, in order. */
struct backlog {
	char			*topic;
	struct pendings		 queue;
	size_t			 n;
	struct pending		*placed;	/* the last put in, if there */
};

struct kafka_sink {
	rd_kafka_t		*rk;		/* NULL while replace_ev waits */
	rd_kafka_queue_t	*mainq;
	rd_kafka_t		*retired;	/* failed fatally, to flush */
	rd_kafka_queue_t	*retiredq;
	struct event		*retire_ev;
	struct event		*replace_ev;
	int			 replace_delay_ms;	/* of the next one */
	int64_t			 last_fatal_ms;		/* monotonic */
	int			 wake[2];
	struct event		*wake_ev;
	uint64_t		 resent;
	uint64_t		 replaced;
	size_t			 max_message;	/* message.max.bytes */
	/* one per topic with any; each apart: its queue's head is pointed to */
	struct backlog		**backlog;
	size_t			 nbacklogs;
	size_t			 waiting;	/* in all the backlogs */
	struct event		*resend_ev;
	int			 resend_delay_ms;	/* of the next round */
	int64_t			 last_failure_ms;	/* monotonic */
	char			 resend_why[128];	/* the latest failure */
	struct tickets		 spare_tickets;
	struct ticket_chunks	 ticket_chunks;
	uint64_t		 produced;	/* the next ticket's seq */
};

#define RESEND_DELAY_FIRST_MS	100
#define RESEND_DELAY_MAX_MS	10000

/* a message's bytes besides its key, payload and headers, and then some */
#define MESSAGE_OVERHEAD	4096
/* a dead letter the broker refused as too large, cut: headers included */
#define REFUSED_KEPT		4096

static int	producer_start(struct journeyd *);
static void	replace_producer(struct journeyd *);
static void	retire_producer(struct journeyd *);

static size_t
headers_size(const rd_kafka_headers_t *hdrs)
{
	const char	*name;
	const void	*value;
	size_t		 n = 0, len;

	for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value,
	    &len) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		n += strlen(name) + len + 16;
	return n;
}

/*
 * The position of the last header called name, or -1. journeyd adds its
 * own after the event's: its "reason" and "source" are the last ones, and
 * a "truncated" after the last "source" is journeyd's.
 */
static int
last_header(const rd_kafka_headers_t *hdrs, const char *name)
{
	const char	*n;
	const void	*value;
	size_t		 len;
	int		 last = -1;

	for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &n, &value,
	    &len) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		if (strcmp(n, name) == 0)
			last = (int)i;
	return last;
}

/* Copies header i of from to to. */
static void
copy_header(rd_kafka_headers_t *to, const rd_kafka_headers_t *from, int i)
{
	const char	*name;
	const void	*value;
	size_t		 len;

	if (i >= 0 && rd_kafka_header_get_all(from, (size_t)i, &name, &value,
	    &len) == RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_header_add(to, name, -1, value, (ssize_t)len);
}

/*
 * Cuts a dead letter to room bytes with its headers: the first bytes of
 * its payload, and of its key up to half. If the event's own headers take
 * more than half of it, only journeyd's are kept. The headers gain
 * "truncated", the whole sizes: "key=K payload=P", and " headers=H" when
 * the event's were dropped; a second cut (the broker refused the first as
 * too large) keeps the first's sizes, adding " headers=H" if it drops them.
 */
static void
cut_dead_letter(rd_kafka_headers_t **hdrs, size_t *keylen, size_t *len,
    size_t room)
{
	rd_kafka_headers_t	*kept;
	int			 source = last_header(*hdrs, "source");
	int			 cut = last_header(*hdrs, "truncated") > source;
	const char		*name;
	const void		*was;
	size_t			 used, waslen, theirs = 0;
	char			 sizes[128];

	snprintf(sizes, sizeof(sizes), "key=%zu payload=%zu", *keylen, *len);
	if (cut && rd_kafka_header_get_all(*hdrs, (size_t)last_header(*hdrs,
	    "truncated"), &name, &was, &waslen) == RD_KAFKA_RESP_ERR_NO_ERROR)
		snprintf(sizes, sizeof(sizes), "%.*s", (int)waslen,
		    (const char *)was);
	if (headers_size(*hdrs) > room / 2) {
		kept = rd_kafka_headers_new(4);
		copy_header(kept, *hdrs, last_header(*hdrs, "reason"));
		copy_header(kept, *hdrs, last_header(*hdrs,
		    "source_timestamp"));
		copy_header(kept, *hdrs, source);
		theirs = headers_size(*hdrs) - headers_size(kept);
		if (cut)	/* journeyd's, said again below */
			theirs -= strlen("truncated") + waslen + 16;
		rd_kafka_headers_destroy(*hdrs);
		*hdrs = kept;
	}
	if (theirs > 0) {
		used = strlen(sizes);
		snprintf(sizes + used, sizeof(sizes) - used, " headers=%zu",
		    theirs);
	}
	if (!cut || theirs > 0)
		rd_kafka_header_add(*hdrs, "truncated", -1, sizes, -1);
	used = headers_size(*hdrs);
	room = room > used ? room - used : 0;
	if (*keylen > room / 2)
		*keylen = room / 2;
	if (*len > room - *keylen)
		*len = room - *keylen;
}

static struct ticket *
ticket_take(struct kafka_sink *sink, void *batch)
{
	struct ticket_chunk	*chunk;
	struct ticket		*t;

	if (SLIST_EMPTY(&sink->spare_tickets)) {
		if ((chunk = malloc(sizeof(*chunk))) == NULL)
			fatal("kafka: tickets");
		SLIST_INSERT_HEAD(&sink->ticket_chunks, chunk, entry);
		for (size_t i = 0; i < TICKETS_PER_CHUNK; i++)
			SLIST_INSERT_HEAD(&sink->spare_tickets,
			    &chunk->tickets[i], spare);
	}
	t = SLIST_FIRST(&sink->spare_tickets);
	SLIST_REMOVE_HEAD(&sink->spare_tickets, spare);
	t->batch = batch;
	t->seq = sink->produced++;
	return t;
}

static void
ticket_give_back(struct kafka_sink *sink, struct ticket *t)
{
	SLIST_INSERT_HEAD(&sink->spare_tickets, t, spare);
}

static struct backlog *
backlog_of(struct kafka_sink *sink, const char *topic)
{
	for (size_t i = 0; i < sink->nbacklogs; i++)
		if (strcmp(sink->backlog[i]->topic, topic) == 0)
			return sink->backlog[i];
	return NULL;
}

/*
 * Another failure: a retry waits a step longer than the last, unless the
 * failure before this one was a while ago: longer ago than the delay it
 * set (*delay_ms is the next one, at least that) and RESEND_DELAY_MAX_MS
 * more, so that failures every RESEND_DELAY_MAX_MS keep that delay.
 */
static void
failed_again(int *delay_ms, int64_t *last_ms)
{
	int64_t	now = timestamp_monotonic_ms();

	if (now - *last_ms > *delay_ms + RESEND_DELAY_MAX_MS)
		*delay_ms = 0;
	*last_ms = now;
}

/* Schedules ev after *delay_ms, and makes the next delay a step longer. */
static void
retry_after(struct event *ev, int *delay_ms)
{
	struct timeval	tv = timestamp_timeval(*delay_ms);

	evtimer_add(ev, &tv);
	*delay_ms = *delay_ms == 0 ? RESEND_DELAY_FIRST_MS : *delay_ms * 2;
	if (*delay_ms > RESEND_DELAY_MAX_MS)
		*delay_ms = RESEND_DELAY_MAX_MS;
}

static void
note_failure(struct kafka_sink *sink, const char *topic, const char *why)
{
	snprintf(sink->resend_why, sizeof(sink->resend_why), "%s: %s", topic,
	    why);
	failed_again(&sink->resend_delay_ms, &sink->last_failure_ms);
}

/* The next round, if messages wait, a producer is there to take them, and
 * no round is scheduled. */
static void
schedule_resends(struct kafka_sink *sink)
{
	if (sink->waiting == 0 || sink->rk == NULL ||
	    evtimer_pending(sink->resend_ev, NULL))
		return;
	retry_after(sink->resend_ev, &sink->resend_delay_ms);
}

/*
 * Puts a copy of a message in its topic's backlog, in its ticket's order:
 * at the end, but for one that comes back after later ones began to wait.
 * A failed producer hands its messages back in their order, partition by
 * partition, so the search for the place of each starts from the last
 * one placed when that is before it.
 */
static void
wait_to_produce(struct kafka_sink *sink, const char *topic, const void *key,
    size_t keylen, const void *payload, size_t len,
    rd_kafka_headers_t *headers, struct ticket *t)
{
	struct backlog	*b, **grown;
	struct pending	*p, *after, *q;

	if ((b = backlog_of(sink, topic)) == NULL) {
		if ((grown = reallocarray(sink->backlog, sink->nbacklogs + 1,
		    sizeof(*grown))) == NULL ||
		    (b = calloc(1, sizeof(*b))) == NULL ||
		    (b->topic = strdup(topic)) == NULL)
			fatal("kafka: a backlog");
		sink->backlog = grown;
		TAILQ_INIT(&b->queue);
		sink->backlog[sink->nbacklogs++] = b;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->key = malloc(keylen + 1)) == NULL ||
	    (p->payload = malloc(len + 1)) == NULL)
		fatal("kafka: a message to produce again");
	if (key != NULL && keylen > 0)
		memcpy(p->key, key, keylen);
	if (len > 0)
		memcpy(p->payload, payload, len);
	p->keylen = key != NULL ? keylen : 0;
	p->len = len;
	p->headers = headers;
	p->ticket = t;
	after = TAILQ_LAST(&b->queue, pendings);
	if (after != NULL && after->ticket->seq > t->seq) {
		after = b->placed != NULL && b->placed->ticket->seq < t->seq ?
		    b->placed : NULL;
		for (q = after != NULL ? TAILQ_NEXT(after, entry) :
		    TAILQ_FIRST(&b->queue); q != NULL && q->ticket->seq < t->seq;
		    q = TAILQ_NEXT(q, entry))
			after = q;
	}
	if (after != NULL)
		TAILQ_INSERT_AFTER(&b->queue, after, p, entry);
	else
		TAILQ_INSERT_HEAD(&b->queue, p, entry);
	b->placed = p;
	b->n++;
	sink->waiting++;
	schedule_resends(sink);
}

static void
free_pending(struct pending *p)
{
	if (p->headers != NULL)
		rd_kafka_headers_destroy(p->headers);
	free(p->key);
	free(p->payload);
	free(p);
}

static void
unqueue(struct kafka_sink *sink, struct backlog *b, struct pending *p)
{
	if (b->placed == p)
		b->placed = NULL;
	TAILQ_REMOVE(&b->queue, p, entry);
	b->n--;
	sink->waiting--;
	free_pending(p);
}

/*
 * Hands a message to the producer (headers included, on success). One
 * that failed fatally, before its error reached the loop, is replaced;
 * while there is none, the message is refused (it waits). Its timestamp
 * is the time it is produced, each time: one kept from a first try could
 * fall out of what the broker accepts (message.timestamp.difference.max.ms)
 * while it waits, and be refused for good.
 */
static rd_kafka_resp_err_t
produce(struct journeyd *env, const char *topic, const void *key,
    size_t keylen, const void *payload, size_t len,
    rd_kafka_headers_t *headers, struct ticket *t)
{
	rd_kafka_resp_err_t	err;

	if (env->sink->rk == NULL)
		return RD_KAFKA_RESP_ERR__FATAL;
	err = rd_kafka_producev(env->sink->rk,
	    RD_KAFKA_V_TOPIC(topic),
	    RD_KAFKA_V_KEY(key, keylen),
	    RD_KAFKA_V_VALUE((void *)payload, len),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_HEADERS(headers),
	    RD_KAFKA_V_OPAQUE(t),
	    RD_KAFKA_V_END);
	if (err == RD_KAFKA_RESP_ERR__FATAL)
		replace_producer(env);
	return err;
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct journeyd		*env = opaque;
	struct kafka_sink	*sink = env->sink;
	rd_kafka_headers_t	*hdrs = NULL, *copy = NULL;
	size_t			 keylen = m->key_len, len = m->len;
	const char		*topic = rd_kafka_topic_name(m->rkt);
	struct ticket		*t = m->_private;
	void			*batch = t->batch;

	/* an abandoned batch's are produced again by its events' replay */
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR || batch_abandoned(batch)) {
		ticket_give_back(sink, t);
		batch_delivered(env, batch);
		return;
	}
	/* after message.timeout.ms: send it again rather than lose it */
	if (sink->waiting == 0)
		log_warnx("kafka: delivery to %s failed (%s); producing it "
		    "again", topic, rd_kafka_err2str(m->err));
	note_failure(sink, topic, rd_kafka_err2str(m->err));
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
		copy = rd_kafka_headers_copy(hdrs);
	/* the broker would refuse it again: a dead letter is cut */
	if (copy != NULL && (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
	    m->err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE) &&
	    keylen + len + headers_size(copy) > REFUSED_KEPT) {
		cut_dead_letter(&copy, &keylen, &len, REFUSED_KEPT);
		log_warnx("kafka: dead letter cut to %zu bytes of its payload",
		    len);
	}
	/* the report may come before the fatal error is reported */
	if (rk == sink->rk && rd_kafka_fatal_error(rk, NULL, 0) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		replace_producer(env);
	wait_to_produce(sink, topic, m->key, keylen, m->payload, len, copy, t);
}

/*
 * A round: each topic's backlog in order, on the current producer, until
 * the producer refuses one of its messages, which waits with the rest of
 * its topic for the next round.
 */
static void
on_resend(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd		*env = arg;
	struct kafka_sink	*sink = env->sink;
	struct backlog		*b;
	struct pending		*p;
	rd_kafka_resp_err_t	 err;
	size_t			 sent = 0;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < sink->nbacklogs; i++) {
		b = sink->backlog[i];
		while ((p = TAILQ_FIRST(&b->queue)) != NULL) {
			err = produce(env, b->topic, p->keylen > 0 ? p->key :
			    NULL, p->keylen, p->payload, p->len, p->headers,
			    p->ticket);
			if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
				note_failure(sink, b->topic,
				    rd_kafka_err2str(err));
				log_warnx("kafka: cannot produce again to %s: "
				    "%s; %zu messages wait %d ms", b->topic,
				    rd_kafka_err2str(err), b->n,
				    sink->resend_delay_ms);
				break;
			}
			p->headers = NULL;	/* the message's now */
			unqueue(sink, b, p);
			sink->resent++;
			sent++;
		}
	}
	if (sent > 0)
		log_info("kafka: %zu messages produced again", sent);
	schedule_resends(sink);
}

void
kafka_sink_drop_abandoned(struct journeyd *env)
{
	struct kafka_sink	*sink = env->sink;
	struct backlog		*b;
	struct pending		*p, *next;
	void			*batch;

	for (size_t i = 0; sink != NULL && i < sink->nbacklogs; i++) {
		b = sink->backlog[i];
		for (p = TAILQ_FIRST(&b->queue); p != NULL; p = next) {
			next = TAILQ_NEXT(p, entry);
			if (!batch_abandoned(p->ticket->batch))
				continue;
			batch = p->ticket->batch;
			ticket_give_back(sink, p->ticket);
			unqueue(sink, b, p);
			batch_delivered(env, batch);
		}
	}
}

size_t
kafka_sink_failing(struct journeyd *env, char *why, size_t size)
{
	if (env->sink == NULL || env->sink->waiting == 0)
		return 0;
	snprintf(why, size, "%s", env->sink->resend_why);
	return env->sink->waiting;
}

uint64_t
kafka_sink_resent(struct journeyd *env)
{
	return env->sink != NULL ? env->sink->resent : 0;
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct journeyd		*env = opaque;
	struct kafka_sink	*sink = env->sink;
	char			 fatalstr[256];

	if (err != RD_KAFKA_RESP_ERR__FATAL) {
		if (!kafka_conf_error_logged(err))
			log_warnx("kafka producer: %s", reason);
		return;
	}
	if (rk != sink->rk)
		return;		/* already replaced */
	rd_kafka_fatal_error(rk, fatalstr, sizeof(fatalstr));
	log_warnx("kafka producer: fatal error: %s", fatalstr);
	replace_producer(env);
}

/*
 * Retires the producer that failed, to be flushed at once (its messages
 * join the backlogs before any produced after them), and schedules its
 * replacement; from here until then, what is produced waits. Called with
 * a producer in place, and none retired: on_replace flushes the one
 * retired before it starts another.
 */
static void
replace_producer(struct journeyd *env)
{
	struct kafka_sink	*sink = env->sink;

	failed_again(&sink->replace_delay_ms, &sink->last_fatal_ms);
	log_warnx("kafka: replacing the producer in %d ms; what it had not "
	    "had acknowledged is produced again", sink->replace_delay_ms);
	sink->retired = sink->rk;
	sink->retiredq = sink->mainq;
	sink->rk = NULL;
	sink->mainq = NULL;
	event_active(sink->retire_ev, 0, 0);
	evtimer_del(sink->resend_ev);	/* on_replace starts the next round */
	retry_after(sink->replace_ev, &sink->replace_delay_ms);
}

/*
 * Outside the retired producer's callbacks: its messages back as failed
 * reports, into the backlogs; then let it go.
 */
static void
retire_producer(struct journeyd *env)
{
	struct kafka_sink	*sink = env->sink;
	rd_kafka_t		*old = sink->retired;

	rd_kafka_queue_io_event_enable(sink->retiredq, -1, NULL, 0);
	rd_kafka_queue_destroy(sink->retiredq);
	rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_flush(old, 10000);	/* serves each purged message's report */
	if (rd_kafka_outq_len(old) > 0)
		fatalx("kafka: %d messages of the failed producer unaccounted "
		    "for; exiting without storing their offsets",
		    rd_kafka_outq_len(old));
	rd_kafka_destroy(old);
	sink->retired = NULL;
	sink->retiredq = NULL;
}

static void
on_retire(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;

	(void)fd;
	(void)what;
	if (env->sink->retired != NULL)	/* or on_replace came first */
		retire_producer(env);
}

static void
on_replace(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd		*env = arg;
	struct kafka_sink	*sink = env->sink;

	(void)fd;
	(void)what;
	if (sink->retired != NULL)
		retire_producer(env);
	if (producer_start(env) == -1)
		fatalx("kafka: cannot create a new producer");
	sink->replaced++;
	log_info("kafka: producer replaced (%llu so far)",
	    (unsigned long long)sink->replaced);
	/* what waited for it goes now */
	evtimer_del(sink->resend_ev);
	sink->resend_delay_ms = 0;
	schedule_resends(sink);
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;
	char		 buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	/* the pipe only fires on empty -> non-empty: drain everything */
	while (env->sink->rk != NULL && rd_kafka_poll(env->sink->rk, 0) > 0)
		;
}

/* Creates the producer and wires its main queue to our wake-up pipe. */
static int
producer_start(struct journeyd *env)
{
	struct kafka_sink	*sink = env->sink;
	rd_kafka_conf_t		*kc;
	char			 errstr[512], limit[32];
	size_t			 limitlen = sizeof(limit);

	if ((kc = kafka_conf_client(env, CONFIG_SCOPE_PRODUCER)) == NULL)
		return -1;
	if (rd_kafka_conf_get(kc, "message.max.bytes", limit, &limitlen) !=
	    RD_KAFKA_CONF_OK) {
		log_warnx("kafka producer: no message.max.bytes");
		goto fail;
	}
	sink->max_message = strtoul(limit, NULL, 10);
	rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
	rd_kafka_conf_set_error_cb(kc, on_error);
	if ((sink->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr,
	    sizeof(errstr))) == NULL) {
		log_warnx("kafka producer: %s", errstr);
		goto fail;
	}
	sink->mainq = rd_kafka_queue_get_main(sink->rk);
	rd_kafka_queue_io_event_enable(sink->mainq, sink->wake[1], "1", 1);
	/* anything queued before the pipe was armed would never wake us
	 * (a fatal error among it replaces the producer at once) */
	while (sink->rk != NULL && rd_kafka_poll(sink->rk, 0) > 0)
		;
	return 0;
fail:
	rd_kafka_conf_destroy(kc);
	return -1;
}

int
kafka_sink_open(struct journeyd *env)
{
	struct kafka_sink	*sink;

	if ((sink = calloc(1, sizeof(*sink))) == NULL)
		return -1;
	sink->wake[0] = sink->wake[1] = -1;
	SLIST_INIT(&sink->spare_tickets);
	SLIST_INIT(&sink->ticket_chunks);
	env->sink = sink;
	if (pipe2(sink->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_warn("pipe");
		return -1;
	}
	if ((sink->wake_ev = event_new(env->base, sink->wake[0],
	    EV_READ | EV_PERSIST, on_wake, env)) == NULL ||
	    event_add(sink->wake_ev, NULL) == -1 ||
	    (sink->retire_ev = event_new(env->base, -1, 0, on_retire,
	    env)) == NULL ||
	    (sink->replace_ev = evtimer_new(env->base, on_replace, env)) ==
	    NULL ||
	    (sink->resend_ev = evtimer_new(env->base, on_resend, env)) == NULL)
		return -1;
	return producer_start(env);
}

/*
 * The payload is copied into the message's own allocation, of its exact
 * size: the caller's buffer is reused for the next alert, and a buffer
 * handed over would stay allocated at its grown capacity until delivered.
 */
void
kafka_sink_produce(struct journeyd *env, const char *topic, const void *key,
    size_t keylen, const void *payload, size_t len,
    rd_kafka_headers_t *headers, void *opaque)
{
	struct kafka_sink	*sink = env->sink;
	struct backlog		*b;
	struct ticket		*t = ticket_take(sink, opaque);
	rd_kafka_resp_err_t	 err;
	size_t			 room;

	/* librdkafka counts a record's own bytes too: keep well clear */
	if (headers != NULL && keylen + len + headers_size(headers) +
	    MESSAGE_OVERHEAD > sink->max_message) {
		room = sink->max_message / 2;
		if (sink->max_message > 2 * MESSAGE_OVERHEAD)
			room = sink->max_message - MESSAGE_OVERHEAD;
		cut_dead_letter(&headers, &keylen, &len, room);
		log_warnx("kafka: dead letter cut to %zu bytes of its payload, "
		    "to fit message.max.bytes", len);
	}
	/* behind those of its topic that wait, in order */
	if ((b = backlog_of(sink, topic)) != NULL && b->n > 0) {
		wait_to_produce(sink, topic, key, keylen, payload, len,
		    headers, t);
		return;
	}
	err = produce(env, topic, key, keylen, payload, len, headers, t);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		/* not lost, nor fatal: a topic refused now may take it later */
		note_failure(sink, topic, rd_kafka_err2str(err));
		log_warnx("kafka: cannot produce to %s: %s; it waits", topic,
		    rd_kafka_err2str(err));
		wait_to_produce(sink, topic, key, keylen, payload, len,
		    headers, t);
	}
}

void
kafka_sink_close(struct journeyd *env, int64_t deadline_ms)
{
	struct kafka_sink	*sink = env->sink;
	struct pending		*p;
	struct ticket_chunk	*chunk;
	int64_t			 left = deadline_ms - timestamp_monotonic_ms();

	if (sink == NULL)
		return;
	/* its unacknowledged messages join the backlogs: see below */
	if (sink->retired != NULL)
		retire_producer(env);
	/* in the time the drain left, 10 s at most */
	if (sink->rk != NULL && rd_kafka_flush(sink->rk, left < 10000 ?
	    (left > 0 ? (int)left : 0) : 10000) != RD_KAFKA_RESP_ERR_NO_ERROR &&
	    sink->rk != NULL)
		log_warnx("kafka: %d messages not delivered at exit",
		    rd_kafka_outq_len(sink->rk));
	/* it failed fatally during the flush */
	if (sink->retired != NULL)
		retire_producer(env);
	if (sink->rk != NULL) {
		if (sink->mainq != NULL) {
			rd_kafka_queue_io_event_enable(sink->mainq, -1, NULL,
			    0);
			rd_kafka_queue_destroy(sink->mainq);
		}
		rd_kafka_destroy(sink->rk);
	}
	/* their batches never finish: their events are consumed again */
	if (sink->waiting > 0)
		log_warnx("kafka: %zu messages still waiting to be produced "
		    "again at exit", sink->waiting);
	for (size_t i = 0; i < sink->nbacklogs; i++) {
		while ((p = TAILQ_FIRST(&sink->backlog[i]->queue)) != NULL) {
			TAILQ_REMOVE(&sink->backlog[i]->queue, p, entry);
			free_pending(p);
		}
		free(sink->backlog[i]->topic);
		free(sink->backlog[i]);
	}
	free(sink->backlog);
	if (sink->resend_ev != NULL)
		event_free(sink->resend_ev);
	if (sink->retire_ev != NULL)
		event_free(sink->retire_ev);
	if (sink->replace_ev != NULL)
		event_free(sink->replace_ev);
	if (sink->wake_ev != NULL)
		event_free(sink->wake_ev);
	if (sink->wake[0] != -1) {
		close(sink->wake[0]);
		close(sink->wake[1]);
	}
	/* with the tickets of messages the producers dropped undelivered */
	while ((chunk = SLIST_FIRST(&sink->ticket_chunks)) != NULL) {
		SLIST_REMOVE_HEAD(&sink->ticket_chunks, entry);
		free(chunk);
	}
	free(sink);
	env->sink = NULL;
}
