/* Internal: reading a whole file, with its size checked against a limit
 * before anything is allocated. */
#ifndef MML_CORE_FILE_H
#define MML_CORE_FILE_H

#include <stddef.h>

#include "mml/error.h"

/* *buf (mml_free) holds the bytes plus a terminating NUL. Errors name the path. */
mml_status mml_file_read(const char *path, size_t max_bytes, unsigned char **buf, size_t *len);

#endif
