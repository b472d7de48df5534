/*
 * fuzz_customer.c: libFuzzer target for customer_unpack (pipeline/
 * customer.c), the reader of the packed states journeyd finds in Redis:
 * bytes another program, a damaged AOF or an older build may have left.
 * Input: byte 0 picks the name table (bit 0: none; else a table of a few
 * names, whose tag bit 1 writes over the state's, so that numbered names
 * are reached), then the packed state, in a buffer of its exact size so
 * that ASan sees any over-read. Checks what the rest of journeyd relies
 * on without checking again: an accepted state's counts fit its arrays,
 * its names are terminated UTF-8 strings without ASCII control characters
 * (earlier builds stored C1 ones), its times lie in the years of events,
 * its sums are numbers and its score in [0, 1], its event ids hashes an
 * event could have, its readable form names each field once; it packs
 * again, and that packed form reads back to the same bytes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "churn.h"
#include "customer.h"
#include "event.h"
#include "journey.h"
#include "name_table.h"
#include "timestamp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_customer: %s:%d: " \
    "check failed: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

static struct journey_model	 model;
static struct name_table	*names;

/* The default stages, a segment, and the names a demo's table holds. */
static void
setup(void)
{
	static const char *const stages[] = { "awareness", "consideration",
	    "decision", "retention", "loyalty" };
	static const char *const table[] = { "journeyd names 1.2",
	    "awareness", "decision", "purchase", "web", "store", "25-34",
	    "touchpoints/0", "other" };

	journey_model_init(&model);
	for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
		CHECK(journey_model_add_stage(&model, stages[i]) == (int)i);
	CHECK(journey_model_add_segment(&model, "25-34") == 0);
	journey_model_finish(&model);
	CHECK((names = name_table_new()) != NULL);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		CHECK(name_table_add(names, table[i], strlen(table[i])) ==
		    (int)i);
}

static void
check_name(const char *s, size_t size, int may_be_empty)
{
	size_t	len = strnlen(s, size);

	CHECK(len < size);
	CHECK(may_be_empty || len > 0);
	CHECK(event_text_utf8(s, len));
	for (size_t i = 0; i < len; i++)
		CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

static void
check_time(int64_t ms)
{
	CHECK(ms >= 0 && ms <= TIMESTAMP_MAX_MS);
}

/* Its readable form names each field once: a Redis hash would keep one. */
static void
check_fields_unique(const struct journey_state *s)
{
	struct customer_fields	f;

	customer_encode(&model, s, &f);
	for (int i = 0; i < f.n; i++)
		for (int j = 0; j < i; j++)
			CHECK(f.namelen[i] != f.namelen[j] || memcmp(f.name[i],
			    f.name[j], f.namelen[i]) != 0);
}

static void
check_state(const struct journey_state *s)
{
	CHECK(s->stage == JOURNEY_NO_STAGE ||
	    (s->stage >= 0 && s->stage < model.nstages));
	check_name(s->gone_stage, sizeof(s->gone_stage), 1);
	check_name(s->last_channel, sizeof(s->last_channel), 1);
	check_name(s->segment, sizeof(s->segment), 1);
	check_name(s->mseg, sizeof(s->mseg), 1);
	check_name(s->home, sizeof(s->home), 1);
	CHECK(s->nsources >= 0 && s->nsources <= JOURNEY_SOURCES_MAX);
	for (int i = 0; i < s->nsources; i++)
		check_name(s->source[i].name, sizeof(s->source[i].name), 0);
	CHECK(s->nactions >= 0 && s->nactions <= JOURNEY_ACTIONS_MAX);
	for (int i = 0; i < s->nactions; i++)
		check_name(s->action[i].type, sizeof(s->action[i].type), 0);
	CHECK(s->nchannels >= 0 && s->nchannels <= JOURNEY_CHANNELS_MAX);
	for (int i = 0; i < s->nchannels; i++)
		check_name(s->channel[i].type, sizeof(s->channel[i].type), 0);
	CHECK(s->nids >= 0 && s->nids <= JOURNEY_IDS_MAX);
	for (int i = 0; i < s->nids; i++)
		CHECK(s->recent_id[i] <= JOURNEY_ID_HASH_MASK);
	check_time(s->stage_at_ms);
	check_time(s->first_seen_ms);
	check_time(s->last_seen_ms);
	check_time(s->risk_at_ms);
	CHECK(s->indexed_ms >= 0);	/* a deadline may lie past year 9999 */
	CHECK(s->risk.churned_ms == CHURN_NOT_CHURNED ||
	    (s->risk.churned_ms >= 0 &&
	    s->risk.churned_ms <= TIMESTAMP_MAX_MS));
	for (int i = 0; i < JOURNEY_STAGES_MAX; i++)
		check_time(s->entered_ms[i]);
	CHECK(isfinite(s->value_total));
	CHECK(isfinite(s->risk.sentiment_w) && isfinite(s->risk.sentiment_ws));
	CHECK(isfinite(s->risk.pain) && isfinite(s->risk.engagement) &&
	    isfinite(s->risk.engagement_peak));
	CHECK(s->risk.score >= 0 && s->risk.score <= 1 + 1e-9);
	check_fields_unique(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct journey_state	s, back;
	static struct customer_fields	f;
	static unsigned char		packed[CUSTOMER_PACKED_MAX];
	static unsigned char		again[CUSTOMER_PACKED_MAX];
	const struct name_table		*table;
	const size_t			 tag_at = CUSTOMER_VERSION_LEN + 1;
	unsigned char			*buf;
	size_t				 len, plen;
	int				 r;

	if (names == NULL)
		setup();
	if (size == 0)
		return 0;
	table = data[0] & 1 ? NULL : names;
	len = size - 1;
	if ((buf = malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(buf, data + 1, len);
	if (table != NULL && (data[0] & 2) &&
	    len >= tag_at + CUSTOMER_TAG_LEN) {
		uint32_t	tag = name_table_tag(table);

		for (int i = 0; i < CUSTOMER_TAG_LEN; i++)
			buf[tag_at + i] = (unsigned char)(tag >>
			    (8 * (CUSTOMER_TAG_LEN - 1 - i)));
	}

	r = customer_unpack(&model, table, &s, buf, len);
	CHECK(r == 0 || r == -1 || r == CUSTOMER_NAME_UNKNOWN);
	if (r == 0) {
		check_state(&s);
		customer_encode(&model, &s, &f);
		CHECK(f.n > 0 && f.n <= CUSTOMER_FIELDS_MAX);
		plen = customer_pack(&model, table, NULL, &s, packed,
		    sizeof(packed));
		CHECK(plen > CUSTOMER_VERSION_LEN);
		CHECK(customer_unpack(&model, table, &back, packed, plen) == 0);
		CHECK(customer_pack(&model, table, NULL, &back, again,
		    sizeof(again)) == plen);
		CHECK(memcmp(packed, again, plen) == 0);
	}
	free(buf);
	return 0;
}
