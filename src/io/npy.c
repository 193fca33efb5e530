/* NumPy .npy files and .npz (zip) archives of them. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/npy.h"

#define MAX_HEADER 65536 /* numpy itself refuses headers over 10000 bytes by default */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* ---- .npy header: a Python dict literal, parsed strictly ---- */

typedef struct cursor {
    const char *p, *end, *what;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static bool eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* 'text' or "text" (no escapes: numpy never writes them in these fields). */
static bool string_lit(cursor *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return false;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return false;
        out[n++] = *c->p++;
    }
    out[n] = '\0';
    return c->p++ < c->end;
}

static bool word(cursor *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n)) return false;
    c->p += n;
    return true;
}

static mml_status header_error(const cursor *c, const char *head, const char *msg)
{
    return mml_error(MML_ERR_FORMAT, "%s: .npy header: %s (at byte %d of the dictionary)", c->what, msg,
                     (int)(c->p - head));
}

/* (d0, d1, ...) with an optional trailing comma; () is a scalar. */
static mml_status shape_tuple(cursor *c, const char *head, mml_npy_info *info)
{
    if (!eat(c, '(')) return header_error(c, head, "'shape' must be a tuple of integers");
    info->ndim = 0;
    while (!eat(c, ')')) {
        skip_ws(c);
        if (info->ndim == MML_MAX_DIMS) return header_error(c, head, "more than 6 dimensions");
        int64_t v = 0;
        const char *start = c->p;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > (INT64_MAX - 9) / 10) return header_error(c, head, "a dimension overflows");
            v = v * 10 + (*c->p++ - '0');
        }
        if (c->p == start) return header_error(c, head, "'shape' must be a tuple of non-negative integers");
        if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 longs */
        info->shape[info->ndim++] = v;
        if (!eat(c, ',')) {
            if (!eat(c, ')')) return header_error(c, head, "expected ',' or ')' in 'shape'");
            break;
        }
    }
    return MML_OK;
}

static mml_status parse_dict(const char *head, size_t n, const char *what, mml_npy_info *info)
{
    cursor c = { head, head + n, what };
    bool have[3] = { false, false, false };
    if (!eat(&c, '{')) return header_error(&c, head, "expected a dictionary '{'");
    while (!eat(&c, '}')) {
        char key[32];
        if (!string_lit(&c, key, sizeof key) || !eat(&c, ':')) return header_error(&c, head, "expected 'key': value");
        int k = !strcmp(key, "descr") ? 0 : !strcmp(key, "fortran_order") ? 1 : !strcmp(key, "shape") ? 2 : -1;
        if (k < 0) return header_error(&c, head, "unknown key (expected 'descr', 'fortran_order', 'shape')");
        if (have[k]) return header_error(&c, head, "a key appears twice");
        have[k] = true;
        mml_status rc = MML_OK;
        if (k == 0) {
            skip_ws(&c);
            if (c.p < c.end && (*c.p == '[' || *c.p == '('))
                return mml_error(MML_ERR_UNSUPPORTED, "%s: structured arrays (a list 'descr') are not supported", what);
            if (!string_lit(&c, info->descr, sizeof info->descr)) return header_error(&c, head, "'descr' must be a short string");
        } else if (k == 1) {
            if (word(&c, "True")) info->fortran_order = true;
            else if (word(&c, "False")) info->fortran_order = false;
            else return header_error(&c, head, "'fortran_order' must be True or False");
        } else {
            rc = shape_tuple(&c, head, info);
        }
        if (rc != MML_OK) return rc;
        if (!eat(&c, ',')) {
            if (!eat(&c, '}')) return header_error(&c, head, "expected ',' or '}'");
            break;
        }
    }
    skip_ws(&c);
    if (c.p != c.end) return header_error(&c, head, "text after the dictionary");
    if (!have[0] || !have[1] || !have[2]) return header_error(&c, head, "needs 'descr', 'fortran_order' and 'shape'");
    return MML_OK;
}

/* ---- dtypes ---- */

typedef enum kind { K_FLOAT, K_INT, K_UINT, K_BOOL } kind;

typedef struct npy_type {
    kind k;
    int size;
} npy_type;

static mml_status parse_descr(const char *d, const char *what, npy_type *t)
{
    char order = d[0];
    if (order == '>') return mml_error(MML_ERR_UNSUPPORTED, "%s: big-endian dtype '%s' is not supported (save with astype('<%s'))", what, d, d + 1);
    int size = atoi(d + 2);
    bool known = strlen(d) == 3 && d[2] >= '1' && d[2] <= '8';
    if (known && d[1] == 'f' && (size == 2 || size == 4 || size == 8)) t->k = K_FLOAT;
    else if (known && d[1] == 'i' && (size == 1 || size == 2 || size == 4 || size == 8)) t->k = K_INT;
    else if (known && d[1] == 'u' && (size == 1 || size == 2 || size == 4)) t->k = K_UINT;
    else if (known && d[1] == 'b' && size == 1) t->k = K_BOOL;
    else return mml_error(MML_ERR_UNSUPPORTED, "%s: dtype '%s' is not supported (float, int, uint up to 4 bytes, bool)", what, d);
    if (size > 1 ? order != '<' && order != '=' : order != '|' && order != '<' && order != '=')
        return mml_error(MML_ERR_UNSUPPORTED, "%s: dtype '%s': byte order '%c' is not supported", what, d, order);
    t->size = size;
    return MML_OK;
}

mml_status mml_npy_header(const void *bytes, size_t len, const char *what, mml_npy_info *info)
{
    const uint8_t *b = bytes;
    memset(info, 0, sizeof *info);
    if (len < 10 || memcmp(b, "\x93NUMPY", 6)) return mml_error(MML_ERR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", what);
    if (b[6] < 1 || b[6] > 3) return mml_error(MML_ERR_UNSUPPORTED, "%s: .npy format version %d.%d is not supported (1.0 to 3.0)", what, b[6], b[7]);
    info->version = b[6];
    size_t start = info->version == 1 ? 10 : 12;
    if (len < start) return mml_error(MML_ERR_FORMAT, "%s: truncated .npy header", what);
    size_t hl = info->version == 1 ? rd16(b + 8) : rd32(b + 8);
    if (hl > MAX_HEADER) return mml_error(MML_ERR_FORMAT, "%s: .npy header length %zu is over %d bytes", what, hl, MAX_HEADER);
    if (start + hl > len) return mml_error(MML_ERR_FORMAT, "%s: truncated .npy header (%zu bytes declared, %zu present)", what, hl, len - start);
    mml_status rc = parse_dict((const char *)b + start, hl, what, info);
    if (rc != MML_OK) return rc;
    npy_type t;
    if ((rc = parse_descr(info->descr, what, &t)) != MML_OK) return rc;
    int64_t n = mml_shape_numel(info->ndim, info->shape);
    if (n < 0 || (uint64_t)n > MML_NPY_MAX_BYTES / (uint64_t)t.size)
        return mml_error(MML_ERR_FORMAT, "%s: shape declares more than %zu bytes of data", what, MML_NPY_MAX_BYTES);
    info->data_offset = start + hl;
    info->data_bytes = (size_t)n * (size_t)t.size;
    if (len - info->data_offset != info->data_bytes)
        return mml_error(MML_ERR_FORMAT, "%s: the header's shape needs %zu bytes of data, the file holds %zu", what,
                         info->data_bytes, len - info->data_offset);
    return MML_OK;
}

/* Element i of the raw little-endian data as double / int64. */
static double as_double(const uint8_t *p, npy_type t)
{
    switch (t.k) {
    case K_FLOAT:
        if (t.size == 2) { /* IEEE half */
            uint16_t h = rd16(p);
            int e = (h >> 10) & 31, m = h & 1023;
            double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m | 1024, e - 25);
            return h & 0x8000 ? -v : v;
        }
        if (t.size == 4) {
            uint32_t u = rd32(p);
            float f;
            memcpy(&f, &u, 4);
            return f;
        } else {
            uint64_t u = rd64(p);
            double d;
            memcpy(&d, &u, 8);
            return d;
        }
    case K_INT:
        return t.size == 1 ? (int8_t)p[0] : t.size == 2 ? (int16_t)rd16(p) : t.size == 4 ? (int32_t)rd32(p) : (double)(int64_t)rd64(p);
    case K_UINT: return t.size == 1 ? p[0] : t.size == 2 ? rd16(p) : rd32(p);
    case K_BOOL: return p[0] != 0;
    }
    return 0.0;
}

static int64_t as_int(const uint8_t *p, npy_type t)
{
    if (t.k == K_INT && t.size == 8) return (int64_t)rd64(p);
    return (int64_t)as_double(p, t); /* exact for every other integer type */
}

static mml_dtype native(npy_type t)
{
    if (t.k == K_FLOAT) return MML_F32;
    if (t.size == 1 && t.k != K_INT) return MML_U8;
    return (t.size == 8 || (t.k == K_UINT && t.size == 4)) ? MML_I64 : MML_I32;
}

/* Flat C-order index i -> offset in Fortran order. */
static int64_t fortran_offset(int64_t i, const mml_npy_info *info)
{
    int64_t off = 0, stride = 1, idx[MML_MAX_DIMS];
    for (int d = info->ndim - 1; d >= 0; d--) {
        idx[d] = info->shape[d] ? i % info->shape[d] : 0;
        i = info->shape[d] ? i / info->shape[d] : 0;
    }
    for (int d = 0; d < info->ndim; d++) {
        off += idx[d] * stride;
        stride *= info->shape[d];
    }
    return off;
}

static mml_tensor *convert(const uint8_t *data, const mml_npy_info *info, int as, const char *what)
{
    npy_type t;
    if (parse_descr(info->descr, what, &t) != MML_OK) return NULL;
    mml_dtype dt = as == MML_NPY_NATIVE ? native(t) : (mml_dtype)as;
    if (dt != MML_F32 && dt != MML_I32 && dt != MML_I64 && dt != MML_U8) {
        mml_error(MML_ERR_ARG, "%s: cannot load as %s (F32, I32, I64 or U8)", what, as >= 0 && as < MML_DTYPE_COUNT ? mml_dtype_name((mml_dtype)as) : "?");
        return NULL;
    }
    if ((dt != MML_F32 && t.k == K_FLOAT) || (dt == MML_U8 && (t.size != 1 || t.k == K_INT))) {
        mml_error(MML_ERR_ARG, "%s: a '%s' array cannot be loaded as %s", what, info->descr, mml_dtype_name(dt));
        return NULL;
    }
    mml_tensor *out = mml_tensor_create(dt, info->ndim, info->shape, false);
    if (!out) return NULL;
    for (int64_t i = 0; i < out->numel; i++) {
        const uint8_t *p = data + (info->fortran_order ? fortran_offset(i, info) : i) * t.size;
        if (dt == MML_F32) mml_f32(out)[i] = (float)as_double(p, t);
        else if (dt == MML_U8) ((uint8_t *)out->data)[i] = p[0] != 0 && t.k == K_BOOL ? 1 : p[0];
        else if (dt == MML_I64) mml_i64(out)[i] = as_int(p, t);
        else {
            int64_t v = as_int(p, t);
            if (v < INT32_MIN || v > INT32_MAX) {
                mml_error(MML_ERR_ARG, "%s: value %lld at index %lld does not fit I32 (load as I64)", what, (long long)v, (long long)i);
                mml_tensor_free(out);
                return NULL;
            }
            mml_i32(out)[i] = (int32_t)v;
        }
    }
    return out;
}

mml_tensor *mml_npy_parse(const void *bytes, size_t len, int as, const char *what, mml_npy_info *info)
{
    mml_npy_info local;
    mml_npy_info *h = info ? info : &local;
    if (mml_npy_header(bytes, len, what, h) != MML_OK) return NULL;
    return convert((const uint8_t *)bytes + h->data_offset, h, as, what);
}

mml_tensor *mml_npy_load(const char *path, int as, mml_npy_info *info)
{
    unsigned char *buf;
    size_t len;
    if (mml_file_read(path, MML_NPY_MAX_BYTES + MAX_HEADER + 16, &buf, &len) != MML_OK) return NULL;
    mml_tensor *t = mml_npy_parse(buf, len, as, path, info);
    mml_free(buf);
    return t;
}

bool mml_npy_sniff(const void *bytes, size_t len) { return len >= 6 && !memcmp(bytes, "\x93NUMPY", 6); }
bool mml_npz_sniff(const void *bytes, size_t len) { return len >= 4 && (!memcmp(bytes, "PK\x03\x04", 4) || !memcmp(bytes, "PK\x05\x06", 4)); }

/* ---- .npz: zip through its central directory ---- */

typedef struct member {
    char *name;
    uint16_t method;
    uint32_t crc;
    uint64_t csize, usize, data; /* data: offset of the compressed bytes */
} member;

struct mml_npz {
    char *what;
    uint8_t *bytes;
    size_t len;
    member *m;
    int n, cap; /* members read; entries allocated (names freed up to cap) */
};

void mml_npz_free(mml_npz *z)
{
    if (!z) return;
    for (int i = 0; i < z->cap; i++) mml_free(z->m[i].name);
    mml_free(z->m);
    mml_free(z->bytes);
    mml_free(z->what);
    mml_free(z);
}

int mml_npz_count(const mml_npz *z) { return z->n; }
const char *mml_npz_name(const mml_npz *z, int i) { return i >= 0 && i < z->n ? z->m[i].name : NULL; }

/* Zip64 extra field (id 1): the 64-bit values of the fields saturated at 0xFFFFFFFF, in order. */
static mml_status zip64_extra(const uint8_t *x, size_t n, member *m, uint64_t *local, bool need[3], const char *what)
{
    while (n >= 4) {
        uint16_t id = rd16(x), sz = rd16(x + 2);
        if ((size_t)sz + 4 > n) break;
        if (id == 1) {
            uint64_t *dst[3] = { &m->usize, &m->csize, local };
            size_t k = 4;
            for (int i = 0; i < 3; i++)
                if (need[i]) {
                    if (k + 8 > (size_t)sz + 4) return mml_error(MML_ERR_FORMAT, "%s: %s: short zip64 extra field", what, m->name);
                    *dst[i] = rd64(x + k);
                    need[i] = false;
                    k += 8;
                }
        }
        x += 4 + sz;
        n -= 4 + (size_t)sz;
    }
    if (need[0] || need[1] || need[2]) return mml_error(MML_ERR_FORMAT, "%s: %s: sizes saturated without a zip64 field", what, m->name);
    return MML_OK;
}

static mml_status read_directory(mml_npz *z)
{
    const uint8_t *b = z->bytes;
    size_t len = z->len, eocd = SIZE_MAX;
    for (size_t back = 22; back <= len && back <= 22 + 65535; back++)
        if (!memcmp(b + len - back, "PK\x05\x06", 4)) {
            eocd = len - back;
            break;
        }
    if (eocd == SIZE_MAX) return mml_error(MML_ERR_FORMAT, "%s: not a zip archive (no end of central directory)", z->what);
    const uint8_t *e = b + eocd;
    uint16_t count = rd16(e + 10);
    uint32_t cd_size = rd32(e + 12), cd_off = rd32(e + 16);
    if (rd16(e + 4) || rd16(e + 6) || rd16(e + 8) != count)
        return mml_error(MML_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", z->what);
    if (count == 0xFFFF || cd_off == 0xFFFFFFFF || cd_size == 0xFFFFFFFF)
        return mml_error(MML_ERR_UNSUPPORTED, "%s: zip64 central directories (over 65535 members or 4 GiB) are not supported", z->what);
    if ((uint64_t)cd_off + cd_size > eocd)
        return mml_error(MML_ERR_FORMAT, "%s: central directory (%u bytes at %u) lies outside the file", z->what, cd_size, cd_off);
    z->m = mml_calloc(count ? count : 1, sizeof *z->m);
    if (!z->m) return MML_ERR_NOMEM;
    z->cap = count;
    size_t p = cd_off, end = (size_t)cd_off + cd_size;
    for (; z->n < count; z->n++) {
        if (p + 46 > end || memcmp(b + p, "PK\x01\x02", 4))
            return mml_error(MML_ERR_FORMAT, "%s: central directory entry %d is damaged", z->what, z->n);
        const uint8_t *c = b + p;
        size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
        if (p + 46 + nlen + xlen + clen > end) return mml_error(MML_ERR_FORMAT, "%s: central directory entry %d runs past it", z->what, z->n);
        member *m = &z->m[z->n];
        if (!(m->name = mml_malloc(nlen + 1))) return MML_ERR_NOMEM;
        memcpy(m->name, c + 46, nlen);
        m->name[nlen] = '\0';
        if (strlen(m->name) != nlen) return mml_error(MML_ERR_FORMAT, "%s: member %d has a NUL in its name", z->what, z->n);
        uint16_t flags = rd16(c + 8);
        m->method = rd16(c + 10);
        m->crc = rd32(c + 16);
        m->csize = rd32(c + 20);
        m->usize = rd32(c + 24);
        uint64_t local = rd32(c + 42);
        bool need[3] = { m->usize == 0xFFFFFFFF, m->csize == 0xFFFFFFFF, local == 0xFFFFFFFF };
        mml_status rc = zip64_extra(c + 46 + nlen, xlen, m, &local, need, z->what);
        if (rc != MML_OK) return rc;
        if (flags & 1) return mml_error(MML_ERR_UNSUPPORTED, "%s: %s: encrypted members are not supported", z->what, m->name);
        if (local + 30 > len || memcmp(b + local, "PK\x03\x04", 4))
            return mml_error(MML_ERR_FORMAT, "%s: %s: no local header at offset %llu", z->what, m->name, (unsigned long long)local);
        m->data = local + 30 + rd16(b + local + 26) + rd16(b + local + 28);
        if (m->data > len || m->csize > len - m->data)
            return mml_error(MML_ERR_FORMAT, "%s: %s: %llu compressed bytes run past the end of the archive", z->what, m->name,
                             (unsigned long long)m->csize);
        p += 46 + nlen + xlen + clen;
    }
    return MML_OK;
}

mml_status mml_npz_parse(const void *bytes, size_t len, const char *what, mml_npz **out)
{
    *out = NULL;
    mml_npz *z = mml_calloc(1, sizeof *z);
    if (!z || !(z->what = mml_strdup(what)) || !(z->bytes = mml_malloc(len ? len : 1))) {
        mml_npz_free(z);
        return MML_ERR_NOMEM;
    }
    memcpy(z->bytes, bytes, len);
    z->len = len;
    mml_status rc = read_directory(z);
    if (rc != MML_OK) {
        mml_npz_free(z);
        return rc;
    }
    *out = z;
    return MML_OK;
}

mml_status mml_npz_open(const char *path, mml_npz **out)
{
    *out = NULL;
    unsigned char *buf;
    size_t len;
    mml_status rc = mml_file_read(path, (size_t)3 << 30, &buf, &len);
    if (rc != MML_OK) return rc;
    rc = mml_npz_parse(buf, len, path, out);
    mml_free(buf);
    return rc;
}

/* The member's bytes, inflated to exactly its declared size, CRC checked. */
static uint8_t *member_bytes(const mml_npz *z, const member *m)
{
    /* Deflate cannot exceed about 1032:1, so a larger declared size is a lie
     * (refused before anything is allocated), as is one over the limit. */
    if (m->usize > MML_NPY_MAX_BYTES || (m->method == 8 && m->usize > m->csize * 1032 + 1024) ||
        (m->method == 0 && m->usize != m->csize)) {
        mml_error(MML_ERR_FORMAT, "%s: %s: declared size %llu bytes (from %llu compressed) is refused (limit %zu)", z->what,
                  m->name, (unsigned long long)m->usize, (unsigned long long)m->csize, MML_NPY_MAX_BYTES);
        return NULL;
    }
    if (m->method != 0 && m->method != 8) {
        mml_error(MML_ERR_UNSUPPORTED, "%s: %s: zip compression method %d is not supported (stored or deflate)", z->what,
                  m->name, m->method);
        return NULL;
    }
    uint8_t *out = mml_malloc(m->usize ? (size_t)m->usize : 1);
    if (!out) return NULL;
    const uint8_t *src = z->bytes + m->data;
    if (m->method == 0) {
        memcpy(out, src, (size_t)m->usize);
    } else {
        z_stream s;
        memset(&s, 0, sizeof s);
        if (inflateInit2(&s, -15) != Z_OK) {
            mml_free(out);
            mml_error(MML_ERR_NOMEM, "%s: %s: cannot start inflating", z->what, m->name);
            return NULL;
        }
        s.next_in = (Bytef *)src;
        s.avail_in = (uInt)m->csize;
        s.next_out = out;
        s.avail_out = (uInt)m->usize;
        /* Output space is exactly the declared size: a stream that wants more
         * stops with Z_BUF_ERROR instead of growing anything. */
        int zr = inflate(&s, Z_FINISH);
        bool complete = zr == Z_STREAM_END && s.total_out == m->usize;
        inflateEnd(&s);
        if (!complete) {
            mml_free(out);
            mml_error(MML_ERR_FORMAT, "%s: %s: deflate data %s its declared size of %llu bytes", z->what, m->name,
                      zr == Z_BUF_ERROR && s.avail_out == 0 ? "inflates past" : "is corrupt or shorter than",
                      (unsigned long long)m->usize);
            return NULL;
        }
    }
    uint32_t crc = (uint32_t)crc32(0L, out, (uInt)m->usize);
    if (crc != m->crc) {
        mml_free(out);
        mml_error(MML_ERR_FORMAT, "%s: %s: CRC-32 mismatch (stored %08x, computed %08x)", z->what, m->name, m->crc, crc);
        return NULL;
    }
    return out;
}

mml_tensor *mml_npz_load_at(const mml_npz *z, int i, int as, mml_npy_info *info)
{
    if (i < 0 || i >= z->n) {
        mml_error(MML_ERR_ARG, "%s: no member %d (%d members)", z->what, i, z->n);
        return NULL;
    }
    const member *m = &z->m[i];
    uint8_t *bytes = member_bytes(z, m);
    if (!bytes) return NULL;
    char what[1200];
    snprintf(what, sizeof what, "%s: %s", z->what, m->name);
    mml_tensor *t = mml_npy_parse(bytes, (size_t)m->usize, as, what, info);
    mml_free(bytes);
    return t;
}

mml_tensor *mml_npz_load(const mml_npz *z, const char *name, int as)
{
    size_t n = strlen(name);
    for (int i = 0; i < z->n; i++) {
        const char *mn = z->m[i].name;
        if (!strcmp(mn, name) || (strlen(mn) == n + 4 && !strncmp(mn, name, n) && !strcmp(mn + n, ".npy")))
            return mml_npz_load_at(z, i, as, NULL);
    }
    mml_error(MML_ERR_ARG, "%s: no member named '%s'", z->what, name);
    return NULL;
}
