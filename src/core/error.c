#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mml/error.h"

#define MML_ERROR_CAP 1024

static _Thread_local char g_msg[MML_ERROR_CAP];
static _Thread_local mml_status g_status;

const char *mml_last_error(void) { return g_msg; }
mml_status mml_last_status(void) { return g_status; }

mml_status mml_error(mml_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    g_status = st;
    return st;
}

void mml_error_prefix(const char *fmt, ...)
{
    char prefix[MML_ERROR_CAP], old[MML_ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    snprintf(g_msg, sizeof g_msg, "%.400s%.600s", prefix, old);
}

void mml_error_clear(void)
{
    g_msg[0] = '\0';
    g_status = MML_OK;
}
