/* Feature extraction over a manifest, its cache file, and batch gathering.
 *
 * The cache holds what extraction produced for every manifest row (features,
 * lengths, presence, and which rows failed with what message); labels and the
 * on-error policy are applied after, so one cache serves every policy. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mml/alloc.h"
#include "mml/dataset.h"
#include "mml/progress.h"
#include "mml/safetensors.h"
#include "mml/threads.h"

#define ERR_CAP 256

mml_dataset_options mml_dataset_options_default(void)
{
    return (mml_dataset_options){ .label_field = "label", .on_error = MML_ON_ERROR_FAIL };
}

/* What extraction produced for every manifest row. */
typedef struct extracted {
    int64_t rows;
    void *feat[MML_MOD_COUNT];
    int32_t *length[MML_MOD_COUNT];
    uint8_t *present[MML_MOD_COUNT];
    uint8_t *failed;
    char (*errors)[ERR_CAP];
} extracted;

static void extracted_free(extracted *e)
{
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        mml_free(e->feat[m]);
        mml_free(e->length[m]);
        mml_free(e->present[m]);
    }
    mml_free(e->failed);
    mml_free(e->errors);
}

static int64_t spec_numel(const mml_feature_spec *s)
{
    return s->enabled ? mml_shape_numel(s->ndim, s->shape) : 0;
}

static mml_dtype stored_dtype(const mml_feature_spec *s) { return s->stored_u8 ? MML_U8 : s->dtype; }
static size_t stored_size(const mml_feature_spec *s) { return mml_dtype_size(stored_dtype(s)); }

/* The floats the featurizer computes for 8-bit values: v / 255.0f. */
static void bytes_to_unit(float *dst, const uint8_t *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i] / 255.0f;
}

static mml_status extracted_alloc(extracted *e, int64_t rows, const mml_featurizer *f)
{
    memset(e, 0, sizeof *e);
    e->rows = rows;
    e->failed = mml_calloc((size_t)rows, 1);
    e->errors = mml_calloc((size_t)rows, ERR_CAP);
    if (!e->failed || !e->errors) return MML_ERR_NOMEM;
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        const mml_feature_spec *s = &f->spec[m];
        if (!s->enabled) continue;
        int64_t k = spec_numel(s);
        if (k <= 0) return mml_error(MML_ERR_ARG, "dataset: %s features have an empty shape",
                                     mml_modality_name((mml_modality)m));
        e->feat[m] = mml_calloc((size_t)(rows * k), stored_size(s));
        e->length[m] = mml_calloc((size_t)rows, sizeof(int32_t));
        e->present[m] = mml_calloc((size_t)rows, 1);
        if (!e->feat[m] || !e->length[m] || !e->present[m]) return MML_ERR_NOMEM;
    }
    return MML_OK;
}

/* ---- extraction on the thread pool ---- */

typedef struct job {
    const mml_manifest *man;
    const mml_featurizer *f;
    extracted *e;
    mml_progress *progress;
    int64_t done; /* updated by thread 0 only, for the bar */
} job;

static void extract_row(job *j, int64_t r)
{
    const mml_sample *s = &j->man->samples[r];
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        const mml_feature_spec *sp = &j->f->spec[m];
        if (!sp->enabled || !s->has[m]) continue;
        int64_t k = spec_numel(sp), len = 0;
        void *out = (char *)j->e->feat[m] + (size_t)(r * k) * stored_size(sp);
        if (j->f->extract(j->f->user, s, (mml_modality)m, out, &len) != MML_OK) {
            j->e->failed[r] = 1;
            snprintf(j->e->errors[r], ERR_CAP, "%s", mml_last_error());
            memset(out, 0, (size_t)k * stored_size(sp));
            return;
        }
        j->e->present[m][r] = 1;
        j->e->length[m][r] = (int32_t)len;
    }
}

static void extract_range(void *arg, int64_t b, int64_t e, int thread)
{
    job *j = arg;
    for (int64_t r = b; r < e; r++) {
        extract_row(j, r);
        if (thread == 0 && j->progress) mml_progress_update(j->progress, (r - b + 1) * mml_threads_get(), NULL);
    }
}

/* ---- cache key: content of the manifest's samples and files, and parameters ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s) { return s ? fnv(h, s, strlen(s) + 1) : fnv(h, "", 1); }

static uint64_t hash_file(uint64_t h, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fnv_str(h, "<missing>");
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) h = fnv(h, buf, n);
    fclose(f);
    return h;
}

typedef struct hash_job {
    const mml_manifest *man;
    const mml_featurizer *f;
    uint64_t *row_hash;
} hash_job;

static void hash_range(void *arg, int64_t b, int64_t e, int thread)
{
    hash_job *j = arg;
    for (int64_t r = b; r < e; r++) {
        const mml_sample *s = &j->man->samples[r];
        uint64_t h = 0xcbf29ce484222325ULL;
        h = fnv_str(h, s->id);
        for (int m = 0; m < MML_MOD_COUNT; m++) {
            if (!j->f->spec[m].enabled) continue;
            h = fnv(h, &s->has[m], 1);
            if (!s->has[m]) continue;
            h = m == MML_MOD_TEXT ? fnv_str(h, s->text) : hash_file(h, s->path[m]);
        }
        j->row_hash[r] = h;
    }
}

static uint64_t cache_key(const mml_manifest *man, const mml_featurizer *f)
{
    uint64_t *rows = mml_calloc((size_t)man->n, sizeof *rows), h = 0xcbf29ce484222325ULL;
    if (!rows) return 0;
    hash_job j = { man, f, rows };
    mml_parallel_for(man->n, 16, hash_range, &j);
    h = fnv(h, rows, (size_t)man->n * sizeof *rows);
    h = fnv_str(h, f->params);
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        const mml_feature_spec *s = &f->spec[m];
        h = fnv(h, &s->enabled, sizeof s->enabled);
        if (!s->enabled) continue;
        h = fnv(h, &s->dtype, sizeof s->dtype);
        /* Only when set: caches of features stored as they are keep their keys. */
        if (s->stored_u8) h = fnv(h, &s->stored_u8, sizeof s->stored_u8);
        h = fnv(h, s->shape, (size_t)s->ndim * sizeof s->shape[0]);
        h = fnv(h, &s->seq_axis, sizeof s->seq_axis);
    }
    mml_free(rows);
    return h;
}

static void cache_path(char *buf, size_t cap, const char *dir, uint64_t key)
{
    snprintf(buf, cap, "%s/features-%016llx.safetensors", dir, (unsigned long long)key);
}

static mml_status cache_save(const char *path, const extracted *e, const mml_featurizer *f)
{
    mml_st_writer *w = mml_st_writer_create();
    if (!w) return MML_ERR_NOMEM;
    mml_status rc = MML_OK;
    char name[64];
    for (int m = 0; m < MML_MOD_COUNT && rc == MML_OK; m++) {
        const mml_feature_spec *s = &f->spec[m];
        if (!s->enabled) continue;
        const char *mn = mml_modality_name((mml_modality)m);
        int64_t shape[1 + MML_FEATURE_MAX_DIMS] = { e->rows };
        memcpy(shape + 1, s->shape, (size_t)s->ndim * sizeof *shape);
        snprintf(name, sizeof name, "feat.%s", mn);
        rc = mml_st_writer_add_raw(w, name, stored_dtype(s), 1 + s->ndim, shape, e->feat[m]);
        snprintf(name, sizeof name, "length.%s", mn);
        if (rc == MML_OK) rc = mml_st_writer_add_raw(w, name, MML_I32, 1, &e->rows, e->length[m]);
        snprintf(name, sizeof name, "present.%s", mn);
        if (rc == MML_OK) rc = mml_st_writer_add_raw(w, name, MML_U8, 1, &e->rows, e->present[m]);
    }
    if (rc == MML_OK) rc = mml_st_writer_add_raw(w, "failed", MML_U8, 1, &e->rows, e->failed);
    cJSON *errs = cJSON_CreateObject();
    for (int64_t r = 0; r < e->rows; r++)
        if (e->failed[r]) {
            snprintf(name, sizeof name, "%lld", (long long)r);
            cJSON_AddStringToObject(errs, name, e->errors[r]);
        }
    char *text = cJSON_PrintUnformatted(errs);
    cJSON_Delete(errs);
    if (rc == MML_OK) rc = text ? mml_st_writer_meta(w, "errors", text) : MML_ERR_NOMEM;
    cJSON_free(text);
    if (rc == MML_OK) rc = mml_st_writer_save(w, path);
    mml_st_writer_free(w);
    return rc;
}

/* Copied a slice at a time from the mapped file, each slice's pages let go
 * after: loading the cache never holds the features twice. */
#define CACHE_SLICE ((size_t)4 << 20)

static bool read_exact(const mml_safetensors *st, const char *name, mml_dtype dt, void *dst,
                       size_t bytes)
{
    const mml_st_entry *en = mml_safetensors_find(st, name);
    if (!en || en->dtype != dt || en->nbytes != bytes) return false;
    for (size_t at = 0; at < bytes; at += CACHE_SLICE) {
        size_t n = bytes - at < CACHE_SLICE ? bytes - at : CACHE_SLICE;
        memcpy((char *)dst + at, (const char *)en->data + at, n);
        mml_safetensors_drop(st, (const char *)en->data + at, n);
    }
    return true;
}

/* Loads the cache if present and consistent; any mismatch just means "extract again". */
static bool cache_load(const char *path, extracted *e, const mml_featurizer *f)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return false;
    mml_safetensors *st;
    if (mml_safetensors_map(path, &st) != MML_OK) return false;
    bool ok = read_exact(st, "failed", MML_U8, e->failed, (size_t)e->rows);
    char name[64];
    for (int m = 0; ok && m < MML_MOD_COUNT; m++) {
        const mml_feature_spec *s = &f->spec[m];
        if (!s->enabled) continue;
        const char *mn = mml_modality_name((mml_modality)m);
        snprintf(name, sizeof name, "feat.%s", mn);
        ok = read_exact(st, name, stored_dtype(s), e->feat[m], (size_t)(e->rows * spec_numel(s)) * stored_size(s));
        snprintf(name, sizeof name, "length.%s", mn);
        ok = ok && read_exact(st, name, MML_I32, e->length[m], (size_t)e->rows * 4);
        snprintf(name, sizeof name, "present.%s", mn);
        ok = ok && read_exact(st, name, MML_U8, e->present[m], (size_t)e->rows);
    }
    const char *errs = mml_safetensors_meta(st, "errors");
    cJSON *obj = errs ? cJSON_Parse(errs) : NULL;
    for (const cJSON *it = obj ? obj->child : NULL; ok && it; it = it->next) {
        long long r = strtoll(it->string, NULL, 10);
        if (r >= 0 && r < e->rows && cJSON_IsString(it))
            snprintf(e->errors[r], ERR_CAP, "%s", it->valuestring);
    }
    cJSON_Delete(obj);
    mml_safetensors_free(st);
    return ok;
}

static mml_status extract_all(const mml_manifest *man, const mml_featurizer *f,
                              const mml_dataset_options *opt, extracted *e, bool *from_cache)
{
    char path[4096];
    uint64_t key = 0;
    *from_cache = false;
    if (opt->cache_dir) {
        key = cache_key(man, f);
        cache_path(path, sizeof path, opt->cache_dir, key);
        if (cache_load(path, e, f)) {
            *from_cache = true;
            return MML_OK;
        }
    }
    mml_progress bar;
    job j = { man, f, e, opt->progress ? &bar : NULL, 0 };
    if (opt->progress) mml_progress_start(&bar, "features", man->n, "samples");
    mml_parallel_for(man->n, 8, extract_range, &j);
    if (opt->progress) mml_progress_finish(&bar, "%s", man->path);
    if (!opt->cache_dir) return MML_OK;
    if (mkdir(opt->cache_dir, 0755) != 0 && errno != EEXIST)
        return mml_error(MML_ERR_IO, "%s: cannot create the cache directory: %s", opt->cache_dir,
                         strerror(errno));
    return cache_save(path, e, f);
}

/* ---- the dataset ---- */

void mml_dataset_free(mml_dataset *ds)
{
    if (!ds) return;
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        mml_free(ds->feat[m]);
        mml_free(ds->offset[m]);
        mml_free(ds->length[m]);
        mml_free(ds->present[m]);
    }
    mml_free(ds->label);
    mml_classes_free(ds->classes, ds->n_classes);
    mml_free(ds->source_row);
    for (int64_t i = 0; i < ds->n_skipped; i++) mml_free(ds->skipped[i]);
    mml_free(ds->skipped);
    mml_free(ds);
}

static mml_status set_classes(mml_dataset *ds, const mml_manifest *man, const mml_dataset_options *opt)
{
    if (opt->classes) {
        ds->classes = mml_calloc((size_t)opt->n_classes + 1, sizeof(char *));
        if (!ds->classes) return MML_ERR_NOMEM;
        for (int c = 0; c < opt->n_classes; c++)
            if (!(ds->classes[ds->n_classes++] = mml_strdup(opt->classes[c]))) return MML_ERR_NOMEM;
        return MML_OK;
    }
    int n = mml_manifest_classes(man, opt->label_field, &ds->classes);
    if (n < 0) return mml_last_status();
    ds->n_classes = n;
    return MML_OK;
}

static mml_status apply_policy(mml_dataset *ds, const mml_manifest *man, const extracted *e,
                               const mml_dataset_options *opt)
{
    int64_t failed = 0;
    for (int64_t r = 0; r < e->rows; r++) failed += e->failed[r];
    if (failed && opt->on_error == MML_ON_ERROR_FAIL) {
        for (int64_t r = 0; r < e->rows; r++)
            if (e->failed[r])
                return mml_error(MML_ERR_FORMAT, "%s:%d: sample %s: %s (use --on-error skip to skip "
                                 "unreadable samples)", man->path, man->samples[r].line,
                                 man->samples[r].id, e->errors[r]);
    }
    ds->skipped = mml_calloc((size_t)failed + 1, sizeof(char *));
    ds->source_row = mml_calloc((size_t)(e->rows - failed) + 1, sizeof(int64_t));
    if (!ds->skipped || !ds->source_row) return MML_ERR_NOMEM;
    for (int64_t r = 0; r < e->rows; r++) {
        if (!e->failed[r]) {
            ds->source_row[ds->n++] = r;
            continue;
        }
        char msg[ERR_CAP + 128];
        snprintf(msg, sizeof msg, "%s: %s", man->samples[r].id, e->errors[r]);
        if (!(ds->skipped[ds->n_skipped++] = mml_strdup(msg))) return MML_ERR_NOMEM;
    }
    if (ds->n == 0) return mml_error(MML_ERR_FORMAT, "%s: every sample failed to load", man->path);
    return MML_OK;
}

/* Sequence features are kept compact: a row stores, for each index before
 * the sequence axis, its leading `kept` steps, where every step from `kept`
 * on is zero (the padding extraction left), so padded audio costs its real
 * length. Rows of other modalities keep their full width. */
typedef struct seq_geom {
    int64_t outer, steps, inner; /* elements before, along and after the sequence axis */
} seq_geom;

static bool is_compact(const mml_feature_spec *s) { return s->enabled && s->seq_axis >= 0 && !s->stored_u8; }

static seq_geom geom_of(const mml_feature_spec *s)
{
    seq_geom g = { 1, s->shape[s->seq_axis], 1 };
    for (int d = 0; d < s->seq_axis; d++) g.outer *= s->shape[d];
    for (int d = s->seq_axis + 1; d < s->ndim; d++) g.inner *= s->shape[d];
    return g;
}

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

/* Steps a full row needs: one past the last step holding a nonzero byte. */
static int64_t kept_steps(const unsigned char *row, seq_geom g, size_t es)
{
    size_t step = (size_t)g.inner * es, block = (size_t)g.steps * step;
    int64_t kept = 0;
    for (int64_t o = 0; o < g.outer; o++)
        for (int64_t t = g.steps; t > kept; t--)
            if (!all_zero(row + (size_t)o * block + (size_t)(t - 1) * step, step)) {
                kept = t;
                break;
            }
    return kept;
}

/* Moves the kept rows of modality m of e into ds, compact for sequences
 * (in place: a row never moves to a later address), and gives the rest back. */
static mml_status take_compact(mml_dataset *ds, extracted *e, int m)
{
    const mml_feature_spec *s = &ds->spec[m];
    seq_geom g = geom_of(s);
    size_t es = stored_size(s), row_bytes = (size_t)ds->row_numel[m] * es;
    int64_t *off = mml_malloc((size_t)(ds->n + 1) * sizeof *off);
    if (!off) return MML_ERR_NOMEM;
    unsigned char *base = e->feat[m];
    off[0] = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        const unsigned char *src = base + (size_t)ds->source_row[i] * row_bytes;
        int64_t kept = kept_steps(src, g, es);
        size_t run = (size_t)(kept * g.inner) * es;
        for (int64_t o = 0; o < g.outer; o++)
            memmove(base + (size_t)(off[i] + o * kept * g.inner) * es, src + (size_t)(o * g.steps * g.inner) * es, run);
        off[i + 1] = off[i] + g.outer * kept * g.inner;
    }
    void *shrunk = mml_realloc(base, (size_t)off[ds->n] * es + 1);
    ds->feat[m] = shrunk ? shrunk : base;
    ds->offset[m] = off;
    e->feat[m] = NULL;
    return MML_OK;
}

/* Moves the kept rows of e into ds (compacting in place). */
static mml_status take_rows(mml_dataset *ds, extracted *e)
{
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        if (!ds->spec[m].enabled) continue;
        for (int64_t i = 0; i < ds->n; i++) {
            e->length[m][i] = e->length[m][ds->source_row[i]];
            e->present[m][i] = e->present[m][ds->source_row[i]];
        }
        ds->length[m] = e->length[m];
        ds->present[m] = e->present[m];
        e->length[m] = NULL;
        e->present[m] = NULL;
        if (is_compact(&ds->spec[m])) {
            mml_status rc = take_compact(ds, e, m);
            if (rc != MML_OK) return rc;
            continue;
        }
        size_t row_bytes = (size_t)ds->row_numel[m] * stored_size(&ds->spec[m]);
        for (int64_t i = 0; i < ds->n; i++)
            memmove((char *)e->feat[m] + (size_t)i * row_bytes,
                    (char *)e->feat[m] + (size_t)ds->source_row[i] * row_bytes, row_bytes);
        ds->feat[m] = e->feat[m];
        e->feat[m] = NULL;
    }
    return MML_OK;
}

static mml_status set_labels(mml_dataset *ds, const mml_manifest *man, const char *field)
{
    ds->label = mml_calloc((size_t)ds->n, sizeof(int32_t));
    if (!ds->label) return MML_ERR_NOMEM;
    for (int64_t i = 0; i < ds->n; i++) {
        int c = mml_manifest_class_of(man, &man->samples[ds->source_row[i]], field, ds->classes,
                                      ds->n_classes);
        if (c < 0) return mml_last_status();
        ds->label[i] = c;
    }
    return MML_OK;
}

mml_status mml_dataset_build(const mml_manifest *man, const mml_featurizer *f,
                             const mml_dataset_options *opt, mml_dataset **out)
{
    *out = NULL;
    mml_dataset_options defaults = mml_dataset_options_default();
    if (!opt) opt = &defaults;
    mml_dataset *ds = mml_calloc(1, sizeof *ds);
    extracted e;
    if (!ds) return MML_ERR_NOMEM;
    ds->manifest = man;
    memcpy(ds->spec, f->spec, sizeof ds->spec);
    for (int m = 0; m < MML_MOD_COUNT; m++) ds->row_numel[m] = spec_numel(&f->spec[m]);
    mml_status rc = extracted_alloc(&e, man->n, f);
    if (rc == MML_OK && opt->label_field) rc = set_classes(ds, man, opt);
    if (rc == MML_OK) rc = extract_all(man, f, opt, &e, &ds->from_cache);
    if (rc == MML_OK) rc = apply_policy(ds, man, &e, opt);
    if (rc == MML_OK) rc = take_rows(ds, &e);
    if (rc == MML_OK && opt->label_field) rc = set_labels(ds, man, opt->label_field);
    extracted_free(&e);
    if (rc != MML_OK) {
        mml_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return MML_OK;
}

int64_t mml_dataset_rows_where(const mml_dataset *ds, const char *field, const char *value,
                               int64_t *rows)
{
    int64_t k = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        const char *v = mml_sample_field(&ds->manifest->samples[ds->source_row[i]], field);
        if (v && !strcmp(v, value)) rows[k++] = i;
    }
    return k;
}

mml_status mml_dataset_batch(mml_ctx *ctx, const mml_dataset *ds, const int64_t *rows, int64_t B,
                             mml_batch *out)
{
    memset(out, 0, sizeof *out);
    out->size = B;
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        const mml_feature_spec *s = &ds->spec[m];
        if (!s->enabled) continue;
        int64_t shape[1 + MML_FEATURE_MAX_DIMS] = { B };
        memcpy(shape + 1, s->shape, (size_t)s->ndim * sizeof *shape);
        out->x[m] = mml_new(ctx, s->dtype, 1 + s->ndim, shape);
        out->present[m] = mml_new(ctx, MML_F32, 1, &B);
        if (s->seq_axis >= 0) out->length[m] = mml_new(ctx, MML_I32, 1, &B);
        if (!out->x[m] || !out->present[m] || (s->seq_axis >= 0 && !out->length[m])) return MML_ERR_NOMEM;
        size_t row_bytes = (size_t)ds->row_numel[m] * mml_dtype_size(s->dtype);
        for (int64_t i = 0; i < B; i++) {
            int64_t r = rows[i];
            mml_dataset_row(ds, (mml_modality)m, r, (char *)out->x[m]->data + (size_t)i * row_bytes);
            mml_f32(out->present[m])[i] = ds->present[m][r];
            if (out->length[m]) mml_i32(out->length[m])[i] = ds->length[m][r];
        }
    }
    if (ds->label) {
        out->label = mml_new(ctx, MML_I32, 1, &B);
        if (!out->label) return MML_ERR_NOMEM;
        for (int64_t i = 0; i < B; i++) mml_i32(out->label)[i] = ds->label[rows[i]];
    }
    return MML_OK;
}

void mml_dataset_row(const mml_dataset *ds, mml_modality m, int64_t r, void *dst)
{
    const mml_feature_spec *s = &ds->spec[m];
    int64_t k = ds->row_numel[m];
    size_t es = stored_size(s);
    if (s->stored_u8) {
        bytes_to_unit(dst, (const uint8_t *)ds->feat[m] + r * k, k);
        return;
    }
    if (!ds->offset[m]) {
        memcpy(dst, (const char *)ds->feat[m] + (size_t)(r * k) * es, (size_t)k * es);
        return;
    }
    seq_geom g = geom_of(s);
    int64_t kept = (ds->offset[m][r + 1] - ds->offset[m][r]) / (g.outer * g.inner);
    const char *src = (const char *)ds->feat[m] + (size_t)ds->offset[m][r] * es;
    size_t run = (size_t)(kept * g.inner) * es, pad = (size_t)((g.steps - kept) * g.inner) * es;
    for (int64_t o = 0; o < g.outer; o++) {
        char *row = (char *)dst + (size_t)(o * g.steps * g.inner) * es;
        memcpy(row, src + (size_t)o * run, run);
        memset(row + run, 0, pad);
    }
}

const float *mml_dataset_row_f32(const mml_dataset *ds, mml_modality m, int64_t r, float *scratch)
{
    if (!ds->spec[m].stored_u8 && !ds->offset[m]) return (const float *)ds->feat[m] + r * ds->row_numel[m];
    mml_dataset_row(ds, m, r, scratch);
    return scratch;
}

void mml_dataset_order(int64_t *rows, int64_t n, mml_rng *rng)
{
    for (int64_t i = 0; i < n; i++) rows[i] = i;
    if (!rng) return;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = mml_rng_below(rng, (uint32_t)(i + 1));
        int64_t t = rows[i];
        rows[i] = rows[j];
        rows[j] = t;
    }
}
