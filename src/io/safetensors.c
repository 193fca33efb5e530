/* safetensors reader and writer. The reader copies the file into one buffer
 * (or maps it: mml_safetensors_map), parses the JSON header with cJSON and checks every entry (dtype, shape,
 * offsets inside the data section, offsets matching the shape, no overlap)
 * before handing out pointers. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/safetensors.h"

#define MAX_HEADER ((uint64_t)100 << 20)

struct mml_safetensors {
    unsigned char *bytes;
    size_t len;
    bool mapped; /* bytes is a read-only mapping of the file (mml_safetensors_map) */
    mml_st_entry *entries;
    int n;
    char **meta_kv; /* key, value pairs */
    int n_meta;
};

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

void mml_safetensors_free(mml_safetensors *st)
{
    if (!st) return;
    for (int i = 0; i < st->n; i++) mml_free((void *)st->entries[i].name);
    for (int i = 0; i < 2 * st->n_meta; i++) mml_free(st->meta_kv[i]);
    mml_free(st->meta_kv);
    mml_free(st->entries);
    if (st->mapped) munmap(st->bytes, st->len);
    else mml_free(st->bytes);
    mml_free(st);
}

static mml_status bad(const char *what, const char *fmt, const char *name)
{
    return mml_error(MML_ERR_FORMAT, "%s: %s%s%s", what, fmt, name ? " " : "", name ? name : "");
}

static int cmp_offset(const void *a, const void *b)
{
    const mml_st_entry *x = a, *y = b;
    const unsigned char *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

static mml_status parse_meta(mml_safetensors *st, const cJSON *meta, const char *what)
{
    int n = cJSON_GetArraySize(meta);
    if (!cJSON_IsObject(meta)) return bad(what, "__metadata__ is not an object", NULL);
    if (st->meta_kv) return bad(what, "__metadata__ appears twice", NULL);
    st->meta_kv = mml_calloc((size_t)(2 * n + 1), sizeof(char *));
    if (!st->meta_kv) return MML_ERR_NOMEM;
    for (const cJSON *kv = meta->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv)) return bad(what, "__metadata__ value is not a string:", kv->string);
        st->meta_kv[2 * st->n_meta] = mml_strdup(kv->string);
        st->meta_kv[2 * st->n_meta + 1] = mml_strdup(kv->valuestring);
        st->n_meta++;
        if (!st->meta_kv[2 * st->n_meta - 2] || !st->meta_kv[2 * st->n_meta - 1]) return MML_ERR_NOMEM;
    }
    return MML_OK;
}

static mml_status parse_entry(mml_st_entry *e, const cJSON *item, const unsigned char *data,
                              uint64_t data_len, const char *what)
{
    const char *name = item->string;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsObject(item)) return bad(what, "header entry is not an object:", name);
    if (!cJSON_IsString(dt)) return bad(what, "missing or non-string dtype for tensor", name);
    int dtype = mml_dtype_from_name(dt->valuestring);
    if (dtype < 0) {
        return mml_error(MML_ERR_FORMAT, "%s: tensor %s has unsupported dtype '%s'", what, name,
                         dt->valuestring);
    }
    if (!cJSON_IsArray(shape)) return bad(what, "missing shape for tensor", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > MML_MAX_DIMS)
        return mml_error(MML_ERR_FORMAT, "%s: tensor %s has %d dims (at most %d)", what, name,
                         ndim, MML_MAX_DIMS);
    e->ndim = ndim;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 9.0e15 ||
            d->valuedouble != (double)(int64_t)d->valuedouble)
            return bad(what, "shape has a non-integer or negative dim in tensor", name);
        e->shape[i] = (int64_t)d->valuedouble;
    }
    int64_t numel = mml_shape_numel(ndim, e->shape);
    if (numel < 0) return bad(what, "shape overflows in tensor", name);
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !cJSON_IsNumber(offs->child) ||
        !cJSON_IsNumber(offs->child->next))
        return bad(what, "data_offsets must be two numbers in tensor", name);
    double b = offs->child->valuedouble, en = offs->child->next->valuedouble;
    if (b < 0 || en < b || en > (double)data_len || b != (double)(uint64_t)b ||
        en != (double)(uint64_t)en)
        return mml_error(MML_ERR_FORMAT,
                         "%s: tensor %s has data_offsets [%.0f, %.0f] outside the %llu-byte data "
                         "section",
                         what, name, b, en, (unsigned long long)data_len);
    uint64_t nbytes = (uint64_t)en - (uint64_t)b;
    size_t esize = mml_dtype_size((mml_dtype)dtype);
    if ((uint64_t)numel > UINT64_MAX / esize || nbytes != (uint64_t)numel * esize)
        return mml_error(MML_ERR_FORMAT,
                         "%s: tensor %s: shape and dtype need %llu bytes but data_offsets span %llu",
                         what, name, (unsigned long long)((uint64_t)numel * esize),
                         (unsigned long long)nbytes);
    e->dtype = (mml_dtype)dtype;
    e->data = data + (uint64_t)b;
    e->nbytes = (size_t)nbytes;
    e->name = mml_strdup(name);
    return e->name ? MML_OK : MML_ERR_NOMEM;
}

static mml_status parse_header(mml_safetensors *st, const char *what)
{
    if (st->len < 8) return bad(what, "file is too short for a safetensors header", NULL);
    uint64_t hlen = le64(st->bytes);
    if (hlen > st->len - 8 || hlen > MAX_HEADER)
        return mml_error(MML_ERR_FORMAT, "%s: header length %llu exceeds the file size %zu", what,
                         (unsigned long long)hlen, st->len);
    const unsigned char *data = st->bytes + 8 + hlen;
    uint64_t data_len = st->len - 8 - hlen;
    cJSON *root = cJSON_ParseWithLength((const char *)st->bytes + 8, (size_t)hlen);
    if (!root) return bad(what, "header is not valid JSON", NULL);
    mml_status rc = MML_OK;
    if (!cJSON_IsObject(root)) {
        rc = bad(what, "header is not a JSON object", NULL);
        goto done;
    }
    int n = cJSON_GetArraySize(root);
    st->entries = mml_calloc((size_t)n + 1, sizeof *st->entries);
    if (!st->entries) {
        rc = MML_ERR_NOMEM;
        goto done;
    }
    for (const cJSON *item = root->child; item && rc == MML_OK; item = item->next) {
        if (item->string && !strcmp(item->string, "__metadata__")) rc = parse_meta(st, item, what);
        else if ((rc = parse_entry(&st->entries[st->n], item, data, data_len, what)) == MML_OK)
            st->n++;
    }
    if (rc != MML_OK) goto done;
    /* Tensors must not overlap (the format requires a dense, ordered layout). */
    mml_st_entry *sorted = mml_malloc((size_t)(st->n + 1) * sizeof *sorted);
    if (!sorted) {
        rc = MML_ERR_NOMEM;
        goto done;
    }
    memcpy(sorted, st->entries, (size_t)st->n * sizeof *sorted);
    qsort(sorted, (size_t)st->n, sizeof *sorted, cmp_offset);
    for (int i = 1; i < st->n && rc == MML_OK; i++)
        if ((const unsigned char *)sorted[i - 1].data + sorted[i - 1].nbytes >
            (const unsigned char *)sorted[i].data)
            rc = mml_error(MML_ERR_FORMAT, "%s: tensors %s and %s overlap", what, sorted[i - 1].name,
                           sorted[i].name);
    for (int i = 0; i < st->n && rc == MML_OK; i++)
        for (int j = i + 1; j < st->n; j++)
            if (!strcmp(st->entries[i].name, st->entries[j].name)) {
                rc = bad(what, "tensor name appears twice:", st->entries[i].name);
                break;
            }
    mml_free(sorted);
done:
    cJSON_Delete(root);
    return rc;
}

mml_status mml_safetensors_parse(const void *bytes, size_t len, const char *what,
                                 mml_safetensors **out)
{
    *out = NULL;
    mml_safetensors *st = mml_calloc(1, sizeof *st);
    if (!st) return MML_ERR_NOMEM;
    st->bytes = mml_malloc(len ? len : 1);
    if (!st->bytes) {
        mml_free(st);
        return MML_ERR_NOMEM;
    }
    if (len) memcpy(st->bytes, bytes, len);
    st->len = len;
    mml_status rc = parse_header(st, what);
    if (rc != MML_OK) {
        mml_safetensors_free(st);
        return rc;
    }
    *out = st;
    return MML_OK;
}

mml_status mml_safetensors_load(const char *path, mml_safetensors **out)
{
    *out = NULL;
    unsigned char *buf;
    size_t len;
    mml_status rc = mml_file_read(path, SIZE_MAX - 1, &buf, &len);
    if (rc != MML_OK) return rc;
    mml_safetensors *st = mml_calloc(1, sizeof *st);
    if (!st) {
        mml_free(buf);
        return MML_ERR_NOMEM;
    }
    st->bytes = buf; /* the file's bytes stay with the parsed header */
    st->len = len;
    rc = parse_header(st, path);
    if (rc != MML_OK) mml_safetensors_free(st);
    else *out = st;
    return rc;
}

mml_status mml_safetensors_map(const char *path, mml_safetensors **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return mml_error(MML_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    mml_status rc = MML_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) rc = mml_error(MML_ERR_IO, "%s: not a regular file", path);
    else if (sb.st_size < 8) rc = bad(path, "file is too short for a safetensors header", NULL);
    mml_safetensors *st = rc == MML_OK ? mml_calloc(1, sizeof *st) : NULL;
    if (rc == MML_OK && !st) rc = MML_ERR_NOMEM;
    void *map = rc == MML_OK ? mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (rc != MML_OK || map == MAP_FAILED) {
        mml_free(st);
        /* A file system that cannot map files is read instead. */
        return rc != MML_OK ? rc : mml_safetensors_load(path, out);
    }
    st->bytes = map;
    st->len = (size_t)sb.st_size;
    st->mapped = true;
    if ((rc = parse_header(st, path)) != MML_OK) mml_safetensors_free(st);
    else *out = st;
    return rc;
}

void mml_safetensors_drop(const mml_safetensors *st, const void *p, size_t n)
{
    if (!st->mapped || !n) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = (uintptr_t)p & ~(page - 1), hi = (uintptr_t)p + n;
    mml_pages_release((void *)lo, hi - lo); /* a private, unwritten mapping: pages are reread if touched */
}

int mml_safetensors_count(const mml_safetensors *st) { return st->n; }
const mml_st_entry *mml_safetensors_at(const mml_safetensors *st, int i) { return &st->entries[i]; }

const mml_st_entry *mml_safetensors_find(const mml_safetensors *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->entries[i].name, name)) return &st->entries[i];
    return NULL;
}

const char *mml_safetensors_meta(const mml_safetensors *st, const char *key)
{
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_kv[2 * i], key)) return st->meta_kv[2 * i + 1];
    return NULL;
}
int mml_safetensors_meta_count(const mml_safetensors *st) { return st->n_meta; }
const char *mml_safetensors_meta_key(const mml_safetensors *st, int i) { return st->meta_kv[2 * i]; }

/* ---- dtype conversion ---- */

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (!man) bits = sign;
        else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000 | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}

static float bf16_to_float(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* Element i of raw little-endian data as double (exact for every supported dtype but I64 > 2^53). */
static double load_elem(const unsigned char *p, mml_dtype dt, int64_t i)
{
    switch (dt) {
    case MML_F32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case MML_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case MML_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return (double)v; }
    case MML_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return half_to_float(v); }
    case MML_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return bf16_to_float(v); }
    case MML_I8: return (int8_t)p[i];
    case MML_U8: return p[i];
    default: return 0.0;
    }
}

static bool is_int(mml_dtype dt) { return dt == MML_I32 || dt == MML_I64 || dt == MML_I8 || dt == MML_U8; }

static mml_status convert(const mml_st_entry *e, mml_tensor *dst, const char *what)
{
    if (dst->dtype != MML_F32 && !(is_int(dst->dtype) && is_int(e->dtype)))
        return mml_error(MML_ERR_FORMAT, "%s: tensor %s is %s and cannot be read as %s", what,
                         e->name, mml_dtype_name(e->dtype), mml_dtype_name(dst->dtype));
    if (e->dtype == dst->dtype) {
        memcpy(dst->data, e->data, e->nbytes);
        return MML_OK;
    }
    const unsigned char *p = e->data;
    for (int64_t i = 0; i < dst->numel; i++) {
        if (dst->dtype == MML_F32) mml_f32(dst)[i] = (float)load_elem(p, e->dtype, i);
        else if (dst->dtype == MML_I32) {
            int64_t v;
            if (e->dtype == MML_I64) memcpy(&v, p + 8 * i, 8);
            else v = (int64_t)load_elem(p, e->dtype, i);
            if (v < INT32_MIN || v > INT32_MAX)
                return mml_error(MML_ERR_FORMAT, "%s: tensor %s: value %lld does not fit I32", what,
                                 e->name, (long long)v);
            mml_i32(dst)[i] = (int32_t)v;
        } else if (dst->dtype == MML_I64) {
            mml_i64(dst)[i] = (int64_t)load_elem(p, e->dtype, i);
        } else return mml_error(MML_ERR_UNSUPPORTED, "%s: cannot convert tensor %s", what, e->name);
    }
    return MML_OK;
}

mml_tensor *mml_safetensors_tensor(const mml_safetensors *st, const char *name, mml_dtype as)
{
    const mml_st_entry *e = mml_safetensors_find(st, name);
    if (!e) {
        mml_error(MML_ERR_FORMAT, "safetensors: no tensor named '%s'", name);
        return NULL;
    }
    mml_tensor *t = mml_tensor_create(as, e->ndim, e->shape, false);
    if (!t) return NULL;
    if (convert(e, t, "safetensors") != MML_OK) {
        mml_tensor_free(t);
        return NULL;
    }
    mml_safetensors_drop(st, e->data, e->nbytes); /* copied: a mapped file's pages can go */
    return t;
}

mml_status mml_safetensors_read_into(const mml_safetensors *st, const char *name, mml_tensor *dst)
{
    const mml_st_entry *e = mml_safetensors_find(st, name);
    if (!e) return mml_error(MML_ERR_FORMAT, "safetensors: no tensor named '%s'", name);
    bool same = e->ndim == dst->ndim;
    for (int i = 0; same && i < e->ndim; i++) same = e->shape[i] == dst->shape[i];
    if (!same) {
        char a[96], b[96];
        mml_tensor probe = { .ndim = e->ndim };
        memcpy(probe.shape, e->shape, sizeof e->shape);
        return mml_error(MML_ERR_SHAPE, "safetensors: tensor '%s' has shape %s, expected %s", name,
                         mml_shape_str(&probe, a, sizeof a), mml_shape_str(dst, b, sizeof b));
    }
    mml_status rc = convert(e, dst, "safetensors");
    if (rc == MML_OK) mml_safetensors_drop(st, e->data, e->nbytes);
    return rc;
}

/* ---- writer ---- */

typedef struct wentry {
    char *name;
    mml_dtype dtype;
    int ndim;
    int64_t shape[MML_MAX_DIMS];
    unsigned char *data;
    size_t nbytes;
} wentry;

struct mml_st_writer {
    wentry *v;
    int n, cap;
    cJSON *meta;
};

mml_st_writer *mml_st_writer_create(void)
{
    mml_st_writer *w = mml_calloc(1, sizeof *w);
    if (w) w->meta = cJSON_CreateObject();
    return w;
}

void mml_st_writer_free(mml_st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        mml_free(w->v[i].name);
        mml_free(w->v[i].data);
    }
    mml_free(w->v);
    cJSON_Delete(w->meta);
    mml_free(w);
}

static wentry *writer_slot(mml_st_writer *w, const char *name)
{
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->v[i].name, name)) {
            mml_error(MML_ERR_ARG, "safetensors writer: tensor '%s' added twice", name);
            return NULL;
        }
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        wentry *v = mml_realloc(w->v, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        w->v = v;
        w->cap = cap;
    }
    wentry *e = &w->v[w->n];
    memset(e, 0, sizeof *e);
    e->name = mml_strdup(name);
    return e->name ? e : NULL;
}

mml_status mml_st_writer_add_raw(mml_st_writer *w, const char *name, mml_dtype dt, int ndim,
                                 const int64_t *shape, const void *data)
{
    int64_t numel = mml_shape_numel(ndim, shape);
    if (numel < 0 || ndim > MML_MAX_DIMS)
        return mml_error(MML_ERR_ARG, "safetensors writer: bad shape for '%s'", name);
    wentry *e = writer_slot(w, name);
    if (!e) return mml_last_status();
    e->nbytes = (size_t)numel * mml_dtype_size(dt);
    e->data = mml_malloc(e->nbytes);
    if (!e->data) {
        mml_free(e->name);
        return MML_ERR_NOMEM;
    }
    memcpy(e->data, data, e->nbytes);
    e->dtype = dt;
    e->ndim = ndim;
    memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    w->n++;
    return MML_OK;
}

mml_status mml_st_writer_add(mml_st_writer *w, const char *name, const mml_tensor *t,
                             mml_dtype store_as)
{
    if (store_as == t->dtype) return mml_st_writer_add_raw(w, name, t->dtype, t->ndim, t->shape, t->data);
    if (t->dtype != MML_F32 || (store_as != MML_F16 && store_as != MML_BF16))
        return mml_error(MML_ERR_UNSUPPORTED, "safetensors writer: cannot store %s '%s' as %s",
                         mml_dtype_name(t->dtype), name, mml_dtype_name(store_as));
    uint16_t *tmp = mml_malloc((size_t)t->numel * 2 + 2);
    if (!tmp) return MML_ERR_NOMEM;
    for (int64_t i = 0; i < t->numel; i++)
        tmp[i] = store_as == MML_F16 ? float_to_half(mml_f32(t)[i]) : float_to_bf16(mml_f32(t)[i]);
    mml_status rc = mml_st_writer_add_raw(w, name, store_as, t->ndim, t->shape, tmp);
    mml_free(tmp);
    return rc;
}

mml_status mml_st_writer_meta(mml_st_writer *w, const char *key, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
    if (!cJSON_AddStringToObject(w->meta, key, value)) return MML_ERR_NOMEM;
    return MML_OK;
}

static char *writer_header(const mml_st_writer *w)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    if (cJSON_GetArraySize(w->meta) > 0)
        cJSON_AddItemToObject(root, "__metadata__", cJSON_Duplicate(w->meta, 1));
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const wentry *e = &w->v[i];
        cJSON *item = cJSON_AddObjectToObject(root, e->name);
        cJSON_AddStringToObject(item, "dtype", mml_dtype_name(e->dtype));
        cJSON *shape = cJSON_AddArrayToObject(item, "shape");
        for (int d = 0; d < e->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(item, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += e->nbytes;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

mml_status mml_st_writer_save(mml_st_writer *w, const char *path)
{
    char *header = writer_header(w);
    if (!header) return mml_error(MML_ERR_NOMEM, "%s: cannot build the header", path);
    size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        cJSON_free(header);
        return mml_error(MML_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (int i = 0; ok && i < w->n; i++) ok = fwrite(w->v[i].data, 1, w->v[i].nbytes, f) == w->v[i].nbytes;
    ok = (fclose(f) == 0) && ok;
    cJSON_free(header);
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return mml_error(MML_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return MML_OK;
}
