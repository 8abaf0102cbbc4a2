/* Prints segmentd's prepared statements exactly as the server prepares them (the macros of
 * src/store/statements.c expanded by the compiler): name 0x1f nparams 0x1f sql 0x1e.
 * bench/run compiles this against the source tree, so the pgbench scripts follow the
 * server's SQL without a copy to keep in step. */
#include <stdio.h>

#include "store/statements.h"

int main(void)
{
    for (int i = 0; i < STMT__COUNT; i++)
        if (store_statements[i].name) /* the utility statements are not prepared */
            printf("%s\x1f%d\x1f%s\x1e", store_statements[i].name, store_statements[i].nparams,
               store_statements[i].sql);
    return 0;
}
