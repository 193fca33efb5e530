/* The classification slice through the command line, on tiny IDX files the
 * test writes: training is deterministic for a seed, a saved model evaluates
 * to the same result after loading, and bad configs fail with the key named. */
#include <string.h>

#include "mml/alloc.h"
#include "mml/model.h"
#include "mml/rng.h"
#include "test.h"

#define N_IMG 120

static void write_idx(const char *path, int ndim, const uint32_t *dims, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    unsigned char head[4] = { 0, 0, 0x08, (unsigned char)ndim };
    fwrite(head, 1, 4, f);
    for (int i = 0; i < ndim; i++) {
        unsigned char d[4] = { (unsigned char)(dims[i] >> 24), (unsigned char)(dims[i] >> 16), (unsigned char)(dims[i] >> 8),
                               (unsigned char)dims[i] };
        fwrite(d, 1, 4, f);
    }
    fwrite(data, 1, n, f);
    fclose(f);
}

/* Three classes of 8x8 images: a bright row, a bright column, or noise. */
static void make_data(void)
{
    uint8_t img[N_IMG * 64], lab[N_IMG];
    mml_rng r;
    mml_rng_seed(&r, 11);
    for (int s = 0; s < N_IMG; s++) {
        lab[s] = (uint8_t)(s % 3);
        int band = 1 + (int)mml_rng_below(&r, 6);
        for (int i = 0; i < 64; i++) {
            int v = (int)mml_rng_below(&r, 60);
            if ((lab[s] == 0 && i / 8 == band) || (lab[s] == 1 && i % 8 == band)) v += 180;
            img[s * 64 + i] = (uint8_t)v;
        }
    }
    char p[512];
    write_idx(tst_tmp_path("img.idx", p, sizeof p), 3, (uint32_t[]){ N_IMG, 8, 8 }, img, sizeof img);
    write_idx(tst_tmp_path("lab.idx", p, sizeof p), 1, (uint32_t[]){ N_IMG }, lab, sizeof lab);
}

static const char *CONFIG =
    "{\"data\": {\"train_images\": \"img.idx\", \"train_labels\": \"lab.idx\", \"test_images\": \"img.idx\","
    " \"test_labels\": \"lab.idx\", \"normalize\": {\"mean\": 0.3, \"std\": 0.3}},"
    " \"model\": {\"input\": [1, 8, 8], \"layers\": [%s]},"
    " \"train\": {\"epochs\": %d, \"batch_size\": 16, \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01}%s}}";

static const char *LAYERS =
    "{\"type\": \"conv2d\", \"out\": 4, \"kernel\": 3, \"padding\": 1}, {\"type\": \"batch_norm\"}, {\"type\": \"relu\"},"
    " {\"type\": \"max_pool2d\", \"kernel\": 2}, {\"type\": \"flatten\"}, {\"type\": \"dropout\", \"p\": 0.1},"
    " {\"type\": \"linear\", \"out\": 3}";

static const char *write_config(const char *name, const char *layers, int epochs, const char *extra)
{
    static char path[512];
    char text[4096];
    snprintf(text, sizeof text, CONFIG, layers, epochs, extra);
    FILE *f = fopen(tst_tmp_path(name, path, sizeof path), "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = mml_calloc(1 << 16, 1);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

TEST(cli_train_learns_is_deterministic_and_model_reloads)
{
    make_data();
    const char *cfg = write_config("tiny.json", LAYERS, 12, "");
    char out1[512], out2[512], log1[512], log2[512], args[4096], text[16384];
    tst_tmp_path("m1.safetensors", out1, sizeof out1);
    tst_tmp_path("m2.safetensors", out2, sizeof out2);
    tst_tmp_path("m1.jsonl", log1, sizeof log1);
    tst_tmp_path("m2.jsonl", log2, sizeof log2);
    snprintf(args, sizeof args, "train '%s' --out '%s' --seed 3 --threads 2 --json", cfg, out1);
    CHECK(tst_run_cli(args, text, sizeof text) == 0);
    const char *last = strrchr(text, '{');
    double acc = -1;
    CHECK_MSG(last && sscanf(last, "{\"accuracy\": %lf", &acc) == 1 && acc > 0.9, "output: %s", text);
    snprintf(args, sizeof args, "train '%s' --out '%s' --seed 3 --threads 2", cfg, out2);
    CHECK(tst_run_cli(args, text, sizeof text) == 0);
    char *a = slurp(log1), *b = slurp(log2);
    /* Same seed and threads: identical losses epoch by epoch (timings aside). */
    for (char *p = a; p && (p = strstr(p, "\"seconds\"")); p++) memset(p, ' ', strcspn(p, "}"));
    for (char *p = b; p && (p = strstr(p, "\"seconds\"")); p++) memset(p, ' ', strcspn(p, "}"));
    CHECK_MSG(a && b && !strcmp(a, b), "logs differ:\n%s\n%s", a ? a : "", b ? b : "");
    CHECK(a && strstr(a, "\"epoch\": 12"));
    mml_free(a);
    mml_free(b);

    /* The saved model, loaded again, gives the same test accuracy. */
    snprintf(args, sizeof args, "eval '%s' --json", out1);
    char cwd_cmd[4096];
    char dir[512];
    tst_tmp_path("", dir, sizeof dir);
    snprintf(cwd_cmd, sizeof cwd_cmd, "eval '%s' --data '%simg.idx' '%slab.idx' --json", out1, dir, dir);
    CHECK(tst_run_cli(cwd_cmd, text, sizeof text) == 0);
    double acc2 = -2;
    last = strrchr(text, '{');
    CHECK_MSG(last && sscanf(last, "{\"accuracy\": %lf", &acc2) == 1 && acc2 == acc, "eval: %s (train said %f)", text, acc);

    /* predict: every image of the IDX file, then a broken image. */
    snprintf(args, sizeof args, "predict '%s' '%simg.idx' --top 1", out1, dir);
    CHECK(tst_run_cli(args, text, sizeof text) == 0);
    CHECK_MSG(strstr(text, "img.idx[0]: 0 ") && strstr(text, "img.idx[119]:"), "%s", text);
    char bad[1024];
    snprintf(args, sizeof args, "predict '%s' '%s'", out1, tst_fixture_path("images/truncated.png", bad, sizeof bad));
    CHECK(tst_run_cli(args, text, sizeof text) == 1 && strstr(text, "truncated.png"));

    mml_model *m;
    mml_config *c;
    CHECK_OK(mml_model_load(out1, &m, &c));
    if (m) {
        CHECK(mml_params_find(mml_model_params(m), "1.running_var") != NULL);
        CHECK(mml_params_find(mml_model_params(m), "6.weight") != NULL);
        mml_model_free(m);
        mml_config_free(c);
    }
}

TEST(cli_train_resume_continues_exactly)
{
    make_data();
    const char *cfg = write_config("resume.json", LAYERS, 4, ", \"val_fraction\": 0.2, \"patience\": 5");
    char full[512], part[512], ck[512], args[4096], text[16384];
    tst_tmp_path("full.safetensors", full, sizeof full);
    tst_tmp_path("part.safetensors", part, sizeof part);
    tst_tmp_path("run.ckpt", ck, sizeof ck);
    snprintf(args, sizeof args, "train '%s' --out '%s' --epochs 4", cfg, full);
    CHECK(tst_run_cli(args, text, sizeof text) == 0);
    snprintf(args, sizeof args, "train '%s' --out '%s' --epochs 2 --checkpoint '%s'", cfg, part, ck);
    CHECK(tst_run_cli(args, text, sizeof text) == 0);
    snprintf(args, sizeof args, "train '%s' --out '%s' --epochs 4 --resume '%s'", cfg, part, ck);
    CHECK_MSG(tst_run_cli(args, text, sizeof text) == 0, "%s", text);
    char lf[512], lp[512];
    char *a = slurp(tst_tmp_path("full.jsonl", lf, sizeof lf)), *b = slurp(tst_tmp_path("part.jsonl", lp, sizeof lp));
    for (char *p = a; p && (p = strstr(p, "\"seconds\"")); p++) memset(p, ' ', strcspn(p, "}"));
    for (char *p = b; p && (p = strstr(p, "\"seconds\"")); p++) memset(p, ' ', strcspn(p, "}"));
    CHECK_MSG(a && b && !strcmp(a, b), "interrupted run differs:\n%s\n%s", a ? a : "", b ? b : "");
    mml_free(a);
    mml_free(b);
    mml_safetensors *sa, *sb;
    CHECK_OK(mml_safetensors_load(full, &sa));
    CHECK_OK(mml_safetensors_load(part, &sb));
    for (int i = 0; sa && sb && i < mml_safetensors_count(sa); i++) {
        const mml_st_entry *ea = mml_safetensors_at(sa, i), *eb = mml_safetensors_find(sb, ea->name);
        CHECK_MSG(eb && eb->nbytes == ea->nbytes && !memcmp(ea->data, eb->data, ea->nbytes), "%s differs", ea->name);
    }
    mml_safetensors_free(sa);
    mml_safetensors_free(sb);
    snprintf(args, sizeof args, "train '%s' --resume '%s'", cfg, full);
    CHECK(tst_run_cli(args, text, sizeof text) == 1 && strstr(text, "not an mml training checkpoint"));
}

TEST(cli_train_transfer_learning_loads_and_freezes)
{
    make_data();
    char base[512], tuned[512], args[4096], text[16384], extra[1024];
    tst_tmp_path("base.safetensors", base, sizeof base);
    tst_tmp_path("tuned.safetensors", tuned, sizeof tuned);
    snprintf(args, sizeof args, "train '%s' --out '%s'", write_config("base.json", LAYERS, 3, ""), base);
    CHECK(tst_run_cli(args, text, sizeof text) == 0);
    /* Fine-tune: load everything but the head, freeze the conv layer. */
    snprintf(extra, sizeof extra, ", \"init_from\": \"base.safetensors\", \"init_skip\": [\"6.\"], "
             "\"freeze\": [\"0.\"]");
    snprintf(args, sizeof args, "train '%s' --out '%s'", write_config("tune.json", LAYERS, 2, extra), tuned);
    CHECK_MSG(tst_run_cli(args, text, sizeof text) == 0 && strstr(text, "(40 frozen)"), "%s", text);
    mml_safetensors *a, *b;
    CHECK_OK(mml_safetensors_load(base, &a));
    CHECK_OK(mml_safetensors_load(tuned, &b));
    if (a && b) {
        const mml_st_entry *wa = mml_safetensors_find(a, "0.weight"), *wb = mml_safetensors_find(b, "0.weight");
        CHECK(wa && wb && !memcmp(wa->data, wb->data, wa->nbytes)); /* frozen: unchanged */
        wa = mml_safetensors_find(a, "1.weight");
        wb = mml_safetensors_find(b, "1.weight");
        CHECK(wa && wb && memcmp(wa->data, wb->data, wa->nbytes) != 0); /* trained on */
    }
    mml_safetensors_free(a);
    mml_safetensors_free(b);
    snprintf(extra, sizeof extra, ", \"init_from\": \"base.safetensors\", \"freeze\": [\"9.\"]");
    snprintf(args, sizeof args, "train '%s' --out '%s'", write_config("tune2.json", LAYERS, 1, extra), tuned);
    CHECK(tst_run_cli(args, text, sizeof text) == 1 && strstr(text, "train.freeze: '9.' matches no parameter"));
}

TEST(cli_train_bad_configs_name_the_key)
{
    make_data();
    struct { const char *layers, *extra, *want; } cases[] = {
        { "{\"type\": \"conv3d\", \"out\": 2}", "", "model.layers[0].type: unknown value 'conv3d'" },
        { "{\"type\": \"flatten\"}, {\"type\": \"linear\", \"in\": 50, \"out\": 3}", "",
          "model.layers[1].in: is 50 but the previous layer gives 64 features" },
        { "{\"type\": \"linear\", \"out\": 3}", "", "model.layers[0]: linear expects a flat" },
        { "{\"type\": \"conv2d\", \"out\": \"four\"}", "", "model.layers[0].out: expected an integer" },
        { "{\"type\": \"conv2d\", \"out\": 2, \"kernel\": 11}", "", "model.layers[0].kernel: is larger" },
        { "{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 3, \"widht\": 2}", "", "model.layers[1].widht: unknown key" },
        { "{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 3}", ", \"schedule\": {\"type\": \"exponential\"}",
          "train.schedule.type: unknown value 'exponential'" },
        { "{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 3}", ", \"val_fraction\": 2", "train.val_fraction: must be in" },
    };
    char args[1024], text[8192];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *cfg = write_config("bad.json", cases[i].layers, 1, cases[i].extra);
        snprintf(args, sizeof args, "train '%s' --out /dev/null/x", cfg);
        int st = tst_run_cli(args, text, sizeof text);
        CHECK_MSG(st == 1 && strstr(text, cases[i].want) && strstr(text, "bad.json"), "case %zu: status %d, output: %s",
                  i, st, text);
    }
    /* A missing data file names the file and the key. */
    char path[512];
    FILE *f = fopen(tst_tmp_path("nodata.json", path, sizeof path), "w");
    fputs("{\"data\": {\"train_images\": \"missing.idx\", \"train_labels\": \"lab.idx\", \"test_images\": \"img.idx\", "
          "\"test_labels\": \"lab.idx\"}, \"model\": {\"input\": [64], \"layers\": [{\"type\": \"linear\", \"out\": 3}]}}", f);
    fclose(f);
    snprintf(args, sizeof args, "train '%s'", path);
    CHECK(tst_run_cli(args, text, sizeof text) == 1);
    CHECK_MSG(strstr(text, "data.train_images") && strstr(text, "missing.idx"), "%s", text);
    CHECK(tst_run_cli("train", text, sizeof text) == 2);
    CHECK(tst_run_cli("train --epochs x cfg.json", text, sizeof text) == 2);
    CHECK(tst_run_cli("eval /nonexistent.safetensors", text, sizeof text) == 1);
}
