/*
 * journeyctl.c: the operator's view of journeyd, read from Redis alone:
 * one customer's journey, the funnel, the customers at risk, the journey
 * map and the running instances. It owns nothing but its output; the keys
 * it reads are the ones README "Redis keys" documents. It reads the
 * daemon's config for the Redis address, the key prefix and the stages.
 *
 *   journeyctl [-f file] customer ID
 *   journeyctl [-f file] stages [--segment S]
 *   journeyctl [-f file] at-risk [N]
 *   journeyctl [-f file] map [--segment S]
 *   journeyctl [-f file] instances
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "config.h"
#include "journeyd.h"
#include "map_view.h"
#include "timestamp.h"

#define REDIS_TIMEOUT_S	2
#define HISTORY_SHOWN	10
#define BAR_WIDTH	30

static struct config	*conf;
static redisContext	*redis;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list	ap;

	fputs("journeyctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* what was wrong with the command line (NULL: getopt said it), then how */
static void __attribute__((noreturn, format(printf, 1, 2)))
usage(const char *fmt, ...)
{
	va_list	ap;

	if (fmt != NULL) {
		fputs("journeyctl: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "usage: journeyctl [-f file] customer ID\n"
	    "       journeyctl [-f file] stages [--segment S]\n"
	    "       journeyctl [-f file] at-risk [N]\n"
	    "       journeyctl [-f file] map [--segment S]\n"
	    "       journeyctl [-f file] instances\n");
	exit(2);
}

static const char *
redis_address(char *buf, size_t len)
{
	if (conf->redis_unix != NULL)
		return conf->redis_unix;
	snprintf(buf, len, "%s:%d", conf->redis_host, conf->redis_port);
	return buf;
}

/*
 * r, or exit with why: no answer is no answer to give. An error reply is
 * one only when errors_too (a key of another type, say).
 */
static redisReply *
checked(redisReply *r, int errors_too)
{
	char	addr[128];

	if (r == NULL && redis->err == REDIS_ERR_IO && (errno == EAGAIN ||
	    errno == EWOULDBLOCK))
		die("Redis at %s: no reply within %d s",
		    redis_address(addr, sizeof(addr)), REDIS_TIMEOUT_S);
	if (r == NULL)
		die("Redis at %s: %s", redis_address(addr, sizeof(addr)),
		    redis->errstr[0] ? redis->errstr : "no reply");
	if (r->type == REDIS_REPLY_ERROR && !errors_too)
		die("Redis: %s", r->str);
	return r;
}

static redisReply *
command(const char *fmt, ...)
{
	redisReply	*r;
	va_list		 ap;

	va_start(ap, fmt);
	r = redisvCommand(redis, fmt, ap);
	va_end(ap);
	return checked(r, 0);
}

static void
connect_redis(void)
{
	struct timeval	 tv = { REDIS_TIMEOUT_S, 0 };
	char		 addr[128];

	if (conf->redis_unix != NULL)
		redis = redisConnectUnixWithTimeout(conf->redis_unix, tv);
	else
		redis = redisConnectWithTimeout(conf->redis_host,
		    conf->redis_port, tv);
	if (redis == NULL || redis->err)
		die("cannot reach Redis at %s: %s",
		    redis_address(addr, sizeof(addr)),
		    redis ? redis->errstr : "out of memory");
	if (redisSetTimeout(redis, tv) != REDIS_OK)
		die("Redis: cannot set a timeout");
	if (conf->redis_password != NULL)
		freeReplyObject(command("AUTH %s", conf->redis_password));
	/* a connection starts in database 0: a user without SELECT works */
	if (conf->redis_db != 0)
		freeReplyObject(command("SELECT %d", conf->redis_db));
}

/* the value of field in a HGETALL reply, or NULL */
static const char *
field(const redisReply *h, const char *name)
{
	for (size_t i = 0; i + 1 < h->elements; i += 2)
		if (strcmp(h->element[i]->str, name) == 0)
			return h->element[i + 1]->str;
	return NULL;
}

static const char *
field_or(const redisReply *h, const char *name, const char *dflt)
{
	const char	*v = field(h, name);

	return v ? v : dflt;
}

/*
 * The name table, read once for all the customers shown (at-risk shows
 * many), and again when a state numbers a name added since.
 */
static struct name_table	*names;

static void
read_names(void)
{
	redisReply	*n;

	n = command("LRANGE %snames 0 -1", conf->redis_prefix);
	if (names == NULL && (names = name_table_new()) == NULL)
		die("out of memory");
	name_table_clear(names);
	for (size_t i = 0; n->type == REDIS_REPLY_ARRAY && i < n->elements;
	    i++)
		(void)name_table_add(names, n->element[i]->str,
		    n->element[i]->type == REDIS_REPLY_STRING ?
		    n->element[i]->len : 0);
	freeReplyObject(n);
}

/*
 * A customer's state and its readable fields: 1, or 0 when there is no
 * such customer, or -1 with why when its stored state is unreadable.
 */
static int
read_customer(const char *id, struct journey_state *s,
    struct customer_fields *f, const char **why)
{
	static char		 error[256];
	redisReply		*r;
	char			 key[512];
	int			 found, rc = 0;

	if (customer_key(key, sizeof(key), conf->redis_prefix, id, "") == 0) {
		*why = "too long for a customer id";
		return -1;
	}
	/* WRONGTYPE: a hash an earlier build wrote, say */
	r = checked(redisCommand(redis, "GET %s", key), 1);
	if ((found = r->type != REDIS_REPLY_NIL)) {
		if (names == NULL)
			read_names();
		/* read after the state, the table has every name it numbers */
		if ((rc = customer_cache_decode(&conf->model, names, r, s,
		    why)) == CUSTOMER_NAME_UNKNOWN) {
			read_names();
			rc = customer_cache_decode(&conf->model, names, r, s,
			    why);
		}
	}
	if (rc != 0) {
		found = -1;
		/* it may be the reply's error, freed below */
		snprintf(error, sizeof(error), "stored state unreadable (%s)",
		    *why);
		*why = error;
	}
	freeReplyObject(r);
	if (found == 1)
		customer_encode(&conf->model, s, f);
	return found;
}

/* the field's value, or dflt when it has none (or an empty one) */
static const char *
customer_field_or(const struct customer_fields *f, const char *name,
    const char *dflt)
{
	const char	*v = customer_field(f, name);

	return v != NULL && *v != '\0' ? v : dflt;
}

/* "12d" ago, from an ISO time; "" when it does not parse */
static const char *
age(const char *iso, char *buf, size_t len)
{
	int64_t	ms, now = timestamp_now_ms();

	buf[0] = '\0';
	if (iso != NULL && timestamp_parse_iso8601(iso, strlen(iso), &ms) == 0)
		timestamp_format_duration(now > ms ? now - ms : 0, buf, len);
	return buf;
}

/* "web 25, social 13": the fields of f named PREFIX..., largest first */
static void
print_counts(const struct customer_fields *f, const char *label,
    const char *prefix)
{
	struct map_view_list	l = { 0 };
	size_t			plen = strlen(prefix);

	for (int i = 0; i < f->n; i++)
		if (strncmp(f->name[i], prefix, plen) == 0 &&
		    map_view_list_add(&l, f->name[i] + plen,
		    strlen(f->name[i] + plen), atoll(f->value[i])) == -1)
			die("out of memory");
	map_view_list_finish(&l);
	printf("  %-14s", label);
	for (size_t i = 0; i < l.n; i++)
		printf("%s%s %lld", i ? ", " : "", l.item[i].name,
		    (long long)l.item[i].count);
	printf("%s\n", l.n ? "" : "-");
	map_view_list_free(&l);
}

static void
show_customer(const char *id)
{
	struct journey_state	 s;
	struct customer_fields	 f;
	redisReply		*hist;
	const char		*v, *why;
	char			 key[512], ago[32], reasons[CHURN_REASONS_MAX];
	int			 has;
	double			 sentiment;

	switch (read_customer(id, &s, &f, &why)) {
	case 0:
		die("no customer '%s'", id);
	case -1:
		die("customer '%s': %s", id, why);
	}
	printf("customer %s\n", id);
	printf("  %-14s%s since %s (%s ago)\n", "stage",
	    customer_field_or(&f, "stage", "-"),
	    customer_field_or(&f, "stage_at", "-"),
	    age(customer_field(&f, "stage_at"), ago, sizeof(ago)));
	printf("  %-14s%s\n", "first seen",
	    customer_field_or(&f, "first_seen", "-"));
	printf("  %-14s%s (%s ago), last channel %s\n", "last seen",
	    customer_field_or(&f, "last_seen", "-"),
	    age(customer_field(&f, "last_seen"), ago, sizeof(ago)),
	    customer_field_or(&f, "last_channel", "-"));
	/* 15 digits: a sum of 0.1 and 0.2 reads 0.3, as it was sent */
	printf("  %-14s%s, value %.15g, segment %s\n", "events",
	    customer_field_or(&f, "events", "0"), s.value_total,
	    customer_field_or(&f, "segment", "-"));
	sentiment = churn_sentiment(&s.risk, &has);
	printf("  %-14s", "sentiment");
	if (has)
		printf("%+.2f\n", sentiment);
	else
		printf("-\n");
	printf("  %-14s%.1f (decayed)\n", "pain points", s.risk.pain);
	journey_risk_reasons(&conf->model, &s, reasons);
	printf("  %-14s%s (score %s)%s%s\n", "risk",
	    customer_field_or(&f, "risk_level", "low"),
	    customer_field_or(&f, "risk", "0"), reasons[0] ? ": " : "",
	    reasons);
	if ((v = customer_field(&f, "churned")) != NULL)
		printf("  %-14sat %s\n", "churned", v);
	else
		printf("  %-14s%s\n", "next deadline",
		    customer_field_or(&f, "due", "none"));
	print_counts(&f, "actions", CUSTOMER_ACTION_PREFIX);
	print_counts(&f, "touchpoints", CUSTOMER_CHANNEL_PREFIX);

	if (customer_key(key, sizeof(key), conf->redis_prefix, id,
	    CUSTOMER_CHANGES_SUFFIX) == 0)
		die("'%s' is too long for a customer id", id);
	hist = command("LRANGE %s -%d -1", key, HISTORY_SHOWN);
	printf("  history (latest %zu, oldest first):\n", hist->elements);
	for (size_t i = 0; i < hist->elements; i++) {
		const char	*c[CUSTOMER_CHANGE_FIELDS];
		size_t		 n[CUSTOMER_CHANGE_FIELDS];

		if (customer_change_split(hist->element[i]->str,
		    hist->element[i]->len, c, n) == -1)
			continue;
		/* at kind from -> to event event_id  detail */
		printf("    %.*s  %-11.*s %-13.*s -> %-13.*s %.*s %.*s%s%.*s\n",
		    (int)n[3], c[3], (int)n[0], c[0],
		    n[1] ? (int)n[1] : 5, n[1] ? c[1] : "(new)",
		    (int)n[2], c[2], (int)n[4], c[4], (int)n[5], c[5],
		    n[7] ? "  " : "", (int)n[7], c[7]);
	}
	freeReplyObject(hist);
}

/*
 * The segments are the config's, as on the map page: one it names with no
 * customer yet is an empty map, and one it no longer names is none, though
 * its hash may remain.
 */
static void
check_segment(const char *segment)
{
	if (strcmp(journey_model_map_segment(&conf->model, segment),
	    segment) != 0)
		die("no segment '%s' in the config (its segments and other)",
		    segment);
}

static void
add_map(struct map_view *v, const char *segment)
{
	redisReply	*h;

	h = command("HGETALL %smap:%s", conf->redis_prefix, segment);
	for (size_t i = 0; i + 1 < h->elements; i += 2)
		if (map_view_add(v, h->element[i]->str, h->element[i]->len,
		    h->element[i + 1]->str, h->element[i + 1]->len) == -1)
			die("out of memory");
	freeReplyObject(h);
}

/*
 * Adds the map of segment, or of all (NULL): the configured segments and
 * "other" are every map journeyd writes, so no key scan is needed.
 */
static void
load_map(struct map_view *v, const char *segment)
{
	if (segment != NULL) {
		check_segment(segment);
		add_map(v, segment);
	} else {
		const char	*seg[JOURNEY_SEGMENTS_MAX + 1];
		int		 n = journey_model_map_segments(&conf->model,
				    seg);

		for (int i = 0; i < n; i++)
			add_map(v, seg[i]);
	}
	map_view_finish(v);
}

static void
bar(int64_t n, int64_t total)
{
	int	w = total > 0 && n > 0 ? (int)((double)BAR_WIDTH * (double)n /
		    (double)total) : 0;

	printf(" ");
	for (int i = 0; i < BAR_WIDTH; i++)
		putchar(i < w || (i == 0 && n > 0) ? '#' : ' ');
}

/*
 * The length of the stage name in field i of hash h (NAME followed by
 * suffix) when the config has no such stage and its customers there are
 * not 0, their count in *n; else 0.
 */
static size_t
gone_stage(const redisReply *h, size_t i, const char *suffix, int64_t *n)
{
	const redisReply	*f = h->element[i];
	char			 name[EVENT_NAME_MAX + 1];
	size_t			 slen = strlen(suffix), len;

	if (f->type != REDIS_REPLY_STRING || f->len <= slen ||
	    f->len - slen > EVENT_NAME_MAX ||
	    strcmp(f->str + f->len - slen, suffix) != 0)
		return 0;
	len = f->len - slen;
	memcpy(name, f->str, len);
	name[len] = '\0';
	/* with a colon: another counter of the map, of a stage's channel */
	if (memchr(name, ':', len) != NULL ||
	    journey_model_stage_index(&conf->model, name) != JOURNEY_NO_STAGE ||
	    h->element[i + 1]->type != REDIS_REPLY_STRING ||
	    (*n = atoll(h->element[i + 1]->str)) == 0)
		return 0;
	return len;
}

static void
stage_row(const char *name, size_t len, int64_t n, int64_t total,
    const char *note)
{
	printf("%-14.*s %9lld %6.1f%%", (int)len, name, (long long)n,
	    total ? 100.0 * (double)n / (double)total : 0.0);
	bar(n, total);
	printf("%s\n", note);
}

/*
 * The funnel, from journey:stages or a segment's STAGE:in gauges. Stages
 * the config no longer has keep their customers there until these move
 * on: they are shown after the others, and count in the total.
 */
static void
show_stages(const char *segment)
{
	const struct journey_model	*m = &conf->model;
	redisReply			*h;
	const char			*suffix = segment ? ":in" : "", *v;
	char				 name[EVENT_NAME_MAX + 8];
	int64_t				 count[JOURNEY_STAGES_MAX], total = 0, n;
	size_t				 len;

	if (segment != NULL) {
		check_segment(segment);
		h = command("HGETALL %smap:%s", conf->redis_prefix, segment);
	} else
		h = command("HGETALL %sstages", conf->redis_prefix);
	for (int i = 0; i < m->nstages; i++) {
		snprintf(name, sizeof(name), "%s%s", m->stage[i], suffix);
		count[i] = (v = field(h, name)) ? atoll(v) : 0;
		map_view_count_add(&total, count[i]);
	}
	for (size_t i = 0; i + 1 < h->elements; i += 2)
		if (gone_stage(h, i, suffix, &n) > 0)
			map_view_count_add(&total, n);
	printf("%-14s %9s %7s  customers now in each stage%s%s\n", "stage",
	    "customers", "share", segment ? ", segment " : "",
	    segment ? segment : "");
	for (int i = 0; i < m->nstages; i++)
		stage_row(m->stage[i], strlen(m->stage[i]), count[i], total,
		    "");
	for (size_t i = 0; i + 1 < h->elements; i += 2)
		if ((len = gone_stage(h, i, suffix, &n)) > 0)
			stage_row(h->element[i]->str, len, n, total,
			    "  (not in the config)");
	printf("%-14s %9lld\n", "total", (long long)total);
	freeReplyObject(h);
}

static void
show_at_risk(long n)
{
	struct journey_state	 s;
	struct customer_fields	 f;
	redisReply		*z;
	const char		*why;
	char			 reasons[CHURN_REASONS_MAX];

	z = command("ZREVRANGE %sat_risk 0 %ld WITHSCORES", conf->redis_prefix,
	    n - 1);
	printf("%-24s %-6s %5s %-13s %-24s %s\n", "customer", "level", "score",
	    "stage", "last seen", "reasons");
	for (size_t i = 0; i + 1 < z->elements; i += 2) {
		const char	*id = z->element[i]->str;

		f.n = 0;
		reasons[0] = '\0';
		switch (read_customer(id, &s, &f, &why)) {
		case 1:
			journey_risk_reasons(&conf->model, &s, reasons);
			break;
		case 0:		/* deleted by hand, its entry left */
			snprintf(reasons, sizeof(reasons), "(no such "
			    "customer)");
			break;
		case -1:	/* one row, not the whole list */
			snprintf(reasons, sizeof(reasons), "(%s)", why);
			break;
		}
		printf("%-24s %-6s %5.3f %-13s %-24s %s\n", id,
		    customer_field_or(&f, "risk_level", "?"),
		    atof(z->element[i + 1]->str),
		    customer_field_or(&f, "stage", "?"),
		    customer_field_or(&f, "last_seen", "?"), reasons);
	}
	if (z->elements == 0)
		printf("(no customer at risk)\n");
	freeReplyObject(z);
}

static void
print_top(const struct map_view_list *l, int width)
{
	struct map_view_count	top[2];
	char			buf[256];
	int			n = map_view_top(l, 2, top), len = 0, cut;

	strcpy(buf, "-");
	for (int i = 0; i < n; i++)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len,
		    "%s%s %lld", i ? ", " : "", top[i].name,
		    (long long)top[i].count);
	/* cut to the column, not inside a character of a name */
	if (strlen(buf) > (size_t)width) {
		for (cut = width; cut > 0 && (buf[cut] & 0xc0) == 0x80; cut--)
			;
		buf[cut] = '\0';
	}
	printf(" %-*s", width, buf);
}

static void
show_map(const char *segment)
{
	const struct journey_model	*m = &conf->model;
	struct map_view			 v;
	char				 conv[16], median[16], sent[16];

	map_view_init(&v, m, 0);
	load_map(&v, segment);
	printf("journey map, %s\n", segment ? segment : "all segments");
	printf("%-14s %7s %8s %7s %8s %7s %7s %9s %-30s %-26s %s\n", "stage",
	    "in", "entered", "onward", "median", "at risk", "churned",
	    "sentiment", "top actions", "top touchpoints", "top pain points");
	for (int i = 0; i < m->nstages; i++) {
		const struct map_view_stage	*st = &v.stage[i];

		snprintf(conv, sizeof(conv), st->conversion >= 0 ? "%.1f%%" :
		    "-", 100 * st->conversion);
		median[0] = '-';
		median[1] = '\0';
		if (st->median_ms >= 0) {
			median[0] = '<';
			timestamp_format_duration(st->median_ms, median + 1,
			    sizeof(median) - 1);
		}
		snprintf(sent, sizeof(sent), st->sent_n ? "%+.2f" : "-",
		    st->sentiment);
		printf("%-14s %7lld %8lld %7s %8s %7lld %7lld %9s", m->stage[i],
		    (long long)st->in, (long long)st->entries, conv, median,
		    (long long)st->at_risk, (long long)st->churned, sent);
		print_top(&st->actions, 30);
		print_top(&st->channels, 26);
		print_top(&st->pains, 30);
		printf("\n");
	}
	for (int o = 0; o < MAP_VIEW_OPPORTUNITIES; o++) {
		const struct map_view_stage	*st;

		if (v.opportunity[o] < 0)
			continue;
		st = &v.stage[v.opportunity[o]];
		printf("%s: %s", map_view_opportunity_name(
		    (enum map_view_opportunity)o), m->stage[v.opportunity[o]]);
		if (o == MAP_VIEW_DROPOFF)
			printf(" (%.1f%% move on)\n", 100 * st->conversion);
		else if (o == MAP_VIEW_SLOWEST) {
			timestamp_format_duration(st->median_ms, median,
			    sizeof(median));
			printf(" (median under %s)\n", median);
		} else
			printf(" (sentiment %+.2f)\n", st->sentiment);
	}
	map_view_free(&v);
}

static void
show_instances(void)
{
	redisReply	*ids, *h, *ttl;
	char		 key[512];

	ids = command("ZRANGE %sinstances 0 -1", conf->redis_prefix);
	printf("%-28s %-8s %-24s %10s %10s %5s  %s\n", "instance", "version",
	    "started", "events/s", "lag", "ttl", "partitions");
	for (size_t k = 0; k < ids->elements; k++) {
		snprintf(key, sizeof(key), "%sinstance:%s", conf->redis_prefix,
		    ids->element[k]->str);
		h = command("HGETALL %s", key);
		if (h->elements == 0) {	/* its heartbeat expired: gone */
			freeReplyObject(h);
			continue;
		}
		ttl = command("TTL %s", key);
		printf("%-28s %-8s %-24s %10s %10s %4llds  %s\n",
		    ids->element[k]->str, field_or(h, "version", "?"),
		    field_or(h, "started", "?"), field_or(h, "events_per_s",
		    "?"), field_or(h, "lag", "?"), ttl->integer,
		    field_or(h, "partitions", ""));
		freeReplyObject(ttl);
		freeReplyObject(h);
	}
	freeReplyObject(ids);
}

enum command {
	SHOW_CUSTOMER,
	SHOW_STAGES,
	SHOW_MAP,
	SHOW_AT_RISK,
	SHOW_INSTANCES,
};

/* "--segment S" after a command, or nothing */
static const char *
segment_arg(int argc, char *argv[])
{
	if (argc == 1)
		return NULL;
	if (strcmp(argv[1], "--segment") != 0)
		usage("%s: '%s' is not --segment", argv[0], argv[1]);
	if (argc != 3)
		usage("%s: --segment takes one segment", argv[0]);
	return argv[2];
}

/*
 * The command and its argument (a customer id, a segment, or a count in
 * n), or usage(...): before Redis is asked anything, so that a mistyped
 * command says so whether Redis is there or not.
 */
static enum command
parse_command(int argc, char *argv[], const char **arg, long *n)
{
	char	*end;

	*arg = NULL;
	if (strcmp(argv[0], "customer") == 0) {
		if (argc != 2)
			usage("customer: one customer id, please");
		*arg = argv[1];
		return SHOW_CUSTOMER;
	}
	if (strcmp(argv[0], "stages") == 0 || strcmp(argv[0], "map") == 0) {
		*arg = segment_arg(argc, argv);
		return strcmp(argv[0], "stages") == 0 ? SHOW_STAGES :
		    SHOW_MAP;
	}
	if (strcmp(argv[0], "at-risk") == 0) {
		if (argc > 2)
			usage("at-risk: one N at most");
		if (argc == 2 && ((*n = strtol(argv[1], &end, 10)) < 1 ||
		    *end != '\0'))
			usage("at-risk: N is a number of customers, from 1");
		return SHOW_AT_RISK;
	}
	if (strcmp(argv[0], "instances") == 0) {
		if (argc != 1)
			usage("instances: no arguments");
		return SHOW_INSTANCES;
	}
	usage("no command '%s'", argv[0]);
}

int
main(int argc, char *argv[])
{
	const char	*conffile = NULL, *arg;
	char		 err[CONFIG_ERR_MAX];
	long		 n = 20;
	int		 ch;
	enum command	 cmd;

	while ((ch = getopt(argc, argv, "+f:")) != -1) {
		if (ch != 'f')
			usage(NULL);
		conffile = optarg;
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage("a command, please");
	cmd = parse_command(argc, argv, &arg, &n);
	/* without -f: the installed config if there is one, else defaults */
	if (conffile == NULL)	/* one there but unreadable: say so */
		conffile = access(JOURNEYD_CONF, F_OK) == 0 ? JOURNEYD_CONF :
		    "/dev/null";
	if (config_load(conffile, &conf, err) == -1)
		die("%s", err);
	connect_redis();
	switch (cmd) {
	case SHOW_CUSTOMER:
		show_customer(arg);
		break;
	case SHOW_STAGES:
		show_stages(arg);
		break;
	case SHOW_MAP:
		show_map(arg);
		break;
	case SHOW_AT_RISK:
		show_at_risk(n);
		break;
	case SHOW_INSTANCES:
		show_instances();
		break;
	}
	/* a full disk or a closed pipe: the output is not all there */
	if (fflush(stdout) == EOF || ferror(stdout))
		die("cannot write the output: %s", strerror(errno));
	name_table_free(names);
	redisFree(redis);
	config_free(conf);
	return 0;
}
