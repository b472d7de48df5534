/*
 * loadgen.c: a deterministic stream of customer-journey touchpoints for
 * journeyd's tests, as CUSTOMER_ID<TAB>JSON lines ready for
 * "ktool produce BROKERS TOPIC". It owns the personas, the event
 * vocabulary and the PRNG; nothing else.
 *
 *   loadgen [-c CUSTOMERS] [-n EVENTS] [-s SEED] [-t START_EPOCH_MS]
 *           [-b BAD_PER_THOUSAND]
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
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static const int persona_weight[] = { 30, 22, 18, 12, 8, 10 };

struct customer {
	int64_t		next_ts;
	uint32_t	id;
	uint8_t		persona, segment, stage, left, finished;
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
	if (c->stage > AWARENESS && between(0, 99) < p->pain_pct) {
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

/* One event's JSON, spoiled as bad says; returns its length. */
static int
format_event(char *buf, size_t len, uint64_t seed, long long seq,
    const struct customer *c, int e, int bad)
{
	const struct etype	*t = &etypes[e];
	int			 n, chan, sent = 0, has_sent = 1;

	do
		chan = (int)between(0, 5);
	while (!(t->channels & (1 << chan)));
	if (t->stage == PAIN)
		sent = (int)between(-100, -20);
	else if (t->stage == LOYALTY)
		sent = (int)between(30, 100);
	else if (between(0, 4) == 0)
		sent = (int)between(personas[c->persona].stalls ? -60 : -30, 80);
	else
		has_sent = 0;

	n = snprintf(buf, len, "{\"event_id\":\"e-%" PRIu64 "-%lld\"", seed,
	    seq);
	if (bad != BAD_NO_CUSTOMER)
		n += snprintf(buf + n, len - n, ",\"customer_id\":\"cust-%"
		    PRIu32 "\"", c->id);
	if (bad != BAD_NO_TYPE)
		n += snprintf(buf + n, len - n, ",\"type\":\"%s\"", t->name);
	n += snprintf(buf + n, len - n, ",\"channel\":\"%s\",\"ts\":%" PRId64,
	    channels[chan], c->next_ts);
	if (has_sent)
		n += put_cents(buf + n, len - n, "sentiment", sent);
	n += snprintf(buf + n, len - n, ",\"segment\":\"%s\"",
	    segments[c->segment]);
	if (t->value_hi > 0)
		n += put_cents(buf + n, len - n, "value",
		    between(t->value_lo, t->value_hi));
	n += snprintf(buf + n, len - n, "}");
	if (bad == BAD_CUT)
		buf[n /= 2] = '\0';
	return n;
}

static int
generate(long ncust, long long nevents, uint64_t seed, int64_t start, int bad)
{
	struct customer	*h;
	char		 json[512];
	long long	 nbad = 0;
	size_t		 i;
	int		 kind;

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
		/* arrivals spread over the first week */
		h[i].next_ts = start + between(0, 7LL * 86400 * 1000);
	}
	for (i = (size_t)ncust / 2 + 1; i-- > 0;)
		sift_down(h, (size_t)ncust, i);

	/* the earliest customer speaks next, then waits for their next turn */
	for (long long line = 0; line < nevents; line++) {
		kind = GOOD;
		/* exactly bad lines in each thousand, evenly spread */
		if ((line + 1) * bad / 1000 != line * bad / 1000)
			kind = (int)(nbad++ % NBAD);
		format_event(json, sizeof(json), seed, line + 1, &h[0],
		    next_event(&h[0]), kind);
		if (kind == BAD_NO_CUSTOMER)
			printf("\t%s\n", json);
		else
			printf("cust-%" PRIu32 "\t%s\n", h[0].id, json);
		h[0].next_ts += next_gap(&h[0]);
		sift_down(h, (size_t)ncust, 0);
	}
	free(h);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, PROG ": stdout: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: " PROG " [-c customers] [-n events] [-s seed] "
	    "[-t start_epoch_ms] [-b bad_per_thousand]\n");
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

int
main(int argc, char *argv[])
{
	long long	customers = 2000, events = 20000, seed = 1;
	long long	start = 1767225600000LL, bad = 0;
	const struct {
		int		 ch;
		long long	 min, max, *val;
	} opts[] = {
		{ 'c', 1, 10000000, &customers },
		{ 'n', 0, 1000000000000LL, &events },
		{ 's', 0, INT64_MAX, &seed },
		{ 't', 0, INT64_MAX / 4, &start },
		{ 'b', 0, 1000, &bad },
	};
	int		ch, i;

	while ((ch = getopt(argc, argv, "c:n:s:t:b:")) != -1) {
		for (i = 0; i < 5 && opts[i].ch != ch; i++)
			;
		if (i == 5 || parse_ll(optarg, opts[i].min, opts[i].max,
		    opts[i].val) == -1)
			usage();
	}
	if (optind != argc)
		usage();
	return generate((long)customers, events, (uint64_t)seed, start,
	    (int)bad) == -1 ? 1 : 0;
}
