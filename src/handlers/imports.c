/* GET /v1/devices/imports and /v1/devices/imports/{id}: the imports of a tenant as the store
 * keeps them (receiving them is handlers/import_stream.c's and import_receiver.c's). */
#include "core/ids.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/imports.h"
#include "validate/list_query.h"

bool h_check_import_id(const char *value, const char **why)
{
    if (ids_is_import_id(value))
        return true;
    *why = "expected \"imp_\" and 13 letters or digits";
    return false;
}

void h_import_get(http_request *rq)
{
    store_doc doc;
    store_conn *c = h_store(rq);
    if (!c || h_missed_as(rq, store_import_get(c, rq->principal.tenant, rq->param, &doc, &rq->err), "import"))
        return;
    h_reply_doc(rq, 200, &doc);
}

void h_import_list(http_request *rq)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    char before[24];
    int limit;
    store_page page;
    store_conn *c;
    if (h_only_query(rq, allowed) || val_list_paging(h_query, rq, 'i', &limit, before, &rq->err) ||
        !(c = h_store(rq)) ||
        store_import_list(c, rq->principal.tenant, before[0] ? before : NULL, limit, &page, &rq->err))
        return;
    h_reply_page(rq, &page, 'i');
}
