#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "mml/alloc.h"

mml_status mml_file_read(const char *path, size_t max_bytes, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return mml_error(MML_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    mml_status rc = MML_OK;
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) rc = mml_error(MML_ERR_IO, "%s: cannot determine the file size", path);
    else if ((size_t)size > max_bytes)
        rc = mml_error(MML_ERR_FORMAT, "%s: %ld bytes is over the %zu-byte limit for this kind of file", path, size, max_bytes);
    else if (!(*buf = mml_malloc((size_t)size + 1))) rc = MML_ERR_NOMEM;
    else if (fread(*buf, 1, (size_t)size, f) != (size_t)size) rc = mml_error(MML_ERR_IO, "%s: read error", path);
    fclose(f);
    if (rc != MML_OK) {
        mml_free(*buf);
        *buf = NULL;
        return rc;
    }
    (*buf)[size] = '\0';
    *len = (size_t)size;
    return MML_OK;
}
