/*
 * loadgen.c: a deterministic stream of customer-journey touchpoints for
 * journeyd's tests, as CUSTOMER_ID<TAB>JSON lines ready for
 * "ktool produce BROKERS TOPIC", or produced to Kafka for the benchmark.
 * It owns the personas, the event vocabulary, the PRNG, and in producing
 * mode its producer and the alert reader that times latency.
 *
 *   loadgen [-c CUSTOMERS] [-n EVENTS] [-s SEED] [-t START_EPOCH_MS]
 *           [-b BAD_PER_THOUSAND] [mix options]
 *   loadgen -R DATA_SET [-x COPIES] [-n EVENTS] [-t START_EPOCH_MS]
 *   loadgen -P BROKERS [-r EVENTS_PER_S] [-l LINGER_MS]
 *           [-L ALERT_TOPIC [-W MS]] [the options above] TOPIC
 *
 * Every customer gets a persona (how far the journey goes and how fast)
 * and an age segment, then walks awareness -> consideration -> decision
 * -> retention -> loyalty up to the persona's last stage, with pain
 * points along the way; stallers hit trouble and go quiet for weeks.
 * Customers are interleaved by event time, so the whole stream runs
 * forward in time like live traffic. Output depends only on the options:
 * the PRNG is our own and no floating point is involved.
 *
 * With -b, that many lines in each thousand are malformed, in turn: JSON
 * cut short, an event without customer_id (and no key), an event
 * without "type".
 *
 * The mix (all default to the stream above, byte for byte):
 *   -w W,W,W,W,W,W  persona weights in percent (browses, compares, buys
 *                   once, buys again, loyal, stalls): how far journeys go,
 *                   hence which event types dominate
 *   -p PCT          chance of a pain point (complaint, refund, failed
 *                   payment, abandoned cart) at each step, every persona
 *   -C LIST         channels allowed, comma separated (web,app,email,
 *                   store,call_centre,social)
 *   -e PCT          share of ordinary events that carry a sentiment
 *   -q PCT          customers who go silent for good after 1-3 events
 *   -a MINUTES      customers arrive over this long (a week); short, every
 *                   customer has spoken before the stream goes far
 *   -d PCT          share of good events that come disordered, in turn:
 *                   sent twice (the next line is the same event, its
 *                   event_id too: a producer's retry), late (1 to 48
 *                   hours before the customer's time), without a channel,
 *                   and in the same millisecond as the customer's last
 *
 * With -R it replays one of the real data sets of ../shared/data instead
 * (the file as it is there, gzip'd; replay.c says how its rows become
 * events), in the file's order and with its own event times unless -t
 * moves its start. -x COPIES makes each of its customers COPIES
 * customers: copy K of customer ID is "ID~K", each event followed by its
 * copies, so a small shop becomes a large one with the same habits.
 * Without -n it replays every event of every copy. -L does not go with
 * -R: it knows its events by the ids it makes.
 *
 * With -P BROKERS TOPIC it produces instead of printing (librdkafka,
 * murmur2 keying like ktool, zstd), for the benchmark: -r EVENTS_PER_S
 * paces it (0, the default: as fast as it can), -l LINGER_MS sets the
 * producer's linger (5). Its stream starts three years back (-t), so
 * event times stay behind the clock. Each event then carries its produce
 * time: a "sent_us" field and an event_id ending in "@" and the same
 * epoch microseconds, which stage-change alerts quote back. -L ALERT_TOPIC
 * measures event-to-alert latency meanwhile: a second client reads that
 * topic from its end, matches each alert to its event by event_id and,
 * once no alert has come for -W MS (3000) after the last delivery (at most
 * ten minutes: a pipeline far behind still gets counted), prints
 * percentiles of (alert received - event produced) and (alert's Kafka
 * timestamp - event produced) on stdout. Pointed at the input topic itself, -L times one Kafka hop (its
 * events carry their event_id at the top). The producing summary goes to
 * stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "replay.h"

#define PROG	"loadgen"

enum stage { AWARENESS, CONSIDERATION, DECISION, RETENTION, LOYALTY, PAIN };

enum { WEB = 1, APP = 2, EMAIL = 4, STORE = 8, CALL = 16, SOCIAL = 32 };

static const char *const channels[] = { "web", "app", "email", "store",
	"call_centre", "social" };

static const char *const segments[] = { "18-24", "25-34", "35-54", "55+" };
static const int segment_weight[] = { 15, 30, 35, 20 };

struct etype {
	const char	*name;
	enum stage	 stage;
	int		 channels;
	int64_t		 value_lo, value_hi;	/* cents; 0 = no value */
};

static const struct etype etypes[] = {
	{ "ad_click",		AWARENESS,	WEB | APP | SOCIAL, 0, 0 },
	{ "search_visit",	AWARENESS,	WEB | APP, 0, 0 },
	{ "social_post",	AWARENESS,	SOCIAL, 0, 0 },
	{ "blog_read",		AWARENESS,	WEB | EMAIL, 0, 0 },
	{ "product_view",	CONSIDERATION,	WEB | APP | STORE, 0, 0 },
	{ "pricing_view",	CONSIDERATION,	WEB | APP, 0, 0 },
	{ "comparison",		CONSIDERATION,	WEB, 0, 0 },
	{ "demo_request",	CONSIDERATION,	WEB | EMAIL | CALL, 0, 0 },
	{ "trial_start",	CONSIDERATION,	WEB | APP, 0, 0 },
	{ "add_to_cart",	CONSIDERATION,	WEB | APP, 0, 0 },
	{ "checkout",		DECISION,	WEB | APP | STORE, 0, 0 },
	{ "purchase",		DECISION,	WEB | APP | STORE, 1500, 40000 },
	{ "contract_signed",	DECISION,	EMAIL | STORE | CALL,
	    100000, 2500000 },
	{ "repeat_purchase",	RETENTION,	WEB | APP | STORE, 1000, 30000 },
	{ "renewal",		RETENTION,	WEB | EMAIL | CALL, 5000, 120000 },
	{ "login",		RETENTION,	WEB | APP, 0, 0 },
	{ "support_resolved",	RETENTION,	CALL | EMAIL | APP, 0, 0 },
	{ "referral",		LOYALTY,	EMAIL | SOCIAL | APP, 0, 0 },
	{ "review_positive",	LOYALTY,	WEB | SOCIAL | APP, 0, 0 },
	{ "nps_submitted",	LOYALTY,	EMAIL | APP, 0, 0 },
	{ "complaint",		PAIN,		CALL | EMAIL | SOCIAL, 0, 0 },
	{ "payment_failed",	PAIN,		WEB | APP, 0, 0 },
	{ "refund",		PAIN,		STORE | CALL | WEB, 1000, 40000 },
	{ "cart_abandoned",	PAIN,		WEB | APP, 0, 0 },
};

/* indexes into etypes[] used by name */
enum { E_ADD_TO_CART = 9, E_CHECKOUT, E_PURCHASE, E_CONTRACT,
    E_COMPLAINT = 20, E_PAYMENT_FAILED, E_REFUND, E_CART_ABANDONED };

static const int stage_first[] = { 0, 4, 10, 13, 17, 20, 24 };
_Static_assert(sizeof(etypes) / sizeof(etypes[0]) == 24,
    "stage_first and the E_ indexes follow etypes[]");

/*
 * Gaps between a customer's events are 2^e minutes (plus up to as much
 * again) for e in [gap_lo, gap_hi]: a minute to days, and weeks once a
 * staller has gone quiet.
 */
struct persona {
	enum stage	last;
	int		gap_lo, gap_hi;
	int		pain_pct;
	int		stalls;
};

static const struct persona personas[] = {
	{ AWARENESS,		6, 12,  2, 0 },	/* browses */
	{ CONSIDERATION,	4, 11,  5, 0 },	/* compares */
	{ DECISION,		3, 10,  6, 0 },	/* buys once */
	{ RETENTION,		2, 10,  5, 0 },	/* buys again */
	{ LOYALTY,		1,  9,  3, 0 },	/* loyal */
	{ DECISION,		2,  8, 35, 1 },	/* stalls */
};
#define NPERSONAS	6

/* The mix; the defaults give the stream the tests were written against. */
static int persona_weight[NPERSONAS + 1] = { 30, 22, 18, 12, 8, 10, 0 };
static int pain_pct = -1;		/* -1: each persona's own */
static int allowed_channels = 63;	/* bit per channels[] entry */
static int sentiment_pct = -1;		/* -1: one ordinary event in five */
static int silent_pct;
static int disorder_pct;
static int64_t arrival_ms = 7LL * 86400 * 1000;	/* first events spread */

#define NEVER	INT64_MAX	/* next_ts of a customer gone silent */

struct customer {
	int64_t		next_ts;
	int64_t		last_ts;	/* of its latest event; 0: none */
	uint32_t	id;
	uint8_t		persona, segment, stage, left, finished;
	uint8_t		quiet;	/* events before going silent; 0: never */
};

static uint64_t rng_state;

/* splitmix64: tiny, and the same sequence on every machine */
static uint64_t
rnd(void)
{
	uint64_t	z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int64_t
between(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* an index drawn by percentages */
static int
weighted(const int *pct)
{
	int	r = (int)between(0, 99), i;

	for (i = 0; r >= pct[i]; i++)
		r -= pct[i];
	return i;
}

static int
in_stage(int stage)
{
	return (int)between(stage_first[stage], stage_first[stage + 1] - 1);
}

/* how many events a customer spends in a stage before moving on */
static uint8_t
plan(int stage)
{
	static const int lo[] = { 1, 2, 2, 2, 1 }, hi[] = { 3, 4, 2, 4, 3 };

	return (uint8_t)between(lo[stage], hi[stage]);
}

/* Picks the customer's next event and moves them along their path. */
static int
next_event(struct customer *c)
{
	const struct persona	*p = &personas[c->persona];
	int			 e, s;

	if (c->finished) {
		if (p->stalls)
			return between(0, 1) ? E_COMPLAINT :
			    in_stage(CONSIDERATION);
		/* after the path: revisits, never a second first purchase */
		s = p->last == DECISION ? CONSIDERATION : p->last;
		if (s > AWARENESS && between(0, 2) == 0)
			s--;
		return in_stage(s == DECISION ? CONSIDERATION : s);
	}
	if (c->stage > AWARENESS &&
	    between(0, 99) < (pain_pct >= 0 ? pain_pct : p->pain_pct)) {
		switch (c->stage) {
		case CONSIDERATION:
			return between(0, 2) ? E_CART_ABANDONED : E_COMPLAINT;
		case DECISION:
			return between(0, 1) ? E_PAYMENT_FAILED :
			    E_CART_ABANDONED;
		default:
			return between(0, 1) ? E_REFUND : E_COMPLAINT;
		}
	}

	if (c->stage == DECISION && c->left == 2)
		e = E_CHECKOUT;
	else if (c->stage == DECISION && p->stalls)
		e = between(0, 1) ? E_PAYMENT_FAILED : E_CART_ABANDONED;
	else if (c->stage == DECISION)
		e = between(0, 3) ? E_PURCHASE : E_CONTRACT;
	else if (c->stage == CONSIDERATION && c->left == 1 &&
	    p->last > CONSIDERATION)
		e = E_ADD_TO_CART;
	else
		e = in_stage(c->stage);

	if (--c->left == 0) {
		if (c->stage < p->last) {
			c->stage++;
			c->left = plan(c->stage);
		} else
			c->finished = 1;
	}
	return e;
}

static int64_t
next_gap(const struct customer *c)
{
	const struct persona	*p = &personas[c->persona];
	int64_t			 base;
	int			 e;

	if (c->finished && p->stalls)
		e = (int)between(14, 15);
	else
		e = (int)between(p->gap_lo, p->gap_hi) + (c->finished ? 2 : 0);
	base = (int64_t)60000 << e;
	return base + between(0, base - 1);
}

/* a field holding hundredths as a decimal, without floating point */
static int
put_cents(char *buf, size_t len, const char *field, int64_t v)
{
	return snprintf(buf, len, ",\"%s\":%s%" PRId64 ".%02" PRId64, field,
	    v < 0 ? "-" : "", (v < 0 ? -v : v) / 100, (v < 0 ? -v : v) % 100);
}

/* Min-heap of customers on next_ts, so output runs forward in time. */
static void
sift_down(struct customer *h, size_t n, size_t i)
{
	struct customer	tmp;
	size_t		m, l;

	for (;;) {
		m = i;
		l = 2 * i + 1;
		if (l < n && h[l].next_ts < h[m].next_ts)
			m = l;
		if (l + 1 < n && h[l + 1].next_ts < h[m].next_ts)
			m = l + 1;
		if (m == i)
			return;
		tmp = h[i];
		h[i] = h[m];
		h[m] = tmp;
		i = m;
	}
}

enum { BAD_CUT, BAD_NO_CUSTOMER, BAD_NO_TYPE, NBAD, GOOD = NBAD };
enum { SENT_TWICE, LATE, NO_CHANNEL, TIED, NDISORDERS };

/*
 * One event's JSON at time ts, spoiled as bad says (and without a channel
 * if no_channel); returns its length. sent_us >= 0 is the produce time,
 * carried in the event_id (alerts quote it back) and in a field of its
 * own.
 */
static int
format_event(char *buf, size_t len, uint64_t seed, long long seq,
    const struct customer *c, int e, int bad, int64_t ts, int no_channel,
    int64_t sent_us)
{
	const struct etype	*t = &etypes[e];
	int			 n, chan, sent = 0, has_sent = 1, mask;

	/* a type seen on none of the allowed channels takes any of them */
	if ((mask = t->channels & allowed_channels) == 0)
		mask = allowed_channels;
	do
		chan = (int)between(0, 5);
	while (!(mask & (1 << chan)));
	if (t->stage == PAIN)
		sent = (int)between(-100, -20);
	else if (t->stage == LOYALTY)
		sent = (int)between(30, 100);
	else if (sentiment_pct < 0 ? between(0, 4) == 0 :
	    between(0, 99) < sentiment_pct)
		sent = (int)between(personas[c->persona].stalls ? -60 : -30, 80);
	else
		has_sent = 0;

	n = snprintf(buf, len, "{\"event_id\":\"e-%" PRIu64 "-%lld", seed,
	    seq);
	if (sent_us >= 0)
		n += snprintf(buf + n, len - n, "@%" PRId64, sent_us);
	n += snprintf(buf + n, len - n, "\"");
	if (bad != BAD_NO_CUSTOMER)
		n += snprintf(buf + n, len - n, ",\"customer_id\":\"cust-%"
		    PRIu32 "\"", c->id);
	if (bad != BAD_NO_TYPE)
		n += snprintf(buf + n, len - n, ",\"type\":\"%s\"", t->name);
	if (!no_channel)
		n += snprintf(buf + n, len - n, ",\"channel\":\"%s\"",
		    channels[chan]);
	n += snprintf(buf + n, len - n, ",\"ts\":%" PRId64, ts);
	if (has_sent)
		n += put_cents(buf + n, len - n, "sentiment", sent);
	n += snprintf(buf + n, len - n, ",\"segment\":\"%s\"",
	    segments[c->segment]);
	if (t->value_hi > 0)
		n += put_cents(buf + n, len - n, "value",
		    between(t->value_lo, t->value_hi));
	if (sent_us >= 0)
		n += snprintf(buf + n, len - n, ",\"sent_us\":%" PRId64,
		    sent_us);
	n += snprintf(buf + n, len - n, "}");
	if (bad == BAD_CUT)
		buf[n /= 2] = '\0';
	return n;
}

/*
 * The stream's state: customers on a heap by their next event time, or a
 * data set replayed (-R), each event as many times as there are copies.
 */
struct gen {
	struct customer	*h;
	size_t		 n;
	uint64_t	 seed;
	long long	 line, nbad, ndisorders;
	int		 bad;
	char		 again[1024];	/* an event to send twice */
	char		 again_key[64];
	struct replay	*replay;
	size_t		 next;		/* the replay's next event */
	long long	 copies, copy;
	int64_t		 shift_ms;	/* added to the replay's times */
	const char	*ended;		/* why the stream ended */
	int		 broken;	/* ended short of what was asked */
};

static int
gen_init(struct gen *g, long ncust, uint64_t seed, int64_t start, int bad)
{
	struct customer	*h;
	size_t		 i;

	if ((h = calloc((size_t)ncust, sizeof(*h))) == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	rng_state = seed;
	for (i = 0; i < (size_t)ncust; i++) {
		h[i].id = (uint32_t)i + 1;
		h[i].persona = (uint8_t)weighted(persona_weight);
		h[i].segment = (uint8_t)weighted(segment_weight);
		h[i].left = plan(AWARENESS);
		/* arrivals spread over the first week, or -a minutes */
		h[i].next_ts = start + between(0, arrival_ms);
		/* drawn only when asked for, so the default stream stays */
		if (silent_pct > 0 && between(0, 99) < silent_pct)
			h[i].quiet = (uint8_t)between(1, 3);
	}
	for (i = (size_t)ncust / 2 + 1; i-- > 0;)
		sift_down(h, (size_t)ncust, i);
	*g = (struct gen){ .h = h, .n = (size_t)ncust, .seed = seed,
	    .bad = bad };
	return 0;
}

/*
 * A data set replayed: -t START moves it so that it begins then (START
 * < 0: its own times). Copy K > 0 of a customer is "ID~K", of an event
 * "EVENT_ID~K": copies are other customers doing the same, a moment
 * apart in the stream (each event's copies follow it).
 */
static int
gen_init_replay(struct gen *g, const char *path, long long copies,
    int64_t start)
{
	memset(g, 0, sizeof(*g));
	if ((g->replay = malloc(sizeof(*g->replay))) == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	if (replay_load(g->replay, path) == -1) {
		free(g->replay);
		return -1;
	}
	g->copies = copies;
	g->shift_ms = start < 0 ? 0 : start - g->replay->ev[0].ts_ms;
	fprintf(stderr, PROG ": %s: %zu events of %s, %lld cop%s\n", path,
	    g->replay->n, g->replay->format, copies, copies == 1 ? "y" : "ies");
	return 0;
}

static void
gen_free(struct gen *g)
{
	free(g->h);
	if (g->replay != NULL)
		replay_free(g->replay);
	free(g->replay);
}

/*
 * s with copy K's suffix ("~K", none for the first) and the produce time
 * ("@US", none when sent_us < 0) into buf; -1 when it does not fit.
 */
static int
suffixed(char *buf, size_t size, const char *s, long long k, int64_t sent_us)
{
	int	n;

	n = snprintf(buf, size, "%s", s);
	if (k > 0 && n >= 0 && (size_t)n < size)
		n += snprintf(buf + n, size - (size_t)n, "~%lld", k);
	if (sent_us >= 0 && n >= 0 && (size_t)n < size)
		n += snprintf(buf + n, size - (size_t)n, "@%" PRId64, sent_us);
	return n >= 0 && (size_t)n < size ? 0 : -1;
}

static int
replay_next(struct gen *g, int64_t sent_us, char *key, size_t keylen,
    char *json, size_t len)
{
	const struct replay_event	*ev;
	json_t				*o;
	char				 id[512];
	size_t				 n;
	int				 fits, set = 0;

	if (g->next == g->replay->n) {
		g->ended = "the data set ends";
		return -1;
	}
	ev = &g->replay->ev[g->next];
	if (suffixed(key, keylen, ev->customer, g->copy, -1) == -1 ||
	    suffixed(id, sizeof(id), ev->event_id, g->copy, sent_us) == -1)
		set = -1;
	/* json_object_set_new refuses a NULL value: a string json_string
	 * could not take (not UTF-8) */
	o = json_object();
	set |= json_object_set_new(o, "event_id", json_string(id));
	set |= json_object_set_new(o, "customer_id", json_string(key));
	set |= json_object_set_new(o, "type", json_string(ev->type));
	set |= json_object_set_new(o, "ts", json_integer(ev->ts_ms +
	    g->shift_ms));
	if (ev->channel != NULL)
		set |= json_object_set_new(o, "channel",
		    json_string(ev->channel));
	if (ev->segment != NULL)
		set |= json_object_set_new(o, "segment",
		    json_string(ev->segment));
	if (ev->has_value)
		set |= json_object_set_new(o, "value", json_real(ev->value));
	if (sent_us >= 0)
		set |= json_object_set_new(o, "sent_us", json_integer(sent_us));
	n = json_dumpb(o, json, len - 1, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(12));
	json_decref(o);
	fits = set == 0 && n > 0 && n < len - 1;
	json[fits ? n : 0] = '\0';
	if (!fits) {
		g->ended = "an event of the data set is too long, or not "
		    "UTF-8,";
		g->broken = 1;
		return -1;
	}
	if (++g->copy == g->copies) {
		g->copy = 0;
		g->next++;
	}
	return 0;
}

/*
 * The earliest customer speaks next, then waits for their next turn.
 * Writes the key (empty for an event without customer) and the JSON;
 * returns -1 once every customer has gone silent.
 */
static int
gen_next(struct gen *g, int64_t sent_us, char *key, size_t keylen,
    char *json, size_t len)
{
	struct customer	*c;
	int		 kind = GOOD, e, disorder = -1;
	int64_t		 ts;

	if (g->replay != NULL)
		return replay_next(g, sent_us, key, keylen, json, len);
	if (g->again[0] != '\0') {
		snprintf(key, keylen, "%s", g->again_key);
		snprintf(json, len, "%s", g->again);
		g->again[0] = '\0';
		return 0;
	}
	if ((c = &g->h[0])->next_ts == NEVER) {
		g->ended = "every customer went silent";
		return -1;
	}
	/* exactly bad lines in each thousand, evenly spread */
	if ((g->line + 1) * g->bad / 1000 != g->line * g->bad / 1000)
		kind = (int)(g->nbad++ % NBAD);
	g->line++;
	e = next_event(c);
	/* drawn only when asked for, so the default stream stays */
	if (kind == GOOD && disorder_pct > 0 && between(0, 99) < disorder_pct)
		disorder = (int)(g->ndisorders++ % NDISORDERS);
	ts = c->next_ts;
	if (disorder == LATE)
		ts -= between(3600000, 48 * 3600000);
	else if (disorder == TIED && c->last_ts > 0)
		ts = c->last_ts;
	format_event(json, len, g->seed, g->line, c, e, kind, ts,
	    disorder == NO_CHANNEL, sent_us);
	if (kind == BAD_NO_CUSTOMER)
		key[0] = '\0';
	else
		snprintf(key, keylen, "cust-%" PRIu32, c->id);
	if (disorder == SENT_TWICE) {
		snprintf(g->again_key, sizeof(g->again_key), "%s", key);
		snprintf(g->again, sizeof(g->again), "%s", json);
	}
	if (disorder != LATE)
		c->last_ts = ts;
	c->next_ts += next_gap(c);
	if (c->quiet > 0 && --c->quiet == 0)
		c->next_ts = NEVER;
	sift_down(g->h, g->n, 0);
	return 0;
}

static int
generate(struct gen *g, long long nevents)
{
	char		 json[1024], key[256];

	for (long long line = 0; line < nevents; line++) {
		if (gen_next(g, -1, key, sizeof(key), json, sizeof(json)) == -1) {
			fprintf(stderr, PROG ": %s after %lld events\n",
			    g->ended, line);
			if (g->broken)
				return -1;
			break;
		}
		printf("%s\t%s\n", key, json);
	}
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, PROG ": stdout: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Producing mode. Times are wall-clock microseconds: the produce time
 * travels inside the event to be compared with the time its alert comes
 * back, so both ends must read the same clock (they are this process).
 */
static int64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	long	*failed = opaque;

	(void)rk;
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && (*failed)++ == 0)
		fprintf(stderr, PROG ": delivery: %s\n",
		    rd_kafka_err2str(m->err));
}

static rd_kafka_t *
client_new(rd_kafka_type_t type, const char *const *kv, void *opaque)
{
	rd_kafka_conf_t	*conf = rd_kafka_conf_new();
	rd_kafka_t	*rk;
	char		 errstr[512];

	for (; kv[0] != NULL; kv += 2)
		if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr,
		    sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto bad;
	if (type == RD_KAFKA_PRODUCER) {
		rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
		rd_kafka_conf_set_opaque(conf, opaque);
	}
	if ((rk = rd_kafka_new(type, conf, errstr, sizeof(errstr))) != NULL)
		return rk;
bad:
	fprintf(stderr, PROG ": %s\n", errstr);
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* The alert reader of -L: a thread, so it timestamps arrivals at once. */
struct latency {
	rd_kafka_t	*rk;
	pthread_t	 thread;
	atomic_int	 stop;
	_Atomic int64_t	 last_at;	/* when the latest of ours came */
	char		 prefix[32];	/* "e-SEED-": our events only */
	int64_t		*recv, *kafka;	/* microseconds after produce */
	int64_t		*sent;		/* when produced */
	size_t		 n, cap;
};

static void
latency_record(struct latency *l, const rd_kafka_message_t *m, int64_t at)
{
	json_t		*root;
	const char	*id, *sep;
	int64_t		 sent, ts;
	void		*p;

	if ((root = json_loadb(m->payload, m->len, 0, NULL)) == NULL)
		return;
	/* an alert quotes its event's id; -L on the input topic reads ours */
	if ((id = json_string_value(json_object_get(json_object_get(root,
	    "event"), "id"))) == NULL)
		id = json_string_value(json_object_get(root, "event_id"));
	if (id != NULL && strncmp(id, l->prefix, strlen(l->prefix)) == 0 &&
	    (sep = strchr(id, '@')) != NULL &&
	    (sent = strtoll(sep + 1, NULL, 10)) > 0) {
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 65536;
			if ((p = realloc(l->recv, l->cap * sizeof(int64_t))) ==
			    NULL)
				goto out;
			l->recv = p;
			if ((p = realloc(l->kafka, l->cap * sizeof(int64_t))) ==
			    NULL)
				goto out;
			l->kafka = p;
			if ((p = realloc(l->sent, l->cap * sizeof(int64_t))) ==
			    NULL)
				goto out;
			l->sent = p;
		}
		ts = rd_kafka_message_timestamp(m, NULL);
		l->sent[l->n] = sent;
		l->recv[l->n] = at - sent;
		l->kafka[l->n++] = ts * 1000 - sent;
		atomic_store(&l->last_at, at);
	}
out:
	json_decref(root);
}

static void *
latency_run(void *arg)
{
	struct latency		*l = arg;
	rd_kafka_message_t	*m;
	int64_t			 at;

	while (!atomic_load(&l->stop)) {
		if ((m = rd_kafka_consumer_poll(l->rk, 100)) == NULL)
			continue;
		at = now_us();
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
			latency_record(l, m, at);
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

/*
 * Starts reading the alert topic at its current end, resolved here and
 * now, so no alert of this run is missed and none of an earlier one is
 * counted.
 */
static int
latency_start(struct latency *l, const char *brokers, const char *topic,
    uint64_t seed)
{
	const char *const kv[] = {
		"bootstrap.servers", brokers,
		"group.id", "loadgen-latency",	/* assign() only, never joins */
		"enable.auto.commit", "false",
		"fetch.wait.max.ms", "1",
		"fetch.error.backoff.ms", "1",
		NULL,
	};
	const struct rd_kafka_metadata	*md;
	rd_kafka_topic_partition_list_t	*parts;
	rd_kafka_topic_t		*rkt;
	int64_t				 lo, hi;
	int				 i, nparts;

	snprintf(l->prefix, sizeof(l->prefix), "e-%" PRIu64 "-", seed);
	if ((l->rk = client_new(RD_KAFKA_CONSUMER, kv, NULL)) == NULL)
		return -1;
	rd_kafka_poll_set_consumer(l->rk);
	rkt = rd_kafka_topic_new(l->rk, topic, NULL);
	if (rd_kafka_metadata(l->rk, 0, rkt, &md, 10000) != 0 ||
	    md->topic_cnt != 1 || md->topics[0].partition_cnt == 0) {
		fprintf(stderr, PROG ": no metadata for %s\n", topic);
		rd_kafka_topic_destroy(rkt);
		return -1;
	}
	nparts = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	parts = rd_kafka_topic_partition_list_new(nparts);
	for (i = 0; i < nparts; i++) {
		if (rd_kafka_query_watermark_offsets(l->rk, topic, i, &lo, &hi,
		    10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, PROG ": no watermarks for %s\n", topic);
			rd_kafka_topic_partition_list_destroy(parts);
			return -1;
		}
		rd_kafka_topic_partition_list_add(parts, topic, i)->offset = hi;
	}
	rd_kafka_assign(l->rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (pthread_create(&l->thread, NULL, latency_run, l) != 0) {
		fprintf(stderr, PROG ": pthread_create failed\n");
		return -1;
	}
	return 0;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* nearest rank: the smallest value with at least pct of them at or below */
static int64_t
percentile(const int64_t *v, size_t n, double pct)
{
	size_t	rank = (size_t)(pct / 100.0 * (double)n + 0.999999);

	return v[rank == 0 ? 0 : (rank > n ? n : rank) - 1];
}

static void
latency_report(const char *what, int64_t *v, size_t n)
{
	if (n == 0) {
		printf("latency_us %s n=0\n", what);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_i64);
	printf("latency_us %s n=%zu p50=%" PRId64 " p99=%" PRId64
	    " p99.9=%" PRId64 " max=%" PRId64 "\n", what, n,
	    percentile(v, n, 50), percentile(v, n, 99), percentile(v, n, 99.9),
	    v[n - 1]);
}

/*
 * The p99 of each second of the run (by produce time): the median, best
 * and worst of them tell a steady tail from a few stalls.
 */
static void
latency_report_seconds(const int64_t *sent, const int64_t *recv, size_t n)
{
	int64_t	 first = INT64_MAX, last = INT64_MIN, *win, *p99;
	size_t	 nsec, k = 0, m;

	for (size_t i = 0; i < n; i++) {
		first = sent[i] < first ? sent[i] : first;
		last = sent[i] > last ? sent[i] : last;
	}
	if (n == 0)
		return;
	nsec = (size_t)((last - first) / 1000000) + 1;
	if ((win = malloc(n * sizeof(*win))) == NULL ||
	    (p99 = malloc(nsec * sizeof(*p99))) == NULL) {
		free(win);
		return;
	}
	for (size_t s = 0; s < nsec; s++) {
		m = 0;
		for (size_t i = 0; i < n; i++)
			if ((size_t)((sent[i] - first) / 1000000) == s)
				win[m++] = recv[i];
		if (m < 100)	/* a partial second at the end */
			continue;
		qsort(win, m, sizeof(*win), cmp_i64);
		p99[k++] = percentile(win, m, 99);
	}
	if (k > 0) {
		qsort(p99, k, sizeof(*p99), cmp_i64);
		printf("latency_us seconds n=%zu p99_best=%" PRId64
		    " p99_median=%" PRId64 " p99_worst=%" PRId64 "\n", k, p99[0],
		    percentile(p99, k, 50), p99[k - 1]);
	}
	free(win);
	free(p99);
}

static void
latency_finish(struct latency *l)
{
	atomic_store(&l->stop, 1);
	pthread_join(l->thread, NULL);
	rd_kafka_consumer_close(l->rk);
	rd_kafka_destroy(l->rk);
	/* both in microseconds; the Kafka timestamp has millisecond grain */
	latency_report_seconds(l->sent, l->recv, l->n);
	latency_report("received", l->recv, l->n);
	latency_report("kafka_ts", l->kafka, l->n);
	free(l->recv);
	free(l->kafka);
	free(l->sent);
}

struct produce_opts {
	const char	*brokers, *topic, *alerts, *linger;
	long long	 rate;		/* events/s; 0: as fast as possible */
	long long	 wait_ms;	/* of quiet that ends the wait for alerts */
};

/* Sleeps until the microsecond due, serving delivery reports meanwhile. */
static void
pace(rd_kafka_t *rk, int64_t due)
{
	int64_t		left;
	struct timespec	ts;

	while ((left = due - now_us()) > 0) {
		if (left >= 2000)
			rd_kafka_poll(rk, (int)(left / 1000) - 1);
		else {
			ts.tv_sec = 0;
			ts.tv_nsec = (long)left * 1000;
			nanosleep(&ts, NULL);
		}
	}
}

static int
produce_stream(struct gen *g, long long nevents, const struct produce_opts *o)
{
	const char *const kv[] = {
		"bootstrap.servers", o->brokers,
		"enable.idempotence", "true",
		"linger.ms", o->linger,
		/* keyed like the Java clients and ktool */
		"partitioner", "murmur2_random",
		/* the mock keeps 5 MB a partition */
		"compression.codec", "zstd",
		"queue.buffering.max.messages", "1000000",
		NULL,
	};
	struct latency		 lat;
	rd_kafka_t		*rk;
	rd_kafka_topic_t	*rkt;
	rd_kafka_resp_err_t	 err;
	char			 json[1024], key[256];
	long			 failed = 0;
	long long		 sent;
	int64_t			 t0, t1, at;
	int			 n;

	memset(&lat, 0, sizeof(lat));
	if (o->alerts != NULL && latency_start(&lat, o->brokers, o->alerts,
	    g->seed) == -1)
		return -1;
	if ((rk = client_new(RD_KAFKA_PRODUCER, kv, &failed)) == NULL)
		return -1;
	rkt = rd_kafka_topic_new(rk, o->topic, NULL);

	t0 = now_us();
	for (sent = 0; sent < nevents; sent++) {
		if (o->rate > 0)
			pace(rk, t0 + sent * 1000000 / o->rate);
		at = now_us();
		if (gen_next(g, at, key, sizeof(key), json, sizeof(json)) == -1) {
			fprintf(stderr, PROG ": %s after %lld events\n",
			    g->ended, sent);
			failed += g->broken;
			break;
		}
		n = (int)strlen(json);
		while ((err = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_KEY(key[0] ? key : NULL, strlen(key)),
		    RD_KAFKA_V_VALUE(json, (size_t)n),
		    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, PROG ": produce: %s\n",
			    rd_kafka_err2str(err));
			failed++;
			break;
		}
		if ((sent & 1023) == 0)
			rd_kafka_poll(rk, 0);
	}
	rd_kafka_flush(rk, 120 * 1000);
	t1 = now_us();
	if (rd_kafka_outq_len(rk) > 0 && failed == 0)
		failed = rd_kafka_outq_len(rk);
	fprintf(stderr, PROG ": produced %lld events in %.3f s (%.0f/s), "
	    "%ld failed\n", sent, (double)(t1 - t0) / 1e6,
	    t1 > t0 ? (double)sent * 1e6 / (double)(t1 - t0) : 0.0, failed);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	if (o->alerts != NULL) {
		/* the last events' alerts are still on their way */
		struct timespec ts = { 0, 100 * 1000000 };
		int64_t		quiet_since;

		while ((quiet_since = atomic_load(&lat.last_at)) < t1 ||
		    now_us() - quiet_since < o->wait_ms * 1000) {
			if (quiet_since < t1)
				quiet_since = t1;
			if (now_us() - quiet_since >= o->wait_ms * 1000 ||
			    now_us() - t1 > 600 * 1000000LL)
				break;
			nanosleep(&ts, NULL);
		}
		latency_finish(&lat);
	}
	return failed ? -1 : 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: " PROG " [-c customers] [-n events] [-s seed] "
	    "[-t start_epoch_ms] [-b bad_per_thousand]\n"
	    "\t[-w w,w,w,w,w,w] [-p pain_pct] [-C channels] [-e sentiment_pct] "
	    "[-q silent_pct] [-a arrival_minutes] [-d disorder_pct]\n"
	    "       " PROG " -R data_set.csv[.gz] [-x copies] [-n events] "
	    "[-t start_epoch_ms]\n"
	    "\t[-P brokers [-r events_per_s] [-l linger_ms] [-L alert_topic "
	    "[-W wait_ms]] topic]\n");
	exit(2);
}

static int
parse_ll(const char *s, long long min, long long max, long long *out)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* -w: six percentages that add up to 100 */
static int
parse_weights(char *s)
{
	char		*tok, *save = NULL;
	long long	 v;
	int		 i = 0, sum = 0;

	for (tok = strtok_r(s, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (i == NPERSONAS || parse_ll(tok, 0, 100, &v) == -1)
			return -1;
		persona_weight[i++] = (int)v;
		sum += (int)v;
	}
	return i == NPERSONAS && sum == 100 ? 0 : -1;
}

/* -C: channel names, comma separated */
static int
parse_channels(char *s)
{
	char	*tok, *save = NULL;
	size_t	 i;

	allowed_channels = 0;
	for (tok = strtok_r(s, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < sizeof(channels) / sizeof(channels[0]) &&
		    strcmp(tok, channels[i]) != 0; i++)
			;
		if (i == sizeof(channels) / sizeof(channels[0]))
			return -1;
		allowed_channels |= 1 << i;
	}
	return allowed_channels != 0 ? 0 : -1;
}

int
main(int argc, char *argv[])
{
	long long	customers = 2000, events = 20000, seed = 1;
	long long	start = -1, bad = 0, pain = -1, sentiment = -1;
	long long	silent = 0, disorder = 0, rate = 0, wait_ms = 3000;
	long long	linger = 5;
	long long	arrival = 7 * 24 * 60, copies = 1;
	const char	*replay = NULL;
	int		 mixed = 0, counted = 0;
	struct produce_opts	 po = { 0 };
	const struct {
		int		 ch;
		long long	 min, max, *val;
	} opts[] = {
		{ 'c', 1, 10000000, &customers },
		{ 'n', 0, 1000000000000LL, &events },
		{ 's', 0, INT64_MAX, &seed },
		{ 't', 0, INT64_MAX / 4, &start },
		{ 'b', 0, 1000, &bad },
		{ 'p', 0, 100, &pain },
		{ 'e', 0, 100, &sentiment },
		{ 'q', 0, 100, &silent },
		{ 'd', 0, 100, &disorder },
		{ 'r', 0, 100000000, &rate },
		{ 'W', 0, 600000, &wait_ms },
		{ 'l', 0, 10000, &linger },
		{ 'a', 1, 1000000000, &arrival },
		{ 'x', 1, 100000, &copies },
	};
	const int	nopts = sizeof(opts) / sizeof(opts[0]);
	struct gen	g;
	char		lingerbuf[24];
	int		ch, i, rc;

	while ((ch = getopt(argc, argv,
	    "c:n:s:t:b:p:e:q:d:r:W:l:a:w:C:P:L:R:x:")) != -1) {
		/* what shapes the synthetic stream has no say in a replay */
		mixed |= strchr("csbpeqdawC", ch) != NULL;
		counted |= ch == 'n';
		switch (ch) {
		case 'R':
			replay = optarg;
			continue;
		case 'w':
			if (parse_weights(optarg) == -1)
				usage();
			continue;
		case 'C':
			if (parse_channels(optarg) == -1)
				usage();
			continue;
		case 'P':
			po.brokers = optarg;
			continue;
		case 'L':
			po.alerts = optarg;
			continue;
		}
		for (i = 0; i < nopts && opts[i].ch != ch; i++)
			;
		if (i == nopts || parse_ll(optarg, opts[i].min, opts[i].max,
		    opts[i].val) == -1)
			usage();
	}
	if (po.brokers != NULL ? optind + 1 != argc : optind != argc)
		usage();
	/* -L knows its events by the ids it makes: a replay keeps the file's */
	if (replay != NULL ? mixed || po.alerts != NULL : copies != 1)
		usage();
	pain_pct = (int)pain;
	sentiment_pct = (int)sentiment;
	silent_pct = (int)silent;
	disorder_pct = (int)disorder;
	arrival_ms = arrival * 60000;
	/*
	 * Printed streams start on a fixed day, so they are the same on
	 * every run. A produced stream is live traffic: its event times must
	 * not run past today, or journeyd would refuse them as too far in the
	 * future, so it starts three years back. A replay keeps the data
	 * set's own times unless -t moves it.
	 */
	if (replay != NULL) {
		if (gen_init_replay(&g, replay, copies, start) == -1)
			return 1;
		if (!counted)
			events = (long long)g.replay->n * copies;
	} else {
		if (start < 0)
			start = po.brokers == NULL ? 1767225600000LL :
			    (int64_t)time(NULL) * 1000 -
			    3LL * 365 * 86400 * 1000;
		if (gen_init(&g, (long)customers, (uint64_t)seed, start,
		    (int)bad) == -1)
			return 1;
	}
	if (po.brokers == NULL)
		rc = generate(&g, events);
	else {
		po.topic = argv[optind];
		po.rate = rate;
		po.wait_ms = wait_ms;
		snprintf(lingerbuf, sizeof(lingerbuf), "%lld", linger);
		po.linger = lingerbuf;
		rc = produce_stream(&g, events, &po);
	}
	gen_free(&g);
	return rc == -1 ? 1 : 0;
}
