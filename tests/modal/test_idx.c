#include <string.h>
#include <zlib.h>

#include "mml/alloc.h"
#include "mml/idx.h"
#include "test.h"

TEST(idx_reads_real_mnist_gzip)
{
    char path[1024];
    tst_dataset_path("mnist-t10k/t10k-images-idx3-ubyte.gz", path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("    (skipped: %s not present)\n", path);
        return;
    }
    fclose(f);
    mml_tensor *img = mml_idx_load(path);
    CHECK_MSG(img != NULL, "%s", mml_last_error());
    if (img) {
        CHECK(img->dtype == MML_U8 && img->ndim == 3 && img->shape[0] == 10000 && img->shape[1] == 28);
        uint64_t sum = 0;
        for (int64_t i = 0; i < img->numel; i++) sum += ((uint8_t *)img->data)[i];
        CHECK(sum > 0);
    }
    tst_dataset_path("mnist-t10k/t10k-labels-idx1-ubyte.gz", path, sizeof path);
    mml_tensor *lab = mml_idx_load(path);
    CHECK(lab && lab->ndim == 1 && lab->shape[0] == 10000);
    /* The first test digit of MNIST is a 7, the second a 2. */
    if (lab) CHECK(((uint8_t *)lab->data)[0] == 7 && ((uint8_t *)lab->data)[1] == 2);
    mml_tensor_free(img);
    mml_tensor_free(lab);
}

static size_t make_idx(unsigned char *buf, int code, int ndim, const uint32_t *dims, const void *data, size_t bytes)
{
    buf[0] = buf[1] = 0;
    buf[2] = (unsigned char)code;
    buf[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++) buf[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    memcpy(buf + 4 + 4 * ndim, data, bytes);
    return 4 + 4 * (size_t)ndim + bytes;
}

TEST(idx_types_and_broken_files)
{
    unsigned char buf[256];
    unsigned char i16[4] = { 0xff, 0xfe, 0x01, 0x00 }; /* -2, 256 big-endian */
    size_t n = make_idx(buf, 0x0B, 1, (uint32_t[]){ 2 }, i16, 4);
    mml_tensor *t = mml_idx_parse(buf, n, "i16.idx");
    CHECK(t && t->dtype == MML_I32 && mml_i32(t)[0] == -2 && mml_i32(t)[1] == 256);
    mml_tensor_free(t);
    unsigned char f32[4] = { 0x3f, 0xc0, 0, 0 }; /* 1.5 */
    n = make_idx(buf, 0x0D, 1, (uint32_t[]){ 1 }, f32, 4);
    t = mml_idx_parse(buf, n, "f.idx");
    CHECK(t && t->dtype == MML_F32 && mml_f32(t)[0] == 1.5f);
    mml_tensor_free(t);

    unsigned char px[6] = { 1, 2, 3, 4, 5, 6 };
    n = make_idx(buf, 0x08, 2, (uint32_t[]){ 2, 3 }, px, 6);
    CHECK(mml_idx_parse(buf, n - 1, "short.idx") == NULL && strstr(mml_last_error(), "short.idx: IDX file has"));
    CHECK(mml_idx_parse(buf, n + 1, "long.idx") == NULL);
    buf[2] = 0x42;
    CHECK(mml_idx_parse(buf, n, "type.idx") == NULL && strstr(mml_last_error(), "unknown IDX data type"));
    n = make_idx(buf, 0x08, 3, (uint32_t[]){ 100000, 100000, 100000 }, px, 6);
    CHECK(mml_idx_parse(buf, n, "huge.idx") == NULL && strstr(mml_last_error(), "more than 4 GiB"));
    CHECK(mml_idx_parse("\x01\x02", 2, "magic.idx") == NULL && strstr(mml_last_error(), "bad magic"));

    /* gzip bomb: the header declares 2x3 bytes, the stream inflates to 1 MiB. */
    size_t big = 1 << 20;
    unsigned char *plain = mml_calloc(big, 1), *gz = mml_malloc(big);
    make_idx(plain, 0x08, 2, (uint32_t[]){ 2, 3 }, px, 6);
    z_stream z = { 0 };
    deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    z.next_in = plain;
    z.avail_in = (uInt)big;
    z.next_out = gz;
    z.avail_out = (uInt)big;
    deflate(&z, Z_FINISH);
    size_t gz_len = z.total_out;
    deflateEnd(&z);
    t = mml_idx_parse(gz, gz_len, "bomb.idx.gz");
    CHECK_MSG(t == NULL && strstr(mml_last_error(), "declares"), "%s", mml_last_error());
    CHECK(mml_idx_parse(gz, gz_len / 2, "cut.idx.gz") == NULL);

    /* A tiny stream declaring 1000 x 1000 x 1000 bytes is refused without
     * allocating them (found by fuzz_idx). */
    size_t hn = make_idx(plain, 0x08, 3, (uint32_t[]){ 1000, 1000, 1000 }, px, 6);
    z_stream z2 = { 0 };
    deflateInit2(&z2, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    z2.next_in = plain;
    z2.avail_in = (uInt)hn;
    z2.next_out = gz;
    z2.avail_out = (uInt)big;
    deflate(&z2, Z_FINISH);
    gz_len = z2.total_out;
    deflateEnd(&z2);
    uint64_t allocs = mml_alloc_count();
    CHECK(mml_idx_parse(gz, gz_len, "liar.idx.gz") == NULL && strstr(mml_last_error(), "declares 1000000016"));
    CHECK(mml_alloc_count() - allocs < 8);
    mml_free(plain);
    mml_free(gz);
    CHECK(mml_idx_load("/nonexistent.idx") == NULL && strstr(mml_last_error(), "cannot open"));
}
