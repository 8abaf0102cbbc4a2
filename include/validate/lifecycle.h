/* The lifecycle fields of both dialects' bodies (issue #20): start and end dates, active,
 * extend and extend_days, and the end-date operation's body. */
#ifndef SEGMENTD_VALIDATE_LIFECYCLE_H
#define SEGMENTD_VALIDATE_LIFECYCLE_H

#include <jansson.h>
#include <stdbool.h>

#include "core/error.h"
#include "core/model.h"
#include "validate/validate.h"

/* true when key is a lifecycle member of a body of the dialect (v1: startDate …; else
 * start_date …), "status" included (read-only: accepted and ignored). */
bool val_lifecycle_key(const char *key, bool v1);

/* The names a dialect's body accepts, for an "unknown field" message. */
const char *val_lifecycle_names(bool v1);

/* Reads the lifecycle members of root (a body object) into out, which starts from the
 * defaults; problems go to p's error at /<member>. complete: absent members are the
 * defaults (create, a merged whole), so the rules are checked on the whole; otherwise (a
 * partial update) only between members present, and the database checks the rest against
 * the stored values. */
void val_lifecycle(val_path *p, json_t *root, bool v1, bool complete, lifecycle_in *out);

/* The end-date operation's body: {"end_date": date | null, "extend": bool} (v1: endDate),
 * end date required, nothing else. Fills out (LC_SET_END, and LC_SET_EXTEND when given).
 * 0, or -1 with every problem in err (422). */
int val_end_date_body(json_t *root, bool v1, lifecycle_in *out, seg_error *err) MUSTCHECK;

#endif
