/*
 * event.h: a customer touchpoint event as journeyd understands it, parsed
 * and validated from one Kafka message. See README "Event format".
 */
#ifndef JOURNEYD_EVENT_H
#define JOURNEYD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define EVENT_CUSTOMER_MAX	256	/* bytes of a customer id */
#define EVENT_NAME_MAX		64	/* bytes of a type, channel or segment */
#define EVENT_ID_MAX		128	/* bytes of an event_id */
#define EVENT_REASON_MAX	160	/* bytes of a rejection reason */

struct event {
	char		 customer_id[EVENT_CUSTOMER_MAX + 1];
	char		 type[EVENT_NAME_MAX + 1];
	char		 channel[EVENT_NAME_MAX + 1];	/* "" when absent */
	char		 segment[EVENT_NAME_MAX + 1];	/* "" when absent */
	char		 event_id[EVENT_ID_MAX + 1];	/* "" when absent */
	int64_t		 ts_ms;
	double		 sentiment;
	double		 value;
	unsigned int	 has_sentiment:1;
	unsigned int	 has_value:1;
	/* the "properties" object as written, or NULL: it points into the
	 * payload parsed, and lives as long as that does */
	const char	*properties;
	size_t		 properties_len;
};

/*
 * Parses one message payload into ev. key is the Kafka message key (may be
 * NULL), used as the customer id when the payload has none; kafka_ts_ms is
 * the message timestamp, used when the payload has no "ts" (-1: none).
 * On failure returns -1 and writes a one-line reason.
 */
int	event_parse(const void *payload, size_t len, const void *key,
	    size_t keylen, int64_t kafka_ts_ms, struct event *ev,
	    char reason[EVENT_REASON_MAX]);

/* Whether s[0..len) is valid UTF-8. */
int	event_text_utf8(const char *s, size_t len);
/* Whether s[0..len), valid UTF-8, holds a control character (C0, DEL, C1). */
int	event_text_has_control(const char *s, size_t len);

/* 0 when s[0..len) may serve as a customer id: UTF-8, no braces or controls. */
int	event_customer_id_check(const char *s, size_t len,
	    char reason[EVENT_REASON_MAX]);

#endif
