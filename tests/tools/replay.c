/*
 * replay.c: reads the real data sets of ../shared/data into journeyd
 * events for loadgen -R: the CSV (gzip'd or not), the mapping of each
 * data set's rows to events, and the errors that name file and line.
 *
 * The mapping is the one the integration tests replay (test_uci.py,
 * test_olist.py), so a replayed stream means what those tests check:
 *   - UCI Online Retail: one event per invoice with a customer, in the
 *     order of its first line: "purchase", or "refund" (a pain point) for
 *     a cancellation (an invoice number starting with C); the invoice
 *     total as value, the country as segment, the number as event_id.
 *     Lines without a customer (guests, stock adjustments) are left out.
 *   - Olist marketing funnel: one event per row: the lead as customer,
 *     its event_type ("mql_first_contact", "deal_won"), the acquisition
 *     channel as channel and segment, "LEAD:TYPE" as event_id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "replay.h"

#define FIELDS_MAX	32
#define LINE_MAX_LEN	65536

struct reader {
	const char	*path;
	gzFile		 gz;
	long		 line;
	char		 buf[LINE_MAX_LEN];
	char		*field[FIELDS_MAX];
	int		 nfields;
	/* invoice number -> index + 1 in the events (UCI), open addressing */
	size_t		*slot, nslots;
};

static int
fail(const struct reader *rd, const char *what)
{
	fprintf(stderr, "%s:%ld: %s\n", rd->path, rd->line, what);
	return -1;
}

/*
 * Splits the line in buf into fields in place: RFC 4180 quoting, a
 * doubled quote inside quotes is one quote. -1 on a stray quote or too
 * many fields (stricter than Python's csv, which takes a quote inside an
 * unquoted field as a character: neither data set has one).
 */
static int
split(struct reader *rd)
{
	char	*in = rd->buf, *out = rd->buf;
	int	 quoted;

	rd->nfields = 0;
	for (;;) {
		if (rd->nfields == FIELDS_MAX)
			return fail(rd, "too many fields");
		rd->field[rd->nfields++] = out;
		if ((quoted = *in == '"'))
			in++;
		for (;;) {
			if (quoted && *in == '"' && in[1] == '"') {
				*out++ = '"';
				in += 2;
			} else if (quoted && *in == '"') {
				quoted = 0;
				in++;
				if (*in != ',' && *in != '\0')
					return fail(rd, "text after a closing "
					    "quote");
			} else if (quoted && *in == '\0')
				return fail(rd, "a quote that is not closed "
				    "on its line");
			else if (!quoted && *in == '"')
				return fail(rd, "a quote inside an unquoted "
				    "field");
			else if (!quoted && (*in == ',' || *in == '\0'))
				break;
			else
				*out++ = *in++;
		}
		/* out may be at in: look before ending the field */
		if (*in == '\0') {
			*out = '\0';
			return 0;
		}
		*out++ = '\0';
		in++;
	}
}

/*
 * zlib's complaint, if it has one: a file cut short reads as one that
 * ends (gzeof), the last line cut off, and only this tells them apart.
 */
static int
gz_failed(struct reader *rd)
{
	const char	*msg;
	size_t		 plen = strlen(rd->path);
	int		 err;

	msg = gzerror(rd->gz, &err);
	if (err == Z_OK)
		return 0;
	/* zlib names the file first */
	if (strncmp(msg, rd->path, plen) == 0 && strncmp(msg + plen, ": ", 2)
	    == 0)
		msg += plen + 2;
	return fail(rd, msg);
}

/* The next line's fields: 1, 0 at the end of the file, -1 on error. */
static int
next_row(struct reader *rd)
{
	size_t	len;

	if (gzgets(rd->gz, rd->buf, sizeof(rd->buf)) == NULL) {
		rd->line++;
		if (gz_failed(rd) == -1)
			return -1;
		rd->line--;
		return 0;
	}
	rd->line++;
	len = strlen(rd->buf);
	if (len > 0 && rd->buf[len - 1] == '\n')
		rd->buf[--len] = '\0';
	else if (!gzeof(rd->gz))
		return fail(rd, "line longer than 64 KB");
	else if (gz_failed(rd) == -1)
		return -1;
	if (len > 0 && rd->buf[len - 1] == '\r')
		rd->buf[--len] = '\0';
	return split(rd) == -1 ? -1 : 1;
}

/* "YYYY-MM-DD HH:MM:SS", UTC, as epoch milliseconds; -1 if not that. */
static int64_t
parse_time(const char *s)
{
	struct tm	tm;
	char		*end;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) != 19 || (end = strptime(s, "%Y-%m-%d %H:%M:%S",
	    &tm)) == NULL || *end != '\0')
		return -1;
	return (int64_t)timegm(&tm) * 1000;
}

static int
parse_number(const char *s, double *v)
{
	char	*end;

	*v = strtod(s, &end);
	return end == s || *end != '\0' ? -1 : 0;
}

static char *
copy(const char *s, size_t n)
{
	char	*p;

	if ((p = malloc(n + 1)) == NULL) {
		perror("replay");
		exit(1);
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static struct replay_event *
add_event(struct replay *r)
{
	struct replay_event	*ev;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 4096;
		if ((ev = reallocarray(r->ev, r->cap, sizeof(*ev))) == NULL) {
			perror("replay");
			exit(1);
		}
		r->ev = ev;
	}
	ev = &r->ev[r->n++];
	memset(ev, 0, sizeof(*ev));
	return ev;
}

static size_t
hash(const char *s)
{
	size_t	h = 14695981039346656037UL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211UL;
	return h;
}

/* The invoice's event, made when first seen. */
static struct replay_event *
invoice(struct reader *rd, struct replay *r, const char *number, int *fresh)
{
	size_t	i;

	if (2 * (r->n + 1) > rd->nslots) {
		size_t	 n = rd->nslots ? 2 * rd->nslots : 8192, *s;

		if ((s = calloc(n, sizeof(*s))) == NULL) {
			perror("replay");
			exit(1);
		}
		for (size_t k = 0; k < r->n; k++) {
			for (i = hash(r->ev[k].event_id) & (n - 1); s[i];
			    i = (i + 1) & (n - 1))
				;
			s[i] = k + 1;
		}
		free(rd->slot);
		rd->slot = s;
		rd->nslots = n;
	}
	for (i = hash(number) & (rd->nslots - 1); rd->slot[i];
	    i = (i + 1) & (rd->nslots - 1))
		if (strcmp(r->ev[rd->slot[i] - 1].event_id, number) == 0) {
			*fresh = 0;
			return &r->ev[rd->slot[i] - 1];
		}
	*fresh = 1;
	rd->slot[i] = r->n + 1;
	return add_event(r);
}

/* InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,
 * CustomerID,Country */
static int
uci_row(struct reader *rd, struct replay *r)
{
	char			**f = rd->field;
	struct replay_event	 *ev;
	double			  qty, price;
	int64_t			  ts;
	int			  fresh;

	if (rd->nfields != 8)
		return fail(rd, "not 8 fields, as UCI Online Retail's lines");
	if (strcmp(f[0], "InvoiceNo") == 0 || f[6][0] == '\0')
		return 0;	/* a header; guests and stock adjustments */
	if (f[0][0] == '\0')
		return fail(rd, "no invoice number");
	if (parse_number(f[3], &qty) == -1)
		return fail(rd, "Quantity is not a number");
	if (parse_number(f[5], &price) == -1)
		return fail(rd, "UnitPrice is not a number");
	if ((ts = parse_time(f[4])) == -1)
		return fail(rd, "InvoiceDate is not YYYY-MM-DD HH:MM:SS");
	ev = invoice(rd, r, f[0], &fresh);
	if (fresh) {
		ev->event_id = copy(f[0], strlen(f[0]));
		/* "17850.0": the id is the whole part */
		ev->customer = copy(f[6], strcspn(f[6], "."));
		ev->type = f[0][0] == 'C' ? "refund" : "purchase";
		ev->segment = f[7][0] ? copy(f[7], strlen(f[7])) : NULL;
		ev->ts_ms = ts;
		ev->has_value = 1;
	}
	ev->value += qty * price;
	return 0;
}

/* lead_id,event_time,event_type,channel,landing_page_id,... (17) */
static int
olist_row(struct reader *rd, struct replay *r)
{
	char			**f = rd->field;
	struct replay_event	 *ev;
	int64_t			  ts;
	size_t			  lead, type;
	char			 *id;

	if (rd->nfields != 17)
		return fail(rd, "not 17 fields, as the Olist funnel's lines");
	if (strcmp(f[0], "lead_id") == 0)
		return 0;
	if (f[0][0] == '\0' || f[2][0] == '\0')
		return fail(rd, "no lead_id or no event_type");
	if ((ts = parse_time(f[1])) == -1)
		return fail(rd, "event_time is not YYYY-MM-DD HH:MM:SS");
	ev = add_event(r);
	lead = strlen(f[0]);
	type = strlen(f[2]);
	ev->customer = copy(f[0], lead);
	ev->type = copy(f[2], type);
	if (asprintf(&id, "%s:%s", f[0], f[2]) == -1) {
		perror("replay");
		exit(1);
	}
	ev->event_id = id;
	if (f[3][0] != '\0')
		ev->channel = ev->segment = copy(f[3], strlen(f[3]));
	ev->ts_ms = ts;
	return 0;
}

int
replay_load(struct replay *r, const char *path)
{
	struct reader	*rd;
	int		 rc = -1, more;

	memset(r, 0, sizeof(*r));
	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		perror("replay");
		return -1;
	}
	rd->path = path;
	errno = 0;
	if ((rd->gz = gzopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, errno != 0 ? strerror(errno) :
		    "cannot open");
		goto done;
	}
	while ((more = next_row(rd)) == 1) {
		if (r->format == NULL)
			r->format = rd->nfields == 8 ? "uci" :
			    rd->nfields == 17 ? "olist" : NULL;
		if (r->format == NULL) {
			fail(rd, "neither UCI Online Retail (8 fields) nor the "
			    "Olist funnel (17 fields)");
			goto done;
		}
		if ((strcmp(r->format, "uci") == 0 ? uci_row(rd, r) :
		    olist_row(rd, r)) == -1)
			goto done;
	}
	if (more == 0 && r->n == 0)
		fprintf(stderr, "%s: no events\n", path);
	else if (more == 0)
		rc = 0;
done:
	if (rd->gz != NULL)
		gzclose(rd->gz);
	free(rd->slot);
	free(rd);
	if (rc == -1)
		replay_free(r);
	return rc;
}

/*
 * An event owns its strings, but for a UCI event's type (a literal) and
 * an Olist event's channel (its segment, the same string). Any event at
 * all means the format is known.
 */
void
replay_free(struct replay *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free((char *)r->ev[i].customer);
		free((char *)r->ev[i].event_id);
		free((char *)r->ev[i].segment);
		if (strcmp(r->format, "olist") == 0)
			free((char *)r->ev[i].type);
	}
	free(r->ev);
	memset(r, 0, sizeof(*r));
}
