#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/idx.h"

#define IDX_MAX_BYTES ((uint64_t)4 << 30)
#define MAX_FILE ((size_t)1 << 31)

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static int elem_size(int code)
{
    switch (code) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

/* Validates the header in buf[0..len) (at least 4 bytes); returns the total
 * size the file must have, or 0 with an error. */
static uint64_t expected_size(const unsigned char *buf, size_t len, const char *what, int *ndim_out,
                              int64_t *shape)
{
    if (len < 4 || buf[0] || buf[1]) {
        mml_error(MML_ERR_FORMAT, "%s: not an IDX file (bad magic)", what);
        return 0;
    }
    int code = buf[2], ndim = buf[3], es = elem_size(code);
    if (!es) {
        mml_error(MML_ERR_FORMAT, "%s: unknown IDX data type 0x%02x", what, code);
        return 0;
    }
    if (ndim < 1 || ndim > MML_MAX_DIMS) {
        mml_error(MML_ERR_FORMAT, "%s: IDX rank %d is not in [1, %d]", what, ndim, MML_MAX_DIMS);
        return 0;
    }
    if (len < 4 + 4 * (size_t)ndim) {
        mml_error(MML_ERR_FORMAT, "%s: truncated IDX header", what);
        return 0;
    }
    uint64_t total = (uint64_t)es;
    for (int i = 0; i < ndim; i++) {
        shape[i] = be32(buf + 4 + 4 * i);
        total *= (uint64_t)shape[i];
        if (total > IDX_MAX_BYTES) {
            mml_error(MML_ERR_FORMAT, "%s: IDX dimensions declare more than 4 GiB of data", what);
            return 0;
        }
    }
    *ndim_out = ndim;
    return 4 + 4 * (uint64_t)ndim + total;
}

/* Inflates at most cap + 1 bytes (so an oversized stream is detected). The
 * buffer grows with the data actually produced: a small stream declaring
 * gigabytes costs only what it really inflates to. */
static unsigned char *inflate_capped(const unsigned char *src, size_t len, uint64_t cap, size_t *out_len,
                                     const char *what)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        mml_error(MML_ERR_NOMEM, "%s: cannot start gzip decoding", what);
        return NULL;
    }
    size_t limit = (size_t)cap + 1, size = limit < ((size_t)1 << 20) ? limit : ((size_t)1 << 20);
    unsigned char *dst = mml_malloc(size);
    int rc = Z_OK;
    z.next_in = (unsigned char *)src;
    z.avail_in = (uInt)len;
    while (dst) {
        z.next_out = dst + z.total_out;
        z.avail_out = (uInt)(size - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK || z.total_out < size || size == limit) break;
        size_t grown = size * 2 < limit ? size * 2 : limit;
        unsigned char *nd = mml_realloc(dst, grown);
        if (!nd) {
            mml_free(dst);
            dst = NULL;
            break;
        }
        dst = nd;
        size = grown;
    }
    *out_len = (size_t)z.total_out;
    inflateEnd(&z);
    if (!dst) return NULL;
    bool full = z.total_out == limit; /* stopped at the cap */
    if (rc != Z_STREAM_END && !full) {
        mml_free(dst);
        mml_error(MML_ERR_FORMAT, "%s: corrupt or truncated gzip data", what);
        return NULL;
    }
    return dst;
}

static mml_tensor *to_tensor(const unsigned char *buf, int ndim, const int64_t *shape, const char *what)
{
    int code = buf[2], es = elem_size(code);
    mml_dtype dt = code == 0x08 ? MML_U8 : code == 0x09 ? MML_I8 : code <= 0x0C ? MML_I32 : MML_F32;
    mml_tensor *t = mml_tensor_create(dt, ndim, shape, false);
    if (!t) {
        mml_error_prefix("%s: ", what);
        return NULL;
    }
    const unsigned char *p = buf + 4 + 4 * ndim;
    for (int64_t i = 0; i < t->numel; i++, p += es) {
        switch (code) {
        case 0x08: case 0x09: ((uint8_t *)t->data)[i] = p[0]; break;
        case 0x0B: mml_i32(t)[i] = (int16_t)(p[0] << 8 | p[1]); break;
        case 0x0C: mml_i32(t)[i] = (int32_t)be32(p); break;
        case 0x0D: {
            uint32_t u = be32(p);
            memcpy(&mml_f32(t)[i], &u, 4);
            break;
        }
        default: {
            uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
            double d;
            memcpy(&d, &u, 8);
            mml_f32(t)[i] = (float)d;
        }
        }
    }
    return t;
}

mml_tensor *mml_idx_parse(const void *bytes, size_t len, const char *what)
{
    const unsigned char *b = bytes;
    int ndim = 0;
    int64_t shape[MML_MAX_DIMS];
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
        /* Inflate the header first to learn the size, then all of it with that cap. */
        size_t hl = 0;
        unsigned char *head = inflate_capped(b, len, 4 + 4 * MML_MAX_DIMS, &hl, what);
        if (!head) return NULL;
        uint64_t want = expected_size(head, hl, what, &ndim, shape);
        mml_free(head);
        if (!want) return NULL;
        size_t got = 0;
        unsigned char *all = inflate_capped(b, len, want, &got, what);
        if (!all) return NULL;
        mml_tensor *t = NULL;
        if (got != want)
            mml_error(MML_ERR_FORMAT, "%s: IDX data holds %zu bytes, its header declares %llu", what, got,
                      (unsigned long long)want);
        else t = to_tensor(all, ndim, shape, what);
        mml_free(all);
        return t;
    }
    uint64_t want = expected_size(b, len, what, &ndim, shape);
    if (!want) return NULL;
    if (want != len) {
        mml_error(MML_ERR_FORMAT, "%s: IDX file has %zu bytes, its header declares %llu", what, len,
                  (unsigned long long)want);
        return NULL;
    }
    return to_tensor(b, ndim, shape, what);
}

mml_tensor *mml_idx_load(const char *path)
{
    unsigned char *buf;
    size_t len;
    if (mml_file_read(path, MAX_FILE, &buf, &len) != MML_OK) return NULL;
    mml_tensor *t = mml_idx_parse(buf, len, path);
    mml_free(buf);
    return t;
}
