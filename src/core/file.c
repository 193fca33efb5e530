#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

mml_status mml_file_make_parents(const char *path)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return mml_error(MML_ERR_ARG, "%.200s...: path too long", path);
    for (char *c = strchr(p + 1, '/'); c; c = strchr(c + 1, '/')) {
        *c = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return mml_error(MML_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
        *c = '/';
    }
    return MML_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

mml_status mml_file_remove_tree(const char *dir)
{
    struct stat sb;
    if (lstat(dir, &sb) != 0) return MML_OK;
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? MML_OK
                                                                   : mml_error(MML_ERR_IO, "%s: cannot remove: %s", dir, strerror(errno));
}

mml_status mml_file_fresh_dir(const char *dir, const char *const *subs, int n)
{
    mml_status rc = mml_file_make_parents(dir);
    if (rc == MML_OK) rc = mml_file_remove_tree(dir);
    if (rc == MML_OK && mkdir(dir, 0777) != 0) rc = mml_error(MML_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    for (int i = 0; rc == MML_OK && i < n; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%.4000s/%s", dir, subs[i]);
        if (mkdir(p, 0777) != 0) rc = mml_error(MML_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
    }
    return rc;
}

mml_status mml_file_commit_dir(mml_status rc, const char *tmp, const char *dir)
{
    if (rc == MML_OK && rename(tmp, dir) != 0) rc = mml_error(MML_ERR_IO, "%s: cannot rename: %s", tmp, strerror(errno));
    if (rc != MML_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", mml_last_error());
        mml_file_remove_tree(tmp);
        mml_error(rc, "%s", msg);
    }
    return rc;
}
