#!/usr/bin/python3
"""Writes the pgbench scripts of the database ceiling from segmentd's own SQL.

    pgbench_scripts.py STATEMENTS_DUMP OUTDIR -- PSQL COMMAND...

STATEMENTS_DUMP is the output of bench/statements_dump.c (the prepared statements of
src/store/statements.c with every macro expanded). Each scenario's script runs one of those
statements unchanged except for its parameters, which are replaced as follows:

  * a value segmentd sends is a pgbench variable (`:tenant`), so pgbench -M prepared binds it
    as a parameter exactly as libpq does for segmentd (untyped, the server infers the type);
  * a parameter segmentd sends as NULL becomes a typed NULL literal (`NULL::bigint`):
    pgbench cannot bind a NULL (it sends the text "NULL"). PostgreSQL folds it the way it
    does in a custom plan of segmentd's statement;
  * a server-generated id becomes an SQL expression: a time-ordered uuid v7 built from
    gen_random_uuid() and clock_timestamp() (as src/core/ids.c makes them, so the primary
    key sees the same insert pattern), or 'seg_' || 13 random digits for /v1.

String literals holding ':' (the timestamp formats) are rewritten as E'..\\x3a..', the same
constant, because pgbench would take ':MI' for a variable. Existing ids come from helper
tables (bench.aud_ids, bench.v1_ids) through \\gset, once every :refresh transactions per
client, so that the measured statement itself is the server's and not a join.
"""
import os
import re
import subprocess
import sys

UUID7 = ("encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
         "substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) "
         "FROM 1 FOR 6), 52, 1), 53, 1), 'hex')")

NULL = object()

# The lifecycle parameters segmentd binds when a body sets none of them (no dates, active,
# not renewing, 30 days): start, end, active, extend, extend_days from parameter n on.
def lifecycle_defaults(n):
    return {n: NULL, n + 1: NULL, n + 2: ("expr", "'t'"), n + 3: ("expr", "'f'"), n + 4: ("expr", "'30'")}


def refresh(table, counter, columns):
    """Picks a random seeded row into variables every :refresh transactions of a client."""
    return ("\\if :{k} <= 0\n"
            "\\set r random(1, :n_{t})\n"
            "SELECT {cols} FROM bench.{t}_ids WHERE n = :r \\gset\n"
            "\\set {k} :refresh\n"
            "\\endif\n"
            "\\set {k} :{k} - 1\n").format(k=counter, t=table, cols=columns)


# The author segmentd binds for a segment's revision (migrations/0006_history.sql): the
# token's sub and a request id (32 hex digits) from parameter n on.
def author(n):
    return {n: ("expr", "'bench'"), n + 1: ("expr", "md5(random()::text)")}


# scenario → (statement, {param number: variable | NULL | ("expr", sql)}, prelude)
SCRIPTS = {
    "get": ("aud_get", {1: "tenant", 2: "g_id"},
            refresh("aud", "k_get", "id::text AS g_id")),
    "create": ("aud_insert",
               {1: "tenant", 2: ("expr", UUID7), 3: "mt", 4: "c_name", 5: "c_owner", 6: "c_size",
                7: "c_desc", 8: "c_props", 9: NULL, 10: NULL, **lifecycle_defaults(11), **author(16)},
               refresh("aud", "k_create", "owner_id::text AS c_owner")
               + "\\set c_size random(1000, 10000000)\n"),
    "patch": ("aud_update",
              {1: "tenant", 2: "p_id", 3: "p_mask", 4: NULL, 5: "mt", 6: "p_name", 7: "p_owner",
               8: NULL, 9: NULL, 10: NULL, 11: NULL, **lifecycle_defaults(12), **author(17),
               19: ("expr", "'update'")},
              refresh("aud", "k_patch", "id::text AS p_id, owner_id::text AS p_owner")),
    # an unfiltered list: the statement segmentd runs for it (aud_page, whose plan PostgreSQL keeps)
    "list": ("aud_page", {1: "tenant", 2: NULL, 3: "l_limit"}, ""),
    "v1_create": ("v1_insert",
                  {1: "tenant", 2: ("expr", "'seg_' || :v_n"), 3: "v_name", 4: NULL,
                   5: "v_constraints", **lifecycle_defaults(6), **author(11)},
                  "\\set v_n random(1000000000000, 9999999999999)\n"),
    "v1_get": ("v1_get", {1: "tenant", 2: "vg_id"},
               refresh("v1", "k_v1get", "id AS vg_id")),
    # the device of bench/common.lua's device_put_requests, as segmentd binds it
    "device_put": ("device_put",
                   {1: "tenant", 2: ("expr", "'bench-' || :dv_n"), 3: ("expr", "'PL'"),
                    4: ("expr", "'pol'"), 5: ("expr", "'Europe/Warsaw'"), 6: ("expr", "'5.2.1'"),
                    7: ("expr", "'521'"), 8: ("expr", "'33'"), 9: ("expr", "'14'"), 10: NULL,
                    11: ("expr", "'user@example.com'"), 12: ("expr", "'phone'"),
                    13: ("expr", "'1764748800000'"), 14: ("expr", "'1764748800000'"),
                    15: ("expr", "'12'"), 16: ("expr", "'1764748800000'"), 17: NULL, 18: NULL,
                    19: ("expr", "'Pixel 8'"), 20: ("expr", "'Google'"),
                    21: ("expr", "'[\"vip\",\"beta\"]'"), 22: ("expr", "'{\"interest\":[\"sports\"]}'"),
                    23: NULL, 24: ("expr", "'f'"), 25: ("expr", "'f'")},
                   "\\set dv_n random(1, 100000)\n"),
    # device_bulk (bench/run): one request's records, read by PostgreSQL from the file that
    # devices_gen wrote and bound as the statement's parameter as segmentd binds it
    "device_bulk": ("device_bulk_upsert", {1: "dv_tenant", 2: "dv_recs"},
                    "SELECT pg_read_file(:dv_file) AS dv_recs \\gset\n"),
}


def read_dump(path):
    stmts = {}
    with open(path, encoding="utf-8") as f:
        for rec in f.read().split("\x1e"):
            if rec:
                name, nparams, sql = rec.split("\x1f")
                stmts[name] = (int(nparams), sql)
    return stmts


def param_types(stmts, psql):
    """The parameter types PostgreSQL infers for each statement, as segmentd prepares it."""
    script = "".join("PREPARE %s AS %s;\n" % (n, sql) for n, (_, sql) in stmts.items())
    script += "SELECT name, array_to_string(parameter_types, '|') FROM pg_prepared_statements;\n"
    r = subprocess.run(psql + ["-v", "ON_ERROR_STOP=1", "-Atq", "-F", "\t"], input=script,
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit("pgbench_scripts: psql failed: " + r.stderr.strip())
    out = r.stdout
    types = {}
    for line in out.splitlines():
        name, _, t = line.partition("\t")
        types[name] = t.split("|") if t else []
    return types


def escape_colons(sql):
    def lit(m):
        body = m.group(0)[1:-1]
        if ":" not in body:
            return m.group(0)
        return "E'" + body.replace("\\", "\\\\").replace(":", "\\x3a") + "'"
    return re.sub(r"(?<![A-Za-z0-9_&])'(?:[^']|'')*'", lit, sql)


def render(sql, mapping, types):
    def sub(m):
        n = int(m.group(1))
        v = mapping[n]
        if v is NULL:
            return "(NULL::" + types[n - 1] + ")"
        if isinstance(v, tuple):
            return "(" + v[1] + ")"
        return ":" + v
    return re.sub(r"\$(\d+)", sub, escape_colons(sql))


def main():
    dump, outdir = sys.argv[1], sys.argv[2]
    psql = sys.argv[sys.argv.index("--") + 1:]
    stmts = read_dump(dump)
    types = param_types(stmts, psql)
    for scenario, (stmt, mapping, prelude) in SCRIPTS.items():
        nparams, sql = stmts[stmt]
        if sorted(mapping) != list(range(1, nparams + 1)):
            sys.exit("pgbench_scripts: %s has %d parameters, the mapping names %s: update SCRIPTS"
                     % (stmt, nparams, sorted(mapping)))
        with open(os.path.join(outdir, "pg_%s.sql" % scenario), "w", encoding="utf-8") as f:
            f.write("-- %s: segmentd's %s (src/store/statements.c), generated by "
                    "bench/pgbench_scripts.py\n" % (scenario, stmt))
            f.write(prelude)
            f.write(render(sql, mapping, types[stmt]) + ";\n")


if __name__ == "__main__":
    main()
