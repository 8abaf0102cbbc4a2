/* Private to handlers/: what the evaluation handlers (evaluate.c, members.c,
 * device_segments.c) share. */
#ifndef SEGMENTD_HANDLERS_EVALUATE_H
#define SEGMENTD_HANDLERS_EVALUATE_H

#include <stdbool.h>

#include "core/json_text.h"
#include "eval/rule.h"
#include "http/request.h"

/* A segment's stored rule read into a rule freed with the request. NULL with rq->err. */
ev_rule *h_rule(http_request *rq, bool v1, const char *json, size_t len);
/* Answers status with the growable text o (taken over). */
void h_reply_text(http_request *rq, int status, json_text *o);

/* Answers with every member of segment as NDJSON, streamed (handlers/member_export.c): ids,
 * or whole devices. 0 (the answer is under way), or -1 with rq->err. */
int h_members_export(http_request *rq, const ev_rule *r, const char *segment, bool whole);

#endif
