/* .npy and .npz files written by NumPy (tests/reference/gen_npy.py), and a
 * corpus of broken ones each refused with a message naming the problem. */
#include <string.h>

#include "mml/npy.h"
#include "test.h"

static mml_tensor *load(const char *name, int as)
{
    char rel[128], path[1024];
    snprintf(rel, sizeof rel, "npy/%s", name);
    return mml_npy_load(tst_fixture_path(rel, path, sizeof path), as, NULL);
}

static mml_npz *open_npz(const char *name)
{
    char rel[128], path[1024];
    snprintf(rel, sizeof rel, "npy/%s", name);
    mml_npz *z = NULL;
    mml_npz_open(tst_fixture_path(rel, path, sizeof path), &z);
    return z;
}

static bool same_shape(const mml_tensor *t, const mml_safetensors *fx, const char *key)
{
    const mml_st_entry *e = mml_safetensors_find(fx, key);
    bool ok = t && e && t->ndim == e->ndim;
    for (int d = 0; ok && d < e->ndim; d++) ok = t->shape[d] == e->shape[d];
    return ok;
}

TEST(npy_reads_every_dtype_and_version_numpy_writes)
{
    mml_safetensors *fx = tst_fixture("npy.safetensors");
    if (!fx) return;
    const char *files[] = { "f4.npy", "f8.npy", "f2.npy", "i4.npy", "i2.npy", "u2.npy", "u1.npy", "b1.npy",
                            "fortran.npy", "v2.npy", "v3.npy", "empty.npy" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        mml_tensor *t = load(files[i], MML_F32);
        CHECK_MSG(same_shape(t, fx, files[i]), "%s: %s", files[i], t ? "shape differs" : mml_last_error());
        if (t && t->numel) CHECK_FIXTURE(fx, files[i], mml_f32(t), t->numel, 0, 0);
        mml_tensor_free(t);
    }
    mml_tensor *s = load("scalar.npy", MML_F32); /* shape (): a 0-d tensor */
    CHECK(s && s->ndim == 0 && s->numel == 1 && mml_f32(s)[0] == 2.5f);
    mml_tensor_free(s);
    /* Integer labels stay exact as I64; I32 refuses what does not fit. */
    mml_tensor *t = load("i8.npy", MML_I64), *want = mml_safetensors_tensor(fx, "i8.npy", MML_I64);
    CHECK(t && want && t->numel == 4 && !memcmp(t->data, want->data, 32));
    mml_tensor_free(t);
    mml_tensor_free(want);
    CHECK(load("i8.npy", MML_I32) == NULL && strstr(mml_last_error(), "does not fit I32"));
    t = load("i4.npy", MML_NPY_NATIVE);
    CHECK(t && t->dtype == MML_I32 && mml_i32(t)[0] == -3 && mml_i32(t)[5] == 2);
    mml_tensor_free(t);
    t = load("u1.npy", MML_NPY_NATIVE);
    CHECK(t && t->dtype == MML_U8 && ((uint8_t *)t->data)[9] == 225);
    mml_tensor_free(t);
    t = load("b1.npy", MML_U8);
    CHECK(t && t->dtype == MML_U8 && ((uint8_t *)t->data)[0] == 1 && ((uint8_t *)t->data)[1] == 0);
    mml_tensor_free(t);
    CHECK(load("f4.npy", MML_I64) == NULL && strstr(mml_last_error(), "'<f4' array cannot be loaded as I64"));
    mml_npy_info info;
    char path[1024];
    unsigned char buf[512];
    FILE *f = fopen(tst_fixture_path("npy/fortran.npy", path, sizeof path), "rb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK_OK(mml_npy_header(buf, n, "fortran.npy", &info));
    CHECK(info.fortran_order && info.ndim == 2 && info.shape[0] == 3 && info.shape[1] == 4 && !strcmp(info.descr, "<f4"));
    mml_safetensors_free(fx);
}

TEST(npz_lists_and_loads_members_stored_and_deflated)
{
    mml_safetensors *fx = tst_fixture("npy.safetensors");
    if (!fx) return;
    mml_npz *z = open_npz("stored.npz");
    CHECK(z && mml_npz_count(z) == 2 && !strcmp(mml_npz_name(z, 0), "x.npy") && !strcmp(mml_npz_name(z, 1), "y.npy"));
    mml_tensor *x = z ? mml_npz_load(z, "x", MML_F32) : NULL, *y = z ? mml_npz_load(z, "y.npy", MML_I64) : NULL;
    CHECK(x && CHECK_FIXTURE(fx, "npz.x", mml_f32(x), x->numel, 0, 0));
    CHECK(y && y->numel == 3 && mml_i64(y)[0] == 1 && mml_i64(y)[2] == 2);
    CHECK(z && mml_npz_load(z, "w", MML_F32) == NULL && strstr(mml_last_error(), "stored.npz: no member named 'w'"));
    mml_tensor_free(x);
    mml_tensor_free(y);
    mml_npz_free(z);
    z = open_npz("deflate.npz");
    mml_npy_info info;
    x = z ? mml_npz_load(z, "x", MML_F32) : NULL;
    mml_tensor *l = z ? mml_npz_load_at(z, 1, MML_NPY_NATIVE, &info) : NULL;
    CHECK(x && CHECK_FIXTURE(fx, "npz.x", mml_f32(x), x->numel, 0, 0));
    CHECK(l && l->dtype == MML_I64 && l->numel == 10 && mml_i64(l)[4] == 1 && !strcmp(info.descr, "<i8"));
    mml_tensor_free(x);
    mml_tensor_free(l);
    mml_npz_free(z);
    mml_safetensors_free(fx);
}

TEST(npy_npz_refuse_broken_files_by_name)
{
    struct { const char *file, *want; } npy[] = {
        { "truncated.npy", "the header's shape needs 96 bytes of data, the file holds 91" },
        { "wrong_magic.npy", "not a .npy file" },
        { "huge_shape.npy", "shape declares more than" },
        { "lies_size.npy", "needs 40000 bytes of data, the file holds 64" },
        { "big_endian.npy", "big-endian dtype '>f4'" },
        { "eval.npy", "'descr' must be a short string" },
        { "extra_key.npy", "unknown key" },
        { "object.npy", "dtype '|O' is not supported" },
        { "version9.npy", "format version 9.0" },
        { "long_header.npy", "header length 1073741824" },
    };
    for (size_t i = 0; i < sizeof npy / sizeof npy[0]; i++) {
        mml_tensor *t = load(npy[i].file, MML_F32);
        CHECK_MSG(!t && strstr(mml_last_error(), npy[i].file) && strstr(mml_last_error(), npy[i].want), "%s: %s",
                  npy[i].file, mml_last_error());
        mml_tensor_free(t);
    }
    struct { const char *file, *member, *want; } npz[] = {
        { "truncated.npz", NULL, "no end of central directory" },
        { "not_zip.npz", NULL, "no end of central directory" },
        { "bad_crc.npz", "x", "x.npy: CRC-32 mismatch" },
        { "bomb.npz", "x", "x.npy: declared size 3221225472 bytes" },
        { "inflates_past.npz", "x", "x.npy: deflate data inflates past its declared size of 50" },
    };
    for (size_t i = 0; i < sizeof npz / sizeof npz[0]; i++) {
        mml_npz *z = open_npz(npz[i].file);
        mml_tensor *t = z && npz[i].member ? mml_npz_load(z, npz[i].member, MML_F32) : NULL;
        CHECK_MSG(!t && (npz[i].member != NULL) == (z != NULL) && strstr(mml_last_error(), npz[i].file) &&
                      strstr(mml_last_error(), npz[i].want), "%s: %s", npz[i].file, mml_last_error());
        mml_npz_free(z);
    }
}

TEST(npz_refuses_a_member_without_its_local_header)
{
    char path[1024];
    unsigned char buf[2048];
    FILE *f = fopen(tst_fixture_path("npy/stored.npz", path, sizeof path), "rb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    unsigned char *cd = NULL;
    int seen = 0;
    for (size_t i = 0; i + 46 <= n && !cd; i++) /* the second central directory entry */
        if (!memcmp(buf + i, "PK\x01\x02", 4) && ++seen == 2) cd = buf + i;
    CHECK(cd != NULL);
    if (!cd) return;
    memcpy(cd + 42, "\xf0\xff\xff\x0f", 4);
    mml_npz *z = NULL;
    CHECK(mml_npz_parse(buf, n, "mem.npz", &z) != MML_OK && !z && strstr(mml_last_error(), "mem.npz: y.npy: no local header"));
}

TEST(cli_inspect_shows_npy_and_npz)
{
    char out[4096], path[1024], args[1200];
    snprintf(args, sizeof args, "inspect '%s'", tst_fixture_path("npy/fortran.npy", path, sizeof path));
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0 && strstr(out, ".npy 1.0, <f4 [3, 4] (Fortran order)"), "%s", out);
    snprintf(args, sizeof args, "inspect '%s'", tst_fixture_path("npy/deflate.npz", path, sizeof path));
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0 && strstr(out, ".npz, 2 members") && strstr(out, "x.npy") &&
                  strstr(out, "<i8 [10]"), "%s", out);
    snprintf(args, sizeof args, "inspect '%s'", tst_fixture_path("npy/bad_crc.npz", path, sizeof path));
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "CRC-32"), "%s", out);
}
