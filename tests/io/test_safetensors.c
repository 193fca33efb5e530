#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/safetensors.h"
#include "test.h"

TEST(safetensors_roundtrip_all_dtypes)
{
    char path[512];
    tst_tmp_path("rt.safetensors", path, sizeof path);
    mml_tensor *f = mml_tensor_create(MML_F32, 2, (int64_t[]){ 2, 3 }, false);
    for (int i = 0; i < 6; i++) mml_f32(f)[i] = (float)i * 0.5f - 1.0f;
    int64_t ids[4] = { -3, 0, 7, 1LL << 40 };
    uint8_t u8[3] = { 0, 128, 255 };
    mml_st_writer *w = mml_st_writer_create();
    CHECK_OK(mml_st_writer_add(w, "w", f, MML_F32));
    CHECK_OK(mml_st_writer_add(w, "w16", f, MML_F16));
    CHECK_OK(mml_st_writer_add(w, "wbf", f, MML_BF16));
    CHECK_OK(mml_st_writer_add_raw(w, "ids", MML_I64, 1, (int64_t[]){ 4 }, ids));
    CHECK_OK(mml_st_writer_add_raw(w, "u8", MML_U8, 1, (int64_t[]){ 3 }, u8));
    CHECK_OK(mml_st_writer_meta(w, "config", "{\"a\":1}"));
    CHECK_OK(mml_st_writer_save(w, path));
    mml_st_writer_free(w);

    mml_safetensors *st = NULL;
    CHECK_OK(mml_safetensors_load(path, &st));
    if (!st) return;
    CHECK(mml_safetensors_count(st) == 5);
    CHECK(strcmp(mml_safetensors_meta(st, "config"), "{\"a\":1}") == 0);
    for (int k = 0; k < 3; k++) {
        const char *names[] = { "w", "w16", "wbf" };
        mml_tensor *g = mml_safetensors_tensor(st, names[k], MML_F32);
        CHECK(g && g->ndim == 2 && g->shape[1] == 3);
        if (g) CHECK_CLOSE(names[k], mml_f32(g), mml_f32(f), 6, 0, 0);
        mml_tensor_free(g);
    }
    mml_tensor *gi = mml_safetensors_tensor(st, "ids", MML_I64);
    CHECK(gi && mml_i64(gi)[3] == (1LL << 40) && mml_i64(gi)[0] == -3);
    mml_tensor_free(gi);
    CHECK(mml_safetensors_tensor(st, "ids", MML_I32) == NULL); /* 2^40 does not fit */
    CHECK(mml_safetensors_tensor(st, "missing", MML_F32) == NULL);
    CHECK(strstr(mml_last_error(), "missing") != NULL);
    mml_safetensors_free(st);
    mml_tensor_free(f);
}

/* A mapped file reads as a loaded one; dropping its pages loses nothing (they
 * come back from the page cache); a short, missing or corrupt file gets the
 * same errors, naming it. */
TEST(safetensors_map_reads_as_load)
{
    char path[512], bad_path[512];
    tst_tmp_path("map.safetensors", path, sizeof path);
    enum { N = 5000 };
    static float v[N];
    for (int i = 0; i < N; i++) v[i] = (float)i * 0.25f;
    mml_st_writer *w = mml_st_writer_create();
    CHECK_OK(mml_st_writer_add_raw(w, "v", MML_F32, 1, (int64_t[]){ N }, v));
    CHECK_OK(mml_st_writer_meta(w, "k", "x"));
    CHECK_OK(mml_st_writer_save(w, path));
    mml_st_writer_free(w);
    mml_safetensors *st = NULL;
    CHECK_OK(mml_safetensors_map(path, &st));
    if (st) {
        const mml_st_entry *e = mml_safetensors_find(st, "v");
        CHECK(e && e->nbytes == sizeof v && !memcmp(e->data, v, sizeof v));
        CHECK(!strcmp(mml_safetensors_meta(st, "k"), "x"));
        if (e) mml_safetensors_drop(st, (const char *)e->data + 100, 9000);
        CHECK(e && !memcmp(e->data, v, sizeof v));
        mml_safetensors_free(st);
    }
    FILE *f = fopen(tst_tmp_path("map_bad.safetensors", bad_path, sizeof bad_path), "wb");
    fwrite("\x10\0\0\0\0\0\0\0{\"a\":", 1, 13, f);
    fclose(f);
    CHECK(mml_safetensors_map(bad_path, &st) == MML_ERR_FORMAT && st == NULL);
    CHECK(strstr(mml_last_error(), "map_bad.safetensors") != NULL);
    f = fopen(bad_path, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    CHECK(mml_safetensors_map(bad_path, &st) == MML_ERR_FORMAT && strstr(mml_last_error(), "too short"));
    CHECK(mml_safetensors_map("/nonexistent/x.safetensors", &st) == MML_ERR_IO &&
          strstr(mml_last_error(), "/nonexistent/x.safetensors"));
}

static mml_status parse_header_text(const char *json, size_t data_len)
{
    size_t hl = strlen(json), n = 8 + hl + data_len;
    unsigned char *buf = mml_calloc(n, 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, json, hl);
    mml_safetensors *st = NULL;
    mml_status rc = mml_safetensors_parse(buf, n, "bad.safetensors", &st);
    mml_safetensors_free(st);
    mml_free(buf);
    return rc;
}

TEST(safetensors_rejects_bad_headers)
{
    const char *cases[] = {
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}",   /* past end */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",    /* shape vs offsets */
        "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}",     /* unknown dtype */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",   /* overlap */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]",                            /* invalid JSON */
        "[1,2]",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mml_status rc = parse_header_text(cases[i], 8);
        CHECK_MSG(rc == MML_ERR_FORMAT, "case %zu accepted: %s", i, cases[i]);
        CHECK(strstr(mml_last_error(), "bad.safetensors") != NULL);
    }
    /* header length beyond the file */
    unsigned char buf[16] = { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}' };
    mml_safetensors *st = NULL;
    CHECK(mml_safetensors_parse(buf, sizeof buf, "short", &st) == MML_ERR_FORMAT);
    CHECK(mml_safetensors_parse(buf, 4, "short", &st) == MML_ERR_FORMAT);
    CHECK(parse_header_text("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8) ==
          MML_OK);
}

TEST(safetensors_fuzz_corpus_never_crashes)
{
    /* Every seed and regression input of the fuzz target goes through the
     * parser in the normal suite too (and so under ASan in test-sanitize). */
    char cmd[1024], path[1024];
    snprintf(cmd, sizeof cmd, "ls %s/tests/fuzz/corpus/safetensors", MML_SOURCE_DIR);
    FILE *p = popen(cmd, "r");
    int n = 0;
    while (p && fgets(path, sizeof path, p)) {
        path[strcspn(path, "\n")] = '\0';
        char full[2048];
        snprintf(full, sizeof full, "%s/tests/fuzz/corpus/safetensors/%s", MML_SOURCE_DIR, path);
        mml_safetensors *st = NULL;
        if (mml_safetensors_load(full, &st) == MML_OK) mml_safetensors_free(st);
        n++;
    }
    if (p) pclose(p);
    CHECK(n >= 3);
}

TEST(cli_inspect_safetensors_and_bad_files)
{
    char path[512], out[4096], args[1200];
    tst_tmp_path("inspect.safetensors", path, sizeof path);
    mml_tensor *t = mml_tensor_create(MML_F32, 2, (int64_t[]){ 3, 4 }, false);
    mml_st_writer *w = mml_st_writer_create();
    CHECK_OK(mml_st_writer_add(w, "encoder.weight", t, MML_F32));
    CHECK_OK(mml_st_writer_save(w, path));
    mml_st_writer_free(w);
    mml_tensor_free(t);
    snprintf(args, sizeof args, "inspect '%s'", path);
    CHECK(tst_run_cli(args, out, sizeof out) == 0);
    CHECK(strstr(out, "encoder.weight") && strstr(out, "[3, 4]") && strstr(out, "F32"));

    /* Truncated: header length beyond the file. */
    char bad[512];
    tst_tmp_path("bad.safetensors", bad, sizeof bad);
    FILE *f = fopen(bad, "wb");
    fwrite("\xff\x00\x00\x00\x00\x00\x00\x00{}", 1, 10, f);
    fclose(f);
    snprintf(args, sizeof args, "inspect '%s'", bad);
    CHECK(tst_run_cli(args, out, sizeof out) == 1);
    CHECK(strstr(out, "bad.safetensors") && strstr(out, "header length"));
    CHECK(tst_run_cli("inspect /nonexistent/file", out, sizeof out) == 1);
    CHECK(tst_run_cli("inspect", out, sizeof out) == 2);
}
