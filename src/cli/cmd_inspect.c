/* mml inspect FILE...: says what a file holds. The format is recognised by its
 * content (magic bytes), not its name; a malformed file gives one error line
 * naming it and exit status 1. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/manifest.h"
#include "mml/safetensors.h"

static const char *USAGE = "mml inspect FILE...";

static int inspect_safetensors(const char *path)
{
    mml_safetensors *st;
    if (mml_safetensors_load(path, &st) != MML_OK) return cli_fail(NULL);
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

static int inspect_one(const char *path)
{
    if (first_byte(path) == '{' && ends_with(path, ".jsonl")) return inspect_manifest(path);
    return inspect_safetensors(path);
}

int cmd_inspect(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nLists what each file holds: for safetensors, every tensor's name, "
               "dtype and shape, and the metadata; for a JSONL manifest, samples per modality "
               "and per label.\n", USAGE);
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
