/*
 * Preloaded into the servers of sanitizer runs, before libubsan.  GCC's shared UBSan
 * runtime reads its options lazily, at the first finding, from /proc/self/environ; in a
 * backend PostgreSQL has overwritten that area with the process title by then, so
 * UBSAN_OPTIONS would be lost (no stack trace, exit instead of abort).  UBSan asks this
 * hook for its defaults; getenv() reads the environment PostgreSQL moved, which is intact.
 */
#include <stdlib.h>

const char *__ubsan_default_options(void)
{
    const char *options = getenv("UBSAN_OPTIONS");
    return options ? options : "";
}
