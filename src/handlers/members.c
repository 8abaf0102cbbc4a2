/* PATCH …/segments/{id}/members on either dialect: devices added to or removed from a
 * segment by hand, whatever its rule says (explicit membership). */
#include "handlers/common.h"
#include "handlers/evaluate.h"
#include "handlers/handlers.h"
#include "store/evaluate.h"
#include "validate/members.h"

static void members_release(void *in)
{
    val_members_release(in);
}

static void apply(http_request *rq, bool v1)
{
    char buf[37];
    store_conn *c;
    store_members_applied res;
    json_t *root = h_body(rq);
    members_in *in = root ? h_keep(rq, sizeof *in, members_release) : NULL;
    if (!in || val_members(root, in, &rq->err) || !(c = h_store(rq)) ||
        h_missed(rq, store_members_apply(c, v1, rq->principal.tenant, h_segment_id(rq, v1, buf),
                                         in->add, in->ids, &res, &rq->err)))
        return;
    json_text o = {0};
    JSON_TEXT_LIT(&o, "{");
    json_text_key(&o, "operation");
    json_text_cstr(&o, in->add ? "add" : "remove", JSON_ESC_PG);
    json_text_key(&o, "applied");
    json_text_int(&o, res.applied);
    json_text_key(&o, "unknown");
    json_text_int(&o, res.unknown);
    json_text_key(&o, "unknown_ids");
    json_text_raw(&o, res.unknown_ids);
    JSON_TEXT_LIT(&o, "}");
    h_reply_text(rq, 200, &o);
}

void h_aud_members_patch(http_request *rq)
{
    apply(rq, false);
}

void h_v1_members_patch(http_request *rq)
{
    apply(rq, true);
}
