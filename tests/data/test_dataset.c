#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mml/dataset.h"
#include "test.h"

/* A featurizer over plain files: "image" files hold 4 numbers; text becomes
 * its bytes as a padded I32 sequence of at most 8. */
static mml_status toy_extract(void *user, const mml_sample *s, mml_modality m, void *out, int64_t *len)
{
    int *calls = user;
    __atomic_fetch_add(calls, 1, __ATOMIC_RELAXED);
    if (m == MML_MOD_TEXT) {
        int64_t n = (int64_t)strlen(s->text);
        if (n > 8) n = 8;
        for (int64_t i = 0; i < n; i++) ((int32_t *)out)[i] = (unsigned char)s->text[i];
        *len = n;
        return MML_OK;
    }
    FILE *f = fopen(s->path[m], "r");
    if (!f) return mml_error(MML_ERR_IO, "%s: cannot open", s->path[m]);
    float *v = out;
    int got = fscanf(f, "%f %f %f %f", &v[0], &v[1], &v[2], &v[3]);
    fclose(f);
    return got == 4 ? MML_OK : mml_error(MML_ERR_FORMAT, "%s: expected 4 numbers", s->path[m]);
}

static void write_file(const char *name, const char *text)
{
    char p[512];
    FILE *f = fopen(tst_tmp_path(name, p, sizeof p), "w");
    fputs(text, f);
    fclose(f);
}

/* Writes a manifest of the given lines to the scratch directory and loads it. */
static mml_manifest *manifest_of(const char *name, const char *lines)
{
    char path[512];
    mml_manifest *m = NULL;
    write_file(name, lines);
    CHECK_OK(mml_manifest_load(tst_tmp_path(name, path, sizeof path), &m));
    return m;
}

static mml_featurizer toy_featurizer(int *calls)
{
    mml_featurizer f = { .extract = toy_extract, .user = calls, .params = "toy v1" };
    f.spec[MML_MOD_IMAGE] = (mml_feature_spec){ true, MML_F32, 1, { 4 }, -1 };
    f.spec[MML_MOD_TEXT] = (mml_feature_spec){ true, MML_I32, 1, { 8 }, 0 };
    return f;
}

TEST(dataset_build_cache_and_batch)
{
    write_file("a.txt", "1 2 3 4");
    write_file("b.txt", "5 6 7 8");
    mml_manifest *m = manifest_of("m.jsonl", "{\"id\":\"s0\",\"image\":\"a.txt\",\"text\":\"hi\",\"label\":\"cat\"}\n"
                                             "{\"id\":\"s1\",\"image\":\"b.txt\",\"label\":\"dog\"}\n"
                                             "{\"id\":\"s2\",\"text\":\"a long sentence\",\"label\":\"cat\"}\n");
    char cache[512];
    if (!m) return;
    int calls = 0;
    mml_featurizer f = toy_featurizer(&calls);
    mml_dataset_options opt = mml_dataset_options_default();
    opt.cache_dir = tst_tmp_path("cache", cache, sizeof cache);
    mml_dataset *ds = NULL;
    CHECK_OK(mml_dataset_build(m, &f, &opt, &ds));
    if (!ds) return;
    CHECK(ds->n == 3 && ds->n_classes == 2 && !ds->from_cache && calls == 4);
    CHECK(ds->label[0] == 0 && ds->label[1] == 1 && ds->label[2] == 0);

    mml_ctx *ctx = mml_ctx_create();
    mml_batch b;
    int64_t rows[2] = { 2, 0 };
    CHECK_OK(mml_dataset_batch(ctx, ds, rows, 2, &b));
    CHECK(b.x[MML_MOD_IMAGE]->shape[0] == 2 && b.x[MML_MOD_IMAGE]->shape[1] == 4);
    CHECK(mml_f32(b.present[MML_MOD_IMAGE])[0] == 0.0f && mml_f32(b.present[MML_MOD_IMAGE])[1] == 1.0f);
    CHECK(mml_f32(b.x[MML_MOD_IMAGE])[0] == 0.0f && mml_f32(b.x[MML_MOD_IMAGE])[4 + 3] == 4.0f);
    CHECK(mml_i32(b.length[MML_MOD_TEXT])[0] == 8 && mml_i32(b.length[MML_MOD_TEXT])[1] == 2);
    CHECK(mml_i32(b.x[MML_MOD_TEXT])[8 + 1] == 'i' && mml_i32(b.x[MML_MOD_TEXT])[8 + 2] == 0);
    CHECK(b.x[MML_MOD_AUDIO] == NULL && mml_i32(b.label)[0] == 0);

    /* Second build: served from the cache, same features, no extraction. */
    mml_dataset *again = NULL;
    CHECK_OK(mml_dataset_build(m, &f, &opt, &again));
    CHECK(again && again->from_cache && calls == 4);
    if (again) CHECK(memcmp(again->feat[MML_MOD_IMAGE], ds->feat[MML_MOD_IMAGE], 3 * 4 * sizeof(float)) == 0);
    mml_dataset_free(again);

    /* Changing a file's content changes the key. */
    write_file("b.txt", "9 9 9 9");
    CHECK_OK(mml_dataset_build(m, &f, &opt, &again));
    CHECK(again && !again->from_cache && ((float *)again->feat[MML_MOD_IMAGE])[4] == 9.0f);
    mml_dataset_free(again);
    mml_dataset_free(ds);
    mml_ctx_free(ctx);
    mml_manifest_free(m);
}

TEST(dataset_on_error_fail_and_skip)
{
    write_file("ok.txt", "1 2 3 4");
    write_file("bad.txt", "1 2");
    mml_manifest *m = manifest_of("e.jsonl", "{\"id\":\"good\",\"image\":\"ok.txt\",\"label\":1}\n"
                                             "{\"id\":\"broken\",\"image\":\"bad.txt\",\"label\":2}\n"
                                             "{\"id\":\"gone\",\"image\":\"missing.txt\",\"label\":2}\n");
    if (!m) return;
    int calls = 0;
    mml_featurizer f = toy_featurizer(&calls);
    f.spec[MML_MOD_TEXT].enabled = false;
    mml_dataset_options opt = mml_dataset_options_default();
    mml_dataset *ds = NULL;
    CHECK(mml_dataset_build(m, &f, &opt, &ds) == MML_ERR_FORMAT && !ds);
    CHECK_MSG(strstr(mml_last_error(), "e.jsonl:2: sample broken") && strstr(mml_last_error(), "bad.txt"),
              "got: %s", mml_last_error());
    opt.on_error = MML_ON_ERROR_SKIP;
    CHECK_OK(mml_dataset_build(m, &f, &opt, &ds));
    if (ds) {
        CHECK(ds->n == 1 && ds->n_skipped == 2);
        CHECK(strstr(ds->skipped[0], "broken") && strstr(ds->skipped[1], "missing.txt"));
        CHECK(ds->n_classes == 2 && ds->label[0] == 0);
    }
    mml_dataset_free(ds);
    mml_manifest_free(m);
}

/* Like toy_extract, but the 4 numbers are bytes (stored_u8). */
static mml_status toy_extract_bytes(void *user, const mml_sample *s, mml_modality m, void *out, int64_t *len)
{
    int *calls = user, v[4];
    __atomic_fetch_add(calls, 1, __ATOMIC_RELAXED);
    FILE *f = fopen(s->path[m], "r");
    if (!f) return mml_error(MML_ERR_IO, "%s: cannot open", s->path[m]);
    int got = fscanf(f, "%d %d %d %d", &v[0], &v[1], &v[2], &v[3]);
    fclose(f);
    for (int i = 0; i < 4; i++) ((uint8_t *)out)[i] = (uint8_t)v[i];
    return got == 4 ? MML_OK : mml_error(MML_ERR_FORMAT, "%s: expected 4 numbers", s->path[m]);
}

TEST(dataset_stores_bytes_and_caches_them_under_their_own_key)
{
    write_file("u0.txt", "0 1 128 255");
    write_file("u1.txt", "7 51 200 3");
    mml_manifest *m = manifest_of("u.jsonl", "{\"id\":\"s0\",\"image\":\"u0.txt\",\"label\":0}\n"
                                             "{\"id\":\"s1\",\"image\":\"u1.txt\",\"label\":1}\n");
    char cache[512];
    if (!m) return;
    int calls = 0;
    mml_featurizer f = toy_featurizer(&calls);
    f.spec[MML_MOD_TEXT].enabled = false;
    mml_dataset_options opt = mml_dataset_options_default();
    opt.cache_dir = tst_tmp_path("cache_u8", cache, sizeof cache);
    mml_dataset *floats = NULL, *bytes = NULL, *again = NULL;
    CHECK_OK(mml_dataset_build(m, &f, &opt, &floats)); /* a float cache of the same files and params */
    f.extract = toy_extract_bytes;
    f.spec[MML_MOD_IMAGE].stored_u8 = true;
    CHECK_OK(mml_dataset_build(m, &f, &opt, &bytes));
    CHECK(bytes && !bytes->from_cache && calls == 4);
    CHECK_OK(mml_dataset_build(m, &f, &opt, &again));
    CHECK(again && again->from_cache && calls == 4);
    if (bytes && again) {
        static const uint8_t want[8] = { 0, 1, 128, 255, 7, 51, 200, 3 };
        CHECK(!memcmp(bytes->feat[MML_MOD_IMAGE], want, 8) && !memcmp(again->feat[MML_MOD_IMAGE], want, 8));
        mml_ctx *ctx = mml_ctx_create();
        mml_batch b;
        CHECK_OK(mml_dataset_batch(ctx, again, (int64_t[]){ 1, 0 }, 2, &b));
        CHECK(b.x[MML_MOD_IMAGE]->dtype == MML_F32 && mml_f32(b.x[MML_MOD_IMAGE])[1] == 51 / 255.0f &&
              mml_f32(b.x[MML_MOD_IMAGE])[4 + 3] == 1.0f);
        float scratch[4];
        const float *row = mml_dataset_row_f32(again, MML_MOD_IMAGE, 0, scratch);
        CHECK(row == scratch && row[2] == 128 / 255.0f);
        mml_ctx_free(ctx);
    }
    mml_dataset_free(again);
    /* The float cache is still there: the keys differ. */
    f.extract = toy_extract;
    f.spec[MML_MOD_IMAGE].stored_u8 = false;
    CHECK_OK(mml_dataset_build(m, &f, &opt, &again));
    CHECK(again && again->from_cache && calls == 4 && ((float *)again->feat[MML_MOD_IMAGE])[2] == 128.0f);
    mml_dataset_free(again);
    mml_dataset_free(bytes);
    mml_dataset_free(floats);
    mml_manifest_free(m);
}

TEST(dataset_bytes_gather_as_the_featurizers_floats)
{
    /* Every byte value: the batch holds what image features computed before
     * they were stored as bytes, ((float)v / 255 - mean) / std with mean 0
     * and std 1, bit for bit. */
    static uint8_t feat[256], present[256];
    static int64_t rows[256];
    for (int v = 0; v < 256; v++) feat[v] = (uint8_t)v, present[v] = 1, rows[v] = v;
    mml_dataset ds = { .n = 256 };
    ds.spec[MML_MOD_IMAGE] = (mml_feature_spec){ .enabled = true, .dtype = MML_F32, .ndim = 1, .shape = { 1 },
                                                 .seq_axis = -1, .stored_u8 = true };
    ds.row_numel[MML_MOD_IMAGE] = 1;
    ds.feat[MML_MOD_IMAGE] = feat;
    ds.present[MML_MOD_IMAGE] = present;
    mml_ctx *ctx = mml_ctx_create();
    mml_batch b;
    CHECK_OK(mml_dataset_batch(ctx, &ds, rows, 256, &b));
    volatile float mean = 0.0f, std = 1.0f, div = 255.0f; /* computed at run time, as the featurizer does */
    int bad = 0;
    for (int v = 0; b.x[MML_MOD_IMAGE] && v < 256; v++) {
        float want = ((float)v / div - mean) / std, got = mml_f32(b.x[MML_MOD_IMAGE])[v];
        bad += memcmp(&want, &got, sizeof want) != 0;
    }
    CHECK_MSG(bad == 0, "%d byte values gathered as other floats", bad);
    mml_ctx_free(ctx);
}

/* Audio-like [3, 5] rows, sequence axis 1: file "n v" gives steps t < n the
 * value v + 10 * o + t; "n v x" also a stray x at the last step of row 1. */
static mml_status toy_extract_seq(void *user, const mml_sample *s, mml_modality m, void *out, int64_t *len)
{
    (void)user, (void)m;
    int n = 0;
    float v = 0.0f, x = 0.0f, *o = out;
    FILE *f = fopen(s->path[MML_MOD_AUDIO], "r");
    if (!f) return mml_error(MML_ERR_IO, "%s: cannot open", s->path[MML_MOD_AUDIO]);
    int got = fscanf(f, "%d %f %f", &n, &v, &x);
    fclose(f);
    for (int r = 0; r < 3; r++)
        for (int t = 0; t < n; t++) o[r * 5 + t] = v + 10.0f * (float)r + (float)t;
    if (got == 3) o[1 * 5 + 4] = x;
    *len = n;
    return MML_OK;
}

TEST(dataset_keeps_sequences_compact_and_gathers_them_padded)
{
    static const char *const files[4] = { "2 1", "5 2", "0 0", "1 3 9" };
    static float want[4][15];
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "seq%d.txt", i);
        write_file(name, files[i]);
    }
    mml_manifest *m = manifest_of("seq.jsonl",
                                  "{\"id\":\"s0\",\"audio\":\"seq0.txt\",\"label\":0}\n{\"id\":\"s1\",\"audio\":\"seq1.txt\",\"label\":1}\n"
                                  "{\"id\":\"s2\",\"audio\":\"seq2.txt\",\"label\":0}\n{\"id\":\"s3\",\"audio\":\"seq3.txt\",\"label\":1}\n");
    char cache[512];
    if (!m) return;
    mml_sample s = { 0 };
    for (int i = 0; i < 4; i++) {
        int64_t len;
        char p[512], name[32];
        snprintf(name, sizeof name, "seq%d.txt", i);
        s.path[MML_MOD_AUDIO] = tst_tmp_path(name, p, sizeof p);
        toy_extract_seq(NULL, &s, MML_MOD_AUDIO, want[i], &len);
    }
    mml_featurizer f = { .extract = toy_extract_seq, .params = "toy seq v1" };
    f.spec[MML_MOD_AUDIO] = (mml_feature_spec){ true, MML_F32, 2, { 3, 5 }, 1 };
    mml_dataset_options opt = mml_dataset_options_default();
    opt.cache_dir = tst_tmp_path("cache_seq", cache, sizeof cache);
    mml_dataset *ds = NULL, *again = NULL;
    CHECK_OK(mml_dataset_build(m, &f, &opt, &ds));
    CHECK_OK(mml_dataset_build(m, &f, &opt, &again));
    CHECK(again && again->from_cache);
    mml_ctx *ctx = mml_ctx_create();
    for (int k = 0; ds && again && k < 2; k++) {
        const mml_dataset *d = k ? again : ds;
        /* Stored: 3 * (2 + 5 + 0 + 5) floats; the stray value keeps row 3 whole. */
        CHECK(d->offset[MML_MOD_AUDIO] && d->offset[MML_MOD_AUDIO][4] == 36);
        mml_batch b;
        CHECK_OK(mml_dataset_batch(ctx, d, (int64_t[]){ 3, 0, 2, 1 }, 4, &b));
        static const int order[4] = { 3, 0, 2, 1 };
        for (int i = 0; i < 4; i++) CHECK(!memcmp(mml_f32(b.x[MML_MOD_AUDIO]) + i * 15, want[order[i]], sizeof want[0]));
        CHECK(mml_i32(b.length[MML_MOD_AUDIO])[0] == 1 && mml_i32(b.length[MML_MOD_AUDIO])[3] == 5);
        float scratch[15];
        CHECK(!memcmp(mml_dataset_row_f32(d, MML_MOD_AUDIO, 0, scratch), want[0], sizeof want[0]));
        mml_ctx_reset(ctx);
    }
    mml_ctx_free(ctx);
    mml_dataset_free(again);
    mml_dataset_free(ds);
    mml_manifest_free(m);
}
