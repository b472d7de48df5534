/*
 * config.c: parsing and validation of journeyd.conf.
 * Every value is checked here, Kafka properties included (each against a
 * scratch librdkafka configuration; what they are together, with the
 * settings journeyd adds, is checked by journeyd -n: kafka_conf.c), so
 * that a config which loads is one the daemon can run with. The first
 * problem found is reported as FILE:LINE so an operator can go straight
 * to it.
 */
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "json_text.h"
#include "number.h"

/*
 * journeyd names a partition "topic/partition" in JOURNEY_SOURCE_MAX bytes
 * (a customer's offsets, its deadline index): a longer name, cut short,
 * would match none.
 */
#define INPUT_TOPIC_MAX	(JOURNEY_SOURCE_MAX - (int)sizeof("/2147483647"))
/* longer than a customer's history could be: times stay far from overflow */
#define DURATION_MAX_DAYS	100000
#define DURATION_MAX_MS		(DURATION_MAX_DAYS * INT64_C(86400000))

struct parser {
	const char	*path;
	int		 line;
	char		*err;
	unsigned int	 seen;		/* bitmask of scalar keys set */
	int		 seen_line[32];
	int		 custom_stages;
	int		 stage_refs;	/* a line naming a stage was read */
	int		 weight_line;	/* the last churn.weight.* line */
	rd_kafka_conf_t	*scratch[3];	/* per config_scope */
	/* the churn.cadence.*, churn.weight.* and sentiment.* keys read */
	char		**named;
	int		 *named_line;
	size_t		  nnamed;
};

static const char *const default_stages[][2] = {
	{ "awareness", "ad_click, search_visit, social_post, blog_read" },
	{ "consideration", "product_view, pricing_view, comparison, "
	    "demo_request, trial_start, add_to_cart" },
	{ "decision", "checkout, purchase, contract_signed" },
	{ "retention", "repeat_purchase, renewal, login, support_resolved, "
	    "purchase >= 2" },
	{ "loyalty", "referral, review_positive, purchase >= 5" },
};

static const char *const default_pain =
    "complaint, refund, return, payment_failed, cart_abandoned, "
    "review_negative, subscription_cancelled";

static const struct {
	const char	*type;
	double		 sentiment;
} default_sentiment[] = {
	{ "complaint", -0.8 }, { "review_negative", -0.8 }, { "refund", -0.4 },
	{ "payment_failed", -0.3 }, { "review_positive", 0.8 },
	{ "referral", 0.6 },
};

/* survey answers: an NPS of 0 says -1, of 10 +1; a CSAT of 1 to 5 alike */
static const struct {
	const char	*type;
	const char	*scale;
} default_sentiment_scale[] = {
	{ "nps", "score 0..10" }, { "csat", "score 1..5" },
};

static const char *const churn_component_name[CHURN_COMPONENTS] = {
	[CHURN_INACTIVITY] = "inactivity", [CHURN_PAIN] = "pain",
	[CHURN_SENTIMENT] = "sentiment", [CHURN_ENGAGEMENT] = "engagement",
};

/*
 * Properties journeyd sets itself because its guarantees depend on them
 * (queue.buffering.max.messages: an alert is never refused for the count
 * of messages queued; kafka_conf.c).
 */
#define SEGMENTS_LIMIT	"the " NUMBER_TEXT(JOURNEY_SEGMENTS_MAX) \
			    " segments allowed"
#define TRAITS_LIMIT	"the " NUMBER_TEXT(JOURNEY_TRAITS_MAX) " event " \
			    "types with a pain point or sentiment allowed"

/* librdkafka properties journeyd sets, and what to do instead */
static const struct {
	const char	*name;
	const char	*instead;
} managed_props[] = {
	{ "bootstrap.servers", "use the brokers key" },
	{ "metadata.broker.list", "use the brokers key" },
	{ "group.id", "use the group key" },
	{ "auto.offset.reset", "leave it out" },
	{ "topic.auto.offset.reset", "leave it out" },
	{ "enable.auto.offset.store", "leave it out" },
	{ "enable.idempotence", "leave it out" },
	{ "enable.partition.eof", "leave it out" },
	{ "queue.buffering.max.messages", "leave it out" },
};

/*
 * An error echoes what the file held, which may be anything: the log line
 * gets neither controls (a terminal obeys some) nor broken UTF-8.
 */
static void
make_printable(char *s)
{
	size_t	len = strlen(s), n;

	for (size_t i = 0; i < len; i += n)
		if ((n = json_text_utf8_sequence((unsigned char *)s + i,
		    len - i)) == 0 || event_text_has_control(s + i, n)) {
			s[i] = '?';
			n = 1;
		}
}

static int
perr(struct parser *p, const char *fmt, ...)
{
	va_list	ap;
	size_t	n;

	n = (size_t)snprintf(p->err, CONFIG_ERR_MAX, "%s:%d: ", p->path,
	    p->line);
	if (n >= CONFIG_ERR_MAX - 1)	/* a path as long as the buffer */
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, CONFIG_ERR_MAX - n, fmt, ap);
	va_end(ap);
	/* librdkafka's messages may end in a newline: one line per error */
	n = strlen(p->err);
	while (n > 0 && (p->err[n - 1] == '\n' || p->err[n - 1] == ' '))
		p->err[--n] = '\0';
	make_printable(p->err);
	return -1;
}

static char *
trim(char *s)
{
	char	*e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static int
set_string(char **dst, const char *v)
{
	char	*copy = strdup(v);

	if (copy == NULL)
		return -1;
	free(*dst);
	*dst = copy;
	return 0;
}

static int
parse_int(struct parser *p, const char *key, const char *v, long lo, long hi,
    int *out)
{
	char	*end;
	long	 n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno || n < lo || n > hi)
		return perr(p, "%s: '%s' is not a whole number from %ld to %ld",
		    key, v, lo, hi);
	*out = (int)n;
	return 0;
}

static int
topic_name_ok(const char *t)
{
	size_t	len = strlen(t);

	if (len == 0 || len > 249)
		return 0;
	for (; *t; t++)
		if (!(*t == '.' || *t == '_' || *t == '-' ||
		    (*t >= '0' && *t <= '9') || (*t >= 'a' && *t <= 'z') ||
		    (*t >= 'A' && *t <= 'Z')))
			return 0;
	return 1;
}

static int
parse_number(struct parser *p, const char *key, const char *v, double lo,
    double hi, double *out)
{
	char	*end;
	double	 n;

	errno = 0;
	n = strtod(v, &end);
	if (*v == '\0' || *end != '\0' || errno || !(n >= lo && n <= hi))
		return perr(p, "%s: '%s' is not a number from %g to %g", key, v,
		    lo, hi);
	*out = n;
	return 0;
}

/* 30d, 12h, 15m, 90s, 500ms */
static int
parse_duration(struct parser *p, const char *key, const char *v,
    int64_t min_ms, int64_t *out)
{
	static const struct {
		const char	*unit;
		int64_t		 ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
	    { "h", 3600000 }, { "d", 86400000 } };
	char		*end;
	long long	 n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (end != v && errno == 0 && n >= 0)
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(end, units[i].unit) == 0 &&
			    n <= DURATION_MAX_MS / units[i].ms &&
			    n * units[i].ms >= min_ms) {
				*out = n * units[i].ms;
				return 0;
			}
	return perr(p, "%s: '%s' is not a duration from %lld ms to %d days, "
	    "written like 30d, 12h, 15m, 90s or 500ms", key, v,
	    (long long)min_ms, DURATION_MAX_DAYS);
}

static int
parse_topic(struct parser *p, const char *key, const char *v, char **dst)
{
	if (!topic_name_ok(v))
		return perr(p, "%s: '%s' is not a valid Kafka topic name", key,
		    v);
	return set_string(dst, v) == -1 ? perr(p, "out of memory") : 0;
}

static int
parse_input_topics(struct parser *p, struct config *c, char *v)
{
	char	*save = NULL, *t;

	for (int i = 0; i < c->ninput; i++)
		free(c->input_topic[i]);
	c->ninput = 0;
	for (t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		t = trim(t);
		if (c->ninput == CONFIG_TOPICS_MAX)
			return perr(p, "topic.input: more than %d topics",
			    CONFIG_TOPICS_MAX);
		if (!topic_name_ok(t))
			return perr(p, "topic.input: '%s' is not a valid Kafka "
			    "topic name", t);
		if (strlen(t) > INPUT_TOPIC_MAX)
			return perr(p, "topic.input: '%s' is longer than %d "
			    "characters", t, INPUT_TOPIC_MAX);
		if ((c->input_topic[c->ninput++] = strdup(t)) == NULL)
			return perr(p, "out of memory");
	}
	if (c->ninput == 0)
		return perr(p, "topic.input: no topic given");
	return 0;
}

/* IP:PORT, [IPv6]:PORT or localhost:PORT into *host and *port. */
static int
parse_address(struct parser *p, const char *key, const char *v, char **host,
    int *port)
{
	const char	*colon;
	char		 addr[64], what[32];
	struct in6_addr	 a6;
	struct in_addr	 a4;

	if ((colon = strrchr(v, ':')) == NULL || (size_t)(colon - v) >=
	    sizeof(addr) || colon == v)
		return perr(p, "%s: '%s' is not HOST:PORT%s", key, v,
		    strcmp(key, "redis") == 0 ? " or a socket path" : "");
	memcpy(addr, v, (size_t)(colon - v));
	addr[colon - v] = '\0';
	if (addr[0] == '[' && addr[strlen(addr) - 1] == ']') {
		memmove(addr, addr + 1, strlen(addr) - 2);
		addr[strlen(addr) - 2] = '\0';
	}
	if (strcmp(addr, "localhost") == 0)
		strcpy(addr, "127.0.0.1");
	/* names would be resolved synchronously: addresses keep the loop free */
	if (inet_pton(AF_INET, addr, &a4) != 1 &&
	    inet_pton(AF_INET6, addr, &a6) != 1)
		return perr(p, "%s: '%s' is not an IP address (names are "
		    "not resolved; use an address%s)", key, addr,
		    strcmp(key, "redis") == 0 ? " or a socket path" : "");
	snprintf(what, sizeof(what), "%s port", key);
	if (parse_int(p, what, colon + 1, 1, 65535, port) == -1)
		return -1;
	return set_string(host, addr) == -1 ? perr(p, "out of memory") : 0;
}

static int
parse_redis(struct parser *p, struct config *c, const char *v)
{
	free(c->redis_host);
	free(c->redis_unix);
	c->redis_host = c->redis_unix = NULL;
	if (strncmp(v, "unix:", 5) == 0)
		v += 5;
	if (v[0] == '/') {
		/* what a unix socket address holds: hiredis would cut it */
		if (strlen(v) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
			return perr(p, "redis: socket path longer than %zu "
			    "bytes", sizeof(((struct sockaddr_un *)NULL)->sun_path)
			    - 1);
		return set_string(&c->redis_unix, v) == -1 ?
		    perr(p, "out of memory") : 0;
	}
	return parse_address(p, "redis", v, &c->redis_host, &c->redis_port);
}

static int
parse_http(struct parser *p, struct config *c, const char *v)
{
	free(c->http_host);
	c->http_host = NULL;
	if (strcmp(v, "off") == 0)
		return 0;
	return parse_address(p, "http", v, &c->http_host, &c->http_port);
}

static int
parse_kafka_prop(struct parser *p, struct config *c, const char *key,
    const char *v)
{
	enum config_scope		 scope = CONFIG_SCOPE_BOTH;
	const char			*name = key + 6;
	char				 errstr[256], stored[32];
	size_t				 storedlen = sizeof(stored);
	struct config_kafka_prop	*np;

	if (strncmp(name, "consumer.", 9) == 0) {
		scope = CONFIG_SCOPE_CONSUMER;
		name += 9;
	} else if (strncmp(name, "producer.", 9) == 0) {
		scope = CONFIG_SCOPE_PRODUCER;
		name += 9;
	}
	for (size_t i = 0; i < sizeof(managed_props) / sizeof(*managed_props);
	    i++)
		if (strcmp(name, managed_props[i].name) == 0)
			return perr(p, "%s: set by journeyd itself; %s", key,
			    managed_props[i].instead);
	for (size_t i = 0; i < c->nprops; i++)
		if (c->props[i].scope == scope &&
		    strcmp(c->props[i].name, name) == 0)
			return perr(p, "%s: already set at line %d", key,
			    c->props[i].line);
	if (rd_kafka_conf_set(p->scratch[scope], name, v, errstr,
	    sizeof(errstr)) != RD_KAFKA_CONF_OK)
		return perr(p, "%s: %s", key, errstr);
	/*
	 * The consumer's statistics tell when brokers are up again. As
	 * librdkafka reads the value: it takes 0x0, 0.5 or 00x1 for 0 too.
	 */
	if (scope != CONFIG_SCOPE_PRODUCER &&
	    strcmp(name, "statistics.interval.ms") == 0 &&
	    rd_kafka_conf_get(p->scratch[scope], name, stored,
	    &storedlen) == RD_KAFKA_CONF_OK && strcmp(stored, "0") == 0)
		return perr(p, "%s: 0 turns off the statistics journeyd reads "
		    "to tell when brokers are up again", key);
	np = reallocarray(c->props, c->nprops + 1, sizeof(*c->props));
	if (np == NULL)
		return perr(p, "out of memory");
	c->props = np;
	np = &c->props[c->nprops];
	np->scope = scope;
	np->line = p->line;
	np->name = strdup(name);
	np->value = strdup(v);
	c->nprops++;
	if (np->name == NULL || np->value == NULL)
		return perr(p, "out of memory");
	return 0;
}

/*
 * Whether r holds for every event of its type from some event on: a plain
 * type, or a count at least reached (which stays reached). A condition on
 * a property may tell the events apart (nps.score >= 9 up, nps.score <= 3
 * down), and a count that must equal N holds once.
 */
static int
holds_from_then_on(const struct journey_rule *r)
{
	return r->kind == JOURNEY_RULE_EVENT || (r->kind == JOURNEY_RULE_COUNT &&
	    (r->op == JOURNEY_OP_GE || r->op == JOURNEY_OP_GT));
}

/*
 * The stage after demotion d's that a promotion puts customers in on the
 * same events, for good, or -1: each such event would then move them
 * down and the next one up again.
 */
static int
promoted_past(const struct journey_model *m, const struct journey_rule *d)
{
	if (!holds_from_then_on(d))
		return -1;
	for (size_t i = 0; i < m->nrules; i++) {
		const struct journey_rule	*r = &m->rule[i];

		if (!r->demote && holds_from_then_on(r) &&
		    r->stage > d->stage && strcmp(r->type, d->type) == 0)
			return r->stage;
	}
	return -1;
}

/*
 * Adds the comma-separated alternatives of one stage.* or demote.* line.
 * err is NULL for the built-in model, which cannot be wrong.
 */
static int
add_rules(struct parser *p, struct journey_model *m, int stage, int demote,
    char *v)
{
	struct journey_rule	 r;
	char			*save = NULL, *t, why[JOURNEY_RULE_ERR_MAX];
	const char		*name = m->stage[stage];
	int			 other;

	for (t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (journey_rule_parse(trim(t), &r, why) == -1)
			return perr(p, "%s.%s: %s", demote ? "demote" : "stage",
			    name, why);
		r.stage = stage;
		r.demote = demote;
		other = journey_model_stage_of(m, r.type);
		if (r.kind == JOURNEY_RULE_EVENT && !demote &&
		    other != JOURNEY_NO_STAGE)
			return perr(p, "stage.%s: event type '%s' already leads "
			    "to stage '%s'", name, r.type, m->stage[other]);
		if (demote && (other = promoted_past(m, &r)) != -1)
			return perr(p, "demote.%s: '%s' also leads to stage "
			    "'%s', after it: the customer would go back and "
			    "forth on every such event", name, r.type,
			    m->stage[other]);
		if (journey_model_add_rule(m, &r) == -1)
			return perr(p, "more than %d rules", JOURNEY_RULES_MAX);
		/* keep the lookups in stage_of valid while rules are added */
		journey_model_finish(m);
	}
	return 0;
}

static int
check_name(struct parser *p, const char *what, const char *name)
{
	if (*name == '\0' || strlen(name) > EVENT_NAME_MAX)
		return perr(p, "%s name must be 1 to %d bytes", what,
		    EVENT_NAME_MAX);
	for (const char *s = name; *s; s++)
		if (!(*s == '_' || *s == '-' || (*s >= '0' && *s <= '9') ||
		    (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return perr(p, "%s '%s': use letters, digits, '_' and "
			    "'-' only", what, name);
	return 0;
}

static int
parse_stage(struct parser *p, struct config *c, const char *name, char *v)
{
	int	stage;

	if (!p->custom_stages) {
		/* the first stage line replaces the default stages */
		if (p->stage_refs)
			return perr(p, "stage.%s: stage lines must come before "
			    "lines that name a stage (demote.*, "
			    "churn.cadence.*)", name);
		journey_model_clear_stages(&c->model);
		p->custom_stages = 1;
	}
	if (check_name(p, "stage", name) == -1)
		return -1;
	if (journey_model_stage_index(&c->model, name) != JOURNEY_NO_STAGE)
		return perr(p, "stage '%s' is defined twice", name);
	if ((stage = journey_model_add_stage(&c->model, name)) == -1)
		return perr(p, "more than %d stages", JOURNEY_STAGES_MAX);
	return add_rules(p, &c->model, stage, 0, v);
}

/* A stage named by a later line: demote.NAME, churn.cadence.NAME. */
static int
stage_ref(struct parser *p, struct config *c, const char *key,
    const char *name)
{
	int	stage;

	if (check_name(p, "stage", name) == -1)
		return -1;
	if ((stage = journey_model_stage_index(&c->model, name)) ==
	    JOURNEY_NO_STAGE)
		return perr(p, "%s: no stage '%s' defined above", key, name);
	p->stage_refs = 1;
	return stage;
}

static int
parse_demote(struct parser *p, struct config *c, const char *key,
    const char *name, char *v)
{
	int	stage;

	if ((stage = stage_ref(p, c, key, name)) == -1)
		return -1;
	return add_rules(p, &c->model, stage, 1, v);
}

static int
parse_cadence(struct parser *p, struct config *c, const char *key,
    const char *name, const char *v)
{
	int	stage;

	if ((stage = stage_ref(p, c, key, name)) == -1)
		return -1;
	return parse_duration(p, key, v, 1, &c->model.cadence_ms[stage]);
}

/* a number in [-1, 1], or "PROPERTY LO..HI": its values scaled to it */
static int
parse_sentiment(struct parser *p, struct config *c, const char *key,
    const char *type, const char *v)
{
	struct journey_scale	 scale;
	char			 err[JOURNEY_RULE_ERR_MAX];
	double			 sentiment = 0;	/* gcc -O2 misses that it is set first */
	int			 rc;

	if (check_name(p, "event type", type) == -1)
		return -1;
	if (strstr(v, "..") == NULL) {
		if (parse_number(p, key, v, -1, 1, &sentiment) == -1)
			return perr(p, "%s: '%s': expected a number in [-1, 1], "
			    "or a property and its range (score 0..10)", key, v);
		rc = journey_model_set_sentiment(&c->model, type, sentiment);
	} else if (journey_scale_parse(v, &scale, err) == -1)
		return perr(p, "%s: %s", key, err);
	else
		rc = journey_model_set_sentiment_scale(&c->model, type,
		    &scale);
	if (rc == -1)
		return perr(p, "%s: more than %d event types with a "
		    "sentiment or pain", key, JOURNEY_TRAITS_MAX);
	journey_model_finish(&c->model);
	return 0;
}

static int
parse_weight(struct parser *p, struct config *c, const char *key,
    const char *name, const char *v)
{
	p->weight_line = p->line;
	for (int i = 0; i < CHURN_COMPONENTS; i++)
		if (strcmp(name, churn_component_name[i]) == 0)
			return parse_number(p, key, v, 0, 1000,
			    &c->model.churn.weight[i]);
	return perr(p, "%s: no score component '%s' (inactivity, pain, "
	    "sentiment, engagement)", key, name);
}

/*
 * A segment is what events carry (see README "Event format"), spaces and
 * all: "United Kingdom". It names a Redis key, so no braces or controls.
 */
static int
check_segment(struct parser *p, const char *what, const char *name)
{
	size_t	len = strlen(name);

	if (len == 0 || len > EVENT_NAME_MAX)
		return perr(p, "%s name must be 1 to %d bytes", what,
		    EVENT_NAME_MAX);
	/* events' segments are UTF-8: no other name could ever match one */
	if (!event_text_utf8(name, len))
		return perr(p, "%s name is not valid UTF-8", what);
	if (event_text_has_control(name, len) || strpbrk(name, "{}") != NULL)
		return perr(p, "%s '%s': no braces or control characters",
		    what, name);
	return 0;
}

/*
 * The comma-separated names of a list key, each checked, to add(); limit
 * says how many add() takes.
 */
static int
parse_names(struct parser *p, struct config *c, const char *key, char *v,
    int (*check)(struct parser *, const char *, const char *),
    int (*add)(struct journey_model *, const char *), const char *limit)
{
	char	*save = NULL, *t;

	for (t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		t = trim(t);
		if (check(p, key, t) == -1)
			return -1;
		if (add(&c->model, t) == -1)
			return perr(p, "%s: '%s' is given twice, or is one more "
			    "than %s", key, t, limit);
	}
	journey_model_finish(&c->model);
	return 0;
}

static int
add_pain(struct journey_model *m, const char *type)
{
	return journey_model_set_pain(m, type, 1);
}

/* Scalar keys: each may appear once. */
enum key_id {
	K_BROKERS, K_GROUP, K_TOPIC_INPUT, K_TOPIC_STAGE, K_TOPIC_CHURN,
	K_TOPIC_DLQ, K_REDIS, K_REDIS_PASSWORD, K_REDIS_DB, K_REDIS_PREFIX,
	K_REDIS_TIMEOUT, K_MAX_INFLIGHT, K_BATCH_MAX, K_DRAIN_TIMEOUT,
	K_EVENT_MAX_BYTES, K_EVENT_MAX_FUTURE, K_LOG_LEVEL, K_CLOCK,
	K_CLOCK_LATENESS, K_SEGMENTS, K_PAIN, K_CADENCE, K_CHURN_AFTER,
	K_CHURN_MEDIUM, K_CHURN_HIGH, K_CHURN_HYSTERESIS, K_HALF_LIFE,
	K_HTTP, K_HEALTH_MAX_LAG,
};

static const char *const key_names[] = {
	[K_BROKERS] = "brokers", [K_GROUP] = "group",
	[K_TOPIC_INPUT] = "topic.input", [K_TOPIC_STAGE] = "topic.stage_change",
	[K_TOPIC_CHURN] = "topic.churn_risk",
	[K_TOPIC_DLQ] = "topic.dead_letter", [K_REDIS] = "redis",
	[K_REDIS_PASSWORD] = "redis.password", [K_REDIS_DB] = "redis.db",
	[K_REDIS_PREFIX] = "redis.prefix",
	[K_REDIS_TIMEOUT] = "redis.timeout_ms",
	[K_MAX_INFLIGHT] = "max_inflight", [K_BATCH_MAX] = "batch_max",
	[K_DRAIN_TIMEOUT] = "drain_timeout_ms",
	[K_EVENT_MAX_BYTES] = "event.max_bytes",
	[K_EVENT_MAX_FUTURE] = "event.max_future_ms",
	[K_LOG_LEVEL] = "log_level", [K_CLOCK] = "clock",
	[K_CLOCK_LATENESS] = "clock.lateness", [K_SEGMENTS] = "segments",
	[K_PAIN] = "pain", [K_CADENCE] = "churn.cadence",
	[K_CHURN_AFTER] = "churn.after", [K_CHURN_MEDIUM] = "churn.medium",
	[K_CHURN_HIGH] = "churn.high", [K_CHURN_HYSTERESIS] = "churn.hysteresis",
	[K_HALF_LIFE] = "decay.half_life",
	[K_HTTP] = "http", [K_HEALTH_MAX_LAG] = "health.max_lag",
};

/* Whether a comma-separated list has an entry of blanks alone, or none. */
static int
has_blank_entry(const char *v)
{
	size_t	len;

	do {
		len = strcspn(v, ",");
		if (strspn(v, " \t") >= len)
			return 1;
		v += len;
	} while (*v++ == ',');
	return 0;
}

static int
parse_scalar(struct parser *p, struct config *c, enum key_id k, char *v)
{
	int	n = 0;	/* gcc -O2 misses that it is set first */

	switch (k) {
	case K_BROKERS:
		if (has_blank_entry(v))
			return perr(p, "brokers: an empty entry in the list");
		return set_string(&c->brokers, v);
	case K_GROUP:
		if (*v == '\0')
			return perr(p, "group: empty group id");
		return set_string(&c->group, v);
	case K_TOPIC_INPUT:
		return parse_input_topics(p, c, v);
	case K_TOPIC_STAGE:
		return parse_topic(p, key_names[k], v, &c->topic_stage_change);
	case K_TOPIC_CHURN:
		return parse_topic(p, key_names[k], v, &c->topic_churn_risk);
	case K_TOPIC_DLQ:
		return parse_topic(p, key_names[k], v, &c->topic_dead_letter);
	case K_REDIS:
		return parse_redis(p, c, v);
	case K_REDIS_PASSWORD:
		if (*v == '\0')
			return perr(p, "redis.password: empty (leave the line "
			    "out when Redis asks for none)");
		return set_string(&c->redis_password, v);
	case K_REDIS_DB:
		return parse_int(p, key_names[k], v, 0, 65535, &c->redis_db);
	case K_REDIS_PREFIX:
		if (strpbrk(v, "{} \t") != NULL)
			return perr(p, "redis.prefix: no braces or blanks");
		if (strlen(v) > CONFIG_PREFIX_MAX)
			return perr(p, "redis.prefix: longer than %d bytes",
			    CONFIG_PREFIX_MAX);
		return set_string(&c->redis_prefix, v);
	case K_REDIS_TIMEOUT:
		return parse_int(p, key_names[k], v, 10, 600000,
		    &c->redis_timeout_ms);
	case K_MAX_INFLIGHT:
		return parse_int(p, key_names[k], v, 1, CONFIG_INFLIGHT_MAX,
		    &c->max_inflight);
	case K_BATCH_MAX:
		return parse_int(p, key_names[k], v, 1, 100000, &c->batch_max);
	case K_DRAIN_TIMEOUT:
		return parse_int(p, key_names[k], v, 0, 3600000,
		    &c->drain_timeout_ms);
	case K_EVENT_MAX_BYTES:
		if (parse_int(p, key_names[k], v, 64, 16777216, &n) == -1)
			return -1;
		c->event_max_bytes = (size_t)n;
		return 0;
	case K_EVENT_MAX_FUTURE:
		return parse_int(p, key_names[k], v, 0, INT_MAX,
		    &c->event_max_future_ms);
	case K_LOG_LEVEL:
		if (log_level_parse(v, &c->log_level) == -1)
			return perr(p, "log_level: '%s' is not warn, info or "
			    "debug", v);
		return 0;
	case K_CLOCK:
		if (strcmp(v, "wall") == 0)
			c->clock = CONFIG_CLOCK_WALL;
		else if (strcmp(v, "event") == 0)
			c->clock = CONFIG_CLOCK_EVENT;
		else
			return perr(p, "clock: '%s' is not wall or event", v);
		return 0;
	case K_CLOCK_LATENESS:
		return parse_duration(p, key_names[k], v, 0,
		    &c->clock_lateness_ms);
	case K_SEGMENTS:
		return parse_names(p, c, key_names[k], v, check_segment,
		    journey_model_add_segment, SEGMENTS_LIMIT);
	case K_PAIN:
		journey_model_clear_pain(&c->model);
		return parse_names(p, c, key_names[k], v, check_name,
		    add_pain, TRAITS_LIMIT);
	case K_CADENCE:
		return parse_duration(p, key_names[k], v, 1,
		    &c->model.cadence_default_ms);
	case K_CHURN_AFTER:
		return parse_duration(p, key_names[k], v, 0,
		    &c->model.churn.after_ms);
	case K_CHURN_MEDIUM:
		return parse_number(p, key_names[k], v, 0, 1,
		    &c->model.churn.threshold[CHURN_MEDIUM]);
	case K_CHURN_HIGH:
		return parse_number(p, key_names[k], v, 0, 1,
		    &c->model.churn.threshold[CHURN_HIGH]);
	case K_CHURN_HYSTERESIS:
		return parse_number(p, key_names[k], v, 0, 1,
		    &c->model.churn.hysteresis);
	case K_HALF_LIFE:
		return parse_duration(p, key_names[k], v, 1,
		    &c->model.churn.half_life_ms);
	case K_HTTP:
		return parse_http(p, c, v);
	case K_HEALTH_MAX_LAG:
		return parse_int(p, key_names[k], v, 0, INT_MAX,
		    &c->health_max_lag);
	}
	return perr(p, "internal: unhandled key");
}

/* A key of a family (churn.weight.NAME, ...) may appear once, too. */
static int
once(struct parser *p, const char *key)
{
	char	**names;
	int	 *lines;

	for (size_t i = 0; i < p->nnamed; i++)
		if (strcmp(p->named[i], key) == 0)
			return perr(p, "%s: already set at line %d", key,
			    p->named_line[i]);
	if ((names = reallocarray(p->named, p->nnamed + 1,
	    sizeof(*names))) == NULL)
		return perr(p, "out of memory");
	p->named = names;
	if ((lines = reallocarray(p->named_line, p->nnamed + 1,
	    sizeof(*lines))) == NULL)
		return perr(p, "out of memory");
	p->named_line = lines;
	if ((p->named[p->nnamed] = strdup(key)) == NULL)
		return perr(p, "out of memory");
	p->named_line[p->nnamed++] = p->line;
	return 0;
}

static int
parse_line(struct parser *p, struct config *c, char *line)
{
	char	*eq, *key, *v;

	line = trim(line);
	if (*line == '\0' || *line == '#')
		return 0;
	if ((eq = strchr(line, '=')) == NULL)
		return perr(p, "expected 'key = value'");
	*eq = '\0';
	key = trim(line);
	v = trim(eq + 1);
	if (*key == '\0')
		return perr(p, "expected 'key = value'");
	if (strncmp(key, "kafka.", 6) == 0)
		return parse_kafka_prop(p, c, key, v);
	if (strncmp(key, "stage.", 6) == 0)
		return parse_stage(p, c, key + 6, v);
	if (strncmp(key, "demote.", 7) == 0)
		return once(p, key) == -1 ? -1 :
		    parse_demote(p, c, key, key + 7, v);
	if (strncmp(key, "churn.cadence.", 14) == 0)
		return once(p, key) == -1 ? -1 :
		    parse_cadence(p, c, key, key + 14, v);
	if (strncmp(key, "churn.weight.", 13) == 0)
		return once(p, key) == -1 ? -1 :
		    parse_weight(p, c, key, key + 13, v);
	if (strncmp(key, "sentiment.", 10) == 0)
		return once(p, key) == -1 ? -1 :
		    parse_sentiment(p, c, key, key + 10, v);
	for (unsigned int k = 0; k < sizeof(key_names) / sizeof(*key_names);
	    k++) {
		if (strcmp(key, key_names[k]) != 0)
			continue;
		if (p->seen & (1u << k))
			return perr(p, "%s: already set at line %d", key,
			    p->seen_line[k]);
		p->seen |= 1u << k;
		p->seen_line[k] = p->line;
		if (parse_scalar(p, c, (enum key_id)k, v) == -1)
			return *p->err ? -1 : perr(p, "out of memory");
		return 0;
	}
	return perr(p, "unknown key '%s'", key);
}

static int
set_defaults(struct parser *p, struct config *c)
{
	struct journey_scale	scale;
	char			buf[256];

	c->redis_port = 6379;
	c->redis_timeout_ms = 2000;
	c->max_inflight = 20000;
	c->batch_max = 2000;
	c->drain_timeout_ms = 30000;
	c->event_max_bytes = 65536;
	c->event_max_future_ms = 86400000;
	c->log_level = LOG_LEVEL_INFO;
	c->http_port = 9187;
	c->health_max_lag = 100000;
	if (set_string(&c->brokers, "127.0.0.1:9092") == -1 ||
	    set_string(&c->group, "journeyd") == -1 ||
	    set_string(&c->topic_stage_change, "journey.stage-change") == -1 ||
	    set_string(&c->topic_churn_risk, "journey.churn-risk") == -1 ||
	    set_string(&c->topic_dead_letter, "journey.dead-letter") == -1 ||
	    set_string(&c->redis_host, "127.0.0.1") == -1 ||
	    set_string(&c->redis_prefix, "journey:") == -1 ||
	    set_string(&c->http_host, "127.0.0.1") == -1 ||
	    (c->input_topic[0] = strdup("touchpoints")) == NULL)
		return -1;
	c->ninput = 1;
	journey_model_init(&c->model);
	for (size_t i = 0; i < sizeof(default_stages) / sizeof(*default_stages);
	    i++) {
		int	stage = journey_model_add_stage(&c->model,
			    default_stages[i][0]);

		snprintf(buf, sizeof(buf), "%s", default_stages[i][1]);
		if (add_rules(p, &c->model, stage, 0, buf) == -1)
			return -1;
	}
	snprintf(buf, sizeof(buf), "%s", default_pain);
	if (parse_names(p, c, "pain", buf, check_name, add_pain,
	    TRAITS_LIMIT) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(default_sentiment) /
	    sizeof(*default_sentiment); i++)
		if (journey_model_set_sentiment(&c->model,
		    default_sentiment[i].type,
		    default_sentiment[i].sentiment) == -1)
			return -1;
	for (size_t i = 0; i < sizeof(default_sentiment_scale) /
	    sizeof(*default_sentiment_scale); i++)
		if (journey_scale_parse(default_sentiment_scale[i].scale, &scale,
		    buf) == -1 || journey_model_set_sentiment_scale(&c->model,
		    default_sentiment_scale[i].type, &scale) == -1)
			return -1;
	c->clock_lateness_ms = 60000;
	return 0;
}

static int
later_line(const struct parser *p, enum key_id a, enum key_id b)
{
	return p->seen_line[a] > p->seen_line[b] ? p->seen_line[a] :
	    p->seen_line[b];
}

/* What no single line can be checked for: the topics read and written. */
static int
check_topics(struct parser *p, struct config *c)
{
	const struct {
		enum key_id	 key;
		const char	*topic;
	} out[] = {
		{ K_TOPIC_STAGE, c->topic_stage_change },
		{ K_TOPIC_CHURN, c->topic_churn_risk },
		{ K_TOPIC_DLQ, c->topic_dead_letter },
	};

	/* a refused event could pass for an alert there */
	if (strcmp(c->topic_dead_letter, c->topic_stage_change) == 0 ||
	    strcmp(c->topic_dead_letter, c->topic_churn_risk) == 0) {
		p->line = later_line(p, K_TOPIC_DLQ,
		    strcmp(c->topic_dead_letter, c->topic_stage_change) == 0 ?
		    K_TOPIC_STAGE : K_TOPIC_CHURN);
		return perr(p, "topic.dead_letter: '%s' also carries alerts: "
		    "a refused event could pass for one", c->topic_dead_letter);
	}
	p->line = p->seen_line[K_TOPIC_INPUT];
	for (int i = 0; i < c->ninput; i++) {
		for (int j = 0; j < i; j++)
			if (strcmp(c->input_topic[i], c->input_topic[j]) == 0)
				return perr(p, "topic.input: '%s' is named "
				    "twice", c->input_topic[i]);
		/* a dead letter read again is refused again, and so on */
		for (size_t k = 0; k < sizeof(out) / sizeof(out[0]); k++)
			if (strcmp(c->input_topic[i], out[k].topic) == 0) {
				p->line = later_line(p, K_TOPIC_INPUT,
				    out[k].key);
				return perr(p, "topic.input: '%s' is also %s: "
				    "journeyd would read what it writes",
				    c->input_topic[i], key_names[out[k].key]);
			}
	}
	return 0;
}

/* How an error names a key's value the file may leave to its default. */
static const char *
default_note(const struct parser *p, enum key_id k)
{
	return p->seen_line[k] == 0 ? ", the default" : "";
}

/* What no single line can be checked for: how the churn keys fit. */
static int
check_churn(struct parser *p, struct config *c)
{
	const struct churn_params	*ch = &c->model.churn;
	double				 total = 0;

	for (int i = 0; i < CHURN_COMPONENTS; i++)
		total += ch->weight[i];
	p->line = later_line(p, K_CHURN_HIGH, K_CHURN_MEDIUM);
	if (ch->threshold[CHURN_MEDIUM] <= 0 ||
	    ch->threshold[CHURN_MEDIUM] >= ch->threshold[CHURN_HIGH])
		return perr(p, "churn.medium (%g%s) must be above 0 and "
		    "below churn.high (%g%s)", ch->threshold[CHURN_MEDIUM],
		    default_note(p, K_CHURN_MEDIUM), ch->threshold[CHURN_HIGH],
		    default_note(p, K_CHURN_HIGH));
	p->line = later_line(p, K_CHURN_HYSTERESIS, K_CHURN_MEDIUM);
	if (ch->hysteresis >= ch->threshold[CHURN_MEDIUM])
		return perr(p, "churn.hysteresis (%g%s) must be below "
		    "churn.medium (%g%s)", ch->hysteresis,
		    default_note(p, K_CHURN_HYSTERESIS),
		    ch->threshold[CHURN_MEDIUM],
		    default_note(p, K_CHURN_MEDIUM));
	p->line = p->weight_line;
	if (total <= 0)
		return perr(p, "churn.weight.*: at least one weight must be "
		    "above 0");
	return 0;
}

#define UTF8_BOM	"\xef\xbb\xbf"

int
config_load(const char *path, struct config **out, char err[CONFIG_ERR_MAX])
{
	struct parser	 p;
	struct config	*c = NULL;
	FILE		*f = NULL;
	char		*line = NULL;
	size_t		 cap = 0, skip;
	ssize_t		 n;
	int		 rv = -1;

	memset(&p, 0, sizeof(p));
	p.path = path;
	p.err = err;
	err[0] = '\0';
	for (int i = 0; i < 3; i++)
		if ((p.scratch[i] = rd_kafka_conf_new()) == NULL)
			goto nomem;
	if ((c = calloc(1, sizeof(*c))) == NULL || set_defaults(&p, c) == -1 ||
	    (c->path = strdup(path)) == NULL)
		goto nomem;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, CONFIG_ERR_MAX, "%s: %s", path, strerror(errno));
		goto done;
	}
	while ((n = getline(&line, &cap, f)) != -1) {
		p.line++;
		if (strlen(line) != (size_t)n) {
			perr(&p, "NUL byte in line");
			goto done;
		}
		/* some editors begin a UTF-8 file with a byte order mark */
		skip = p.line == 1 && strncmp(line, UTF8_BOM,
		    strlen(UTF8_BOM)) == 0 ? strlen(UTF8_BOM) : 0;
		if (parse_line(&p, c, line + skip) == -1)
			goto done;
	}
	if (ferror(f)) {
		snprintf(err, CONFIG_ERR_MAX, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (check_topics(&p, c) == -1 || check_churn(&p, c) == -1)
		goto done;
	journey_model_finish(&c->model);
	*out = c;
	c = NULL;
	rv = 0;
	goto done;
nomem:
	snprintf(err, CONFIG_ERR_MAX, "%s: out of memory", path);
done:
	free(line);
	for (size_t i = 0; i < p.nnamed; i++)
		free(p.named[i]);
	free(p.named);
	free(p.named_line);
	if (f != NULL)
		fclose(f);
	for (int i = 0; i < 3; i++)
		if (p.scratch[i] != NULL)
			rd_kafka_conf_destroy(p.scratch[i]);
	config_free(c);
	return rv;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->brokers);
	free(c->group);
	for (int i = 0; i < c->ninput; i++)
		free(c->input_topic[i]);
	free(c->topic_stage_change);
	free(c->topic_churn_risk);
	free(c->topic_dead_letter);
	for (size_t i = 0; i < c->nprops; i++) {
		free(c->props[i].name);
		free(c->props[i].value);
	}
	free(c->props);
	free(c->redis_host);
	free(c->redis_unix);
	free(c->redis_password);
	free(c->redis_prefix);
	free(c->http_host);
	free(c);
}

#define SWAP(a, b) do {							\
		__typeof__(a) swap_ = (a);				\
		(a) = (b);						\
		(b) = swap_;						\
	} while (0)

static int
strings_differ(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

static int
topics_differ(const struct config *a, const struct config *b)
{
	if (a->ninput != b->ninput)
		return 1;
	for (int i = 0; i < a->ninput; i++)
		if (strcmp(a->input_topic[i], b->input_topic[i]) != 0)
			return 1;
	return 0;
}

static int
props_differ(const struct config *a, const struct config *b)
{
	size_t	j;

	if (a->nprops != b->nprops)
		return 1;
	/* each (scope, name) once in a file: the lines' order is no change */
	for (size_t i = 0; i < a->nprops; i++) {
		for (j = 0; j < b->nprops; j++)
			if (a->props[i].scope == b->props[j].scope &&
			    strcmp(a->props[i].name, b->props[j].name) == 0)
				break;
		if (j == b->nprops ||
		    strcmp(a->props[i].value, b->props[j].value) != 0)
			return 1;
	}
	return 0;
}

void
config_keep_restart_keys(struct config *next, struct config *running,
    void (*changed)(const char *key))
{
#define KEEP_STRING(key, field) do {					\
		if (strings_differ(next->field, running->field))	\
			changed(key);					\
		SWAP(next->field, running->field);			\
	} while (0)
#define KEEP_INT(key, field) do {					\
		if (next->field != running->field)			\
			changed(key);					\
		next->field = running->field;				\
	} while (0)

	KEEP_STRING("brokers", brokers);
	KEEP_STRING("group", group);
	if (topics_differ(next, running))
		changed("topic.input");
	for (int i = 0; i < CONFIG_TOPICS_MAX; i++)
		SWAP(next->input_topic[i], running->input_topic[i]);
	SWAP(next->ninput, running->ninput);
	KEEP_STRING("topic.stage_change", topic_stage_change);
	KEEP_STRING("topic.churn_risk", topic_churn_risk);
	KEEP_STRING("topic.dead_letter", topic_dead_letter);
	if (props_differ(next, running))
		changed("kafka.*");
	SWAP(next->props, running->props);
	SWAP(next->nprops, running->nprops);
	if (strings_differ(next->redis_host, running->redis_host) ||
	    strings_differ(next->redis_unix, running->redis_unix) ||
	    next->redis_port != running->redis_port)
		changed("redis");
	SWAP(next->redis_host, running->redis_host);
	SWAP(next->redis_unix, running->redis_unix);
	next->redis_port = running->redis_port;
	KEEP_STRING("redis.password", redis_password);
	KEEP_INT("redis.db", redis_db);
	KEEP_STRING("redis.prefix", redis_prefix);
	KEEP_INT("batch_max", batch_max);
	if (strings_differ(next->http_host, running->http_host) ||
	    (next->http_host != NULL && next->http_port != running->http_port))
		changed("http");
	SWAP(next->http_host, running->http_host);
	next->http_port = running->http_port;
#undef KEEP_INT
#undef KEEP_STRING
}
