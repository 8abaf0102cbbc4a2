/* Writing a problem as JSON text in the shape of its kind. */
#include "core/problem.h"

#include <string.h>

problem problem_of_error(const seg_error *e, const char *request_id)
{
    return (problem){
        .kind = PROBLEM_REQUEST,
        .code = e->code,
        .title = e->title,
        .status = e->status,
        .detail = e->detail,
        .item = -1,
        .trace_id = request_id,
        .fields = e->items,
        .n_fields = e->n_items,
        .fields_truncated = e->truncated != 0,
    };
}

static void put_str(json_text *out, const char *key, const char *s)
{
    json_text_key(out, key);
    json_text_cstr(out, s, JSON_ESC_STRICT);
}

static void write_request(json_text *out, const problem *p, const char *code)
{
    json_text_key(out, "type");
    JSON_TEXT_LIT(out, "\"https://segmentd.dev/problems/");
    json_text_escaped(out, code, strlen(code), JSON_ESC_STRICT);
    JSON_TEXT_LIT(out, "\"");
    put_str(out, "title", p->title ? p->title : err_title_for(p->status));
    json_text_key(out, "status");
    json_text_int(out, p->status);
    put_str(out, "detail", p->detail && p->detail[0] ? p->detail : "no detail");
    put_str(out, "code", code);
    if (p->trace_id)
        put_str(out, "request_id", p->trace_id);
    if (p->n_fields <= 0)
        return;
    json_text_key(out, "errors");
    JSON_TEXT_LIT(out, "[");
    for (int i = 0; i < p->n_fields; i++) {
        json_text_comma(out);
        JSON_TEXT_LIT(out, "{");
        put_str(out, "pointer", p->fields[i].pointer);
        put_str(out, "detail", p->fields[i].detail);
        JSON_TEXT_LIT(out, "}");
    }
    JSON_TEXT_LIT(out, "]");
    if (p->fields_truncated) {
        json_text_key(out, "errors_truncated");
        JSON_TEXT_LIT(out, "true");
    }
}

/* An item's error or a warning: {"code","title","detail","source":{"pointer"}[,"traceId"]} */
static void write_item(json_text *out, const problem *p, const char *code)
{
    put_str(out, "code", code);
    put_str(out, "title", p->title ? p->title : err_title_for(p->status));
    put_str(out, "detail", p->detail ? p->detail : "");
    json_text_key(out, "source");
    JSON_TEXT_LIT(out, "{");
    json_text_key(out, "pointer");
    if (p->item >= 0) {
        /* "/data/<item>" then the item's own pointer, as one string */
        JSON_TEXT_LIT(out, "\"/data/");
        json_text_int(out, p->item);
        if (p->pointer)
            json_text_escaped(out, p->pointer, strlen(p->pointer), JSON_ESC_STRICT);
        JSON_TEXT_LIT(out, "\"");
    } else {
        json_text_cstr(out, p->pointer ? p->pointer : "", JSON_ESC_STRICT);
    }
    JSON_TEXT_LIT(out, "}");
    if (p->trace_id)
        put_str(out, "traceId", p->trace_id);
}

void problem_write(json_text *out, const problem *p)
{
    const char *code = p->code ? p->code : "error";
    json_text_comma(out);
    JSON_TEXT_LIT(out, "{");
    if (p->kind == PROBLEM_REQUEST)
        write_request(out, p, code);
    else
        write_item(out, p, code);
    JSON_TEXT_LIT(out, "}");
}
