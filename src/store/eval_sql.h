/* Private to store/: a rule (eval/rule.h) compiled into one parameterised SQL predicate over
 * the devices table (alias d), and the statements of evaluation built around it. Column
 * names come from the field table below, operators from the code; every value goes in as a
 * parameter, never as text of the statement. */
#ifndef SEGMENTD_STORE_EVAL_SQL_H
#define SEGMENTD_STORE_EVAL_SQL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "eval/rule.h"
#include "validate/formats.h"

/* The device columns in the order of the field table (validate/formats.c), tags as a JSON
 * array, then the attributes: what eval/match.h's ev_device_read takes. */
#define EVAL_DEVICE_COLUMNS                                                                  \
    "d.country, d.language, d.timezone, d.app_version, d.app_version_code, d.os_api, "        \
    "d.os_version, d.custom_user_id, d.email, d.type, d.first_session, d.last_session, "      \
    "d.session_count, d.created_at, d.id, d.push_token, d.un_registered_at, d.device_model, " \
    "d.device_manufacturer, to_json(d.tags), d.attributes"

/* The column of field i of the table (i < VAL_FIELD_COUNT). */
const char *eval_sql_column(size_t i);

/* A statement being built: its text and its parameters (texts, borrowed from the rule or
 * owned by the statement). */
typedef struct eval_sql {
    char *text;
    size_t len, cap;
    const char **params;
    int n, nparams_cap;
    bool failed;       /* out of memory, or over the parameter limit */
} eval_sql;

/* Appends a parameter and returns its number ($n), or 0 when memory ran out. */
int eval_sql_param(eval_sql *q, const char *value);
/* Appends text. */
void eval_sql_put(eval_sql *q, const char *s);
/* Appends the predicate of r over alias d, in parentheses ("(false)" for EV_RULE_NONE),
 * taking its values as parameters after those already there. */
void eval_sql_predicate(eval_sql *q, const ev_rule *r);
/* Appends ", (count of segment $seg_param's explicit members …)" that corrects a count of the
 * predicate pred (its text): with added false the removed devices pred matches, with added
 * true the added ones it does not. Members are (rule matches ∪ added) − removed. */
void eval_sql_put_adjustment(eval_sql *q, int seg_param, const char *pred, bool added);
/* Frees the text and the parameter list. */
void eval_sql_free(eval_sql *q);

#endif
