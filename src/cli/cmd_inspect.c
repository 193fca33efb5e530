/* mml inspect FILE...: says what a file holds. The format is recognised by its
 * content (magic bytes), not its name; a malformed file gives one error line
 * naming it and exit status 1. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/audio.h"
#include "mml/config.h"
#include "mml/idx.h"
#include "mml/image.h"
#include "mml/manifest.h"
#include "mml/npy.h"
#include "mml/safetensors.h"

static const char *USAGE = "mml inspect FILE...";

static int inspect_safetensors(const char *path)
{
    mml_safetensors *st;
    if (mml_safetensors_map(path, &st) != MML_OK) return cli_fail(NULL);
    int n = mml_safetensors_count(st);
    int64_t total = 0;
    printf("%s: safetensors, %d tensors\n", path, n);
    for (int i = 0; i < n; i++) {
        const mml_st_entry *e = mml_safetensors_at(st, i);
        char shape[160];
        size_t k = (size_t)snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < e->ndim && k < sizeof shape; d++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, d ? ", %lld" : "%lld",
                                  (long long)e->shape[d]);
        if (k < sizeof shape) snprintf(shape + k, sizeof shape - k, "]");
        printf("  %-40s %-5s %s\n", e->name, mml_dtype_name(e->dtype), shape);
        total += (int64_t)(e->nbytes / mml_dtype_size(e->dtype));
    }
    printf("  %lld elements\n", (long long)total);
    for (int i = 0; i < mml_safetensors_meta_count(st); i++) {
        const char *key = mml_safetensors_meta_key(st, i), *val = mml_safetensors_meta(st, key);
        printf("  metadata %s: %.*s%s\n", key, 200, val, strlen(val) > 200 ? "..." : "");
    }
    mml_safetensors_free(st);
    return CLI_OK;
}

static int inspect_manifest(const char *path)
{
    mml_manifest *m;
    if (mml_manifest_load(path, &m) != MML_OK) return cli_fail(NULL);
    printf("%s: manifest, %lld samples\n", path, (long long)m->n);
    for (int mod = 0; mod < MML_MOD_COUNT; mod++) {
        int64_t have = 0;
        for (int64_t i = 0; i < m->n; i++) have += m->samples[i].has[mod];
        printf("  %-6s %lld present, %lld missing\n", mml_modality_name((mml_modality)mod),
               (long long)have, (long long)(m->n - have));
    }
    char **names;
    int n = mml_manifest_classes(m, "label", &names);
    if (n > 0) {
        printf("  %d classes:", n);
        for (int c = 0; c < n; c++) {
            int64_t count = 0;
            for (int64_t i = 0; i < m->n; i++) {
                const char *l = m->samples[i].label;
                count += l && !strcmp(l, names[c]);
            }
            printf(" %s=%lld", names[c], (long long)count);
        }
        printf("\n");
        mml_classes_free(names, n);
    } else {
        printf("  labels: %s\n", mml_last_error());
    }
    mml_manifest_free(m);
    return CLI_OK;
}

/* First non-blank byte of the file: '{' means a JSON document. */
static int first_byte(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return EOF;
    int c;
    while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\r' || c == '\t') {}
    fclose(f);
    return c;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int inspect_wav(const char *path)
{
    mml_audio a;
    if (mml_wav_load(path, &a) != MML_OK) return cli_fail(NULL);
    printf("%s: WAV, %d Hz, %d channel%s, %d-bit, %lld samples, %.3f s\n", path, a.rate, a.channels,
           a.channels > 1 ? "s" : "", a.bits, (long long)a.n, (double)a.n / a.rate);
    mml_audio_free(&a);
    return CLI_OK;
}

static int inspect_idx(const char *path)
{
    mml_tensor *t = mml_idx_load(path);
    if (!t) return cli_fail(NULL);
    char shape[96];
    printf("%s: IDX, %s %s", path, mml_dtype_name(t->dtype), mml_shape_str(t, shape, sizeof shape));
    if (t->ndim == 1 && t->dtype == MML_U8) { /* labels: counts per value */
        int64_t counts[256] = { 0 };
        for (int64_t i = 0; i < t->numel; i++) counts[((uint8_t *)t->data)[i]]++;
        printf(", labels:");
        for (int v = 0; v < 256; v++)
            if (counts[v]) printf(" %d=%lld", v, (long long)counts[v]);
    }
    printf("\n");
    mml_tensor_free(t);
    return CLI_OK;
}

static int inspect_image(const char *path)
{
    mml_tensor *t = mml_image_load(path, 0);
    if (!t) return cli_fail(NULL);
    printf("%s: image, %lld x %lld pixels, %lld channel%s\n", path, (long long)t->shape[2], (long long)t->shape[1],
           (long long)t->shape[0], t->shape[0] > 1 ? "s" : "");
    mml_tensor_free(t);
    return CLI_OK;
}

static int inspect_config(const char *path)
{
    mml_config *cfg;
    if (mml_config_load(path, &cfg) != MML_OK) return cli_fail(NULL);
    mml_cfg_node root = mml_config_root(cfg), model, layers;
    printf("%s: JSON configuration", path);
    if (mml_cfg_object(&root, "model", false, &model) == MML_OK && mml_cfg_present(&model) &&
        mml_cfg_array(&model, "layers", false, &layers) == MML_OK)
        printf(", model with %d layers", mml_cfg_len(&layers));
    printf("\n");
    mml_config_free(cfg);
    return CLI_OK;
}

static void print_npy(const mml_npy_info *h)
{
    printf(".npy %d.0, %s [", h->version, h->descr);
    for (int d = 0; d < h->ndim; d++) printf(d ? ", %lld" : "%lld", (long long)h->shape[d]);
    printf("]%s\n", h->fortran_order ? " (Fortran order)" : "");
}

static int inspect_npy(const char *path)
{
    mml_npy_info info;
    mml_tensor *t = mml_npy_load(path, MML_NPY_NATIVE, &info); /* the whole file is checked, not just its header */
    if (!t) return cli_fail(NULL);
    printf("%s: ", path);
    print_npy(&info);
    mml_tensor_free(t);
    return CLI_OK;
}

static int inspect_npz(const char *path)
{
    mml_npz *z;
    if (mml_npz_open(path, &z) != MML_OK) return cli_fail(NULL);
    int n = mml_npz_count(z), rc = CLI_OK;
    printf("%s: .npz, %d member%s\n", path, n, n == 1 ? "" : "s");
    for (int i = 0; i < n && rc == CLI_OK; i++) {
        mml_npy_info info;
        mml_tensor *t = mml_npz_load_at(z, i, MML_NPY_NATIVE, &info);
        if (!t) rc = cli_fail(NULL);
        else {
            printf("  %-32s ", mml_npz_name(z, i));
            print_npy(&info);
        }
        mml_tensor_free(t);
    }
    mml_npz_free(z);
    return rc;
}

/* The format from the first bytes: RIFF/WAVE, IDX (also gzip-compressed), image
 * magics, .npy (\x93NUMPY), .npz (zip), JSON ({ then .jsonl: manifest), else safetensors. */
static int inspect_one(const char *path)
{
    unsigned char m[12] = { 0 };
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(m, 1, sizeof m, f) : 0;
    if (f) fclose(f);
    if (n >= 12 && !memcmp(m, "RIFF", 4) && !memcmp(m + 8, "WAVE", 4)) return inspect_wav(path);
    if ((n >= 4 && !m[0] && !m[1] && m[2] >= 0x08 && m[2] <= 0x0E) || (n >= 2 && m[0] == 0x1f && m[1] == 0x8b))
        return inspect_idx(path);
    bool png = n >= 4 && !memcmp(m, "\x89PNG", 4), jpg = n >= 2 && m[0] == 0xFF && m[1] == 0xD8;
    bool gif = n >= 3 && !memcmp(m, "GIF", 3), bmp = n >= 2 && !memcmp(m, "BM", 2);
    bool pnm = n >= 2 && m[0] == 'P' && m[1] >= '1' && m[1] <= '6';
    if (png || jpg || gif || bmp || pnm) return inspect_image(path);
    if (mml_npy_sniff(m, n)) return inspect_npy(path);
    if (mml_npz_sniff(m, n)) return inspect_npz(path);
    if (first_byte(path) == '{') return ends_with(path, ".jsonl") ? inspect_manifest(path) : inspect_config(path);
    return inspect_safetensors(path);
}

int cmd_inspect(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nRecognises safetensors, JSONL manifests, JSON configs, WAV, IDX "
               "(plain or gzip),\nimages (PNG, JPEG, BMP, PGM/PPM, GIF), NumPy .npy and .npz by their content and prints "
               "what they hold;\na malformed file gives one error line naming it and exit status 1.\n", USAGE);
        return CLI_OK;
    }
    if (argc < 2) return cli_usage(USAGE, "no file given");
    int rc = CLI_OK;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "mml: %s: cannot open\n", argv[i]);
            rc = CLI_FAIL;
            continue;
        }
        fclose(f);
        if (inspect_one(argv[i]) != CLI_OK) rc = CLI_FAIL;
    }
    return rc;
}
