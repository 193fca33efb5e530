/* mml bench train, epoch and infer reject bad arguments with a usage message
 * and status 2, and a config of the wrong task with status 1; the inference
 * benchmark runs on a tiny count. */
#include <string.h>

#include "test.h"

TEST(cli_bench_rejects_bad_arguments)
{
    char out[4096];
    const char *bad[] = {
        "bench train",                           /* no model */
        "bench train --model mlp",               /* unknown model */
        "bench train --model cnn --steps 0",     /* not positive */
        "bench train --model cnn --batch 8x",    /* not a number */
        "bench epoch",                           /* no config */
        "bench epoch a.json b.json",             /* two configs */
        "bench epoch a.json --epochs -1",        /* negative */
        "bench epoch a.json --threads 0",        /* not positive */
        "bench epoch a.json --frobnicate",       /* unknown option */
        "bench infer",                           /* no model */
        "bench infer --model gru",               /* not benchmarked for inference */
        "bench infer --model fusion",            /* fusion needs its config */
        "bench infer --model cnn --config a.json", /* and only fusion takes one */
        "bench infer --model cnn --batch 0",     /* not positive */
        "bench infer --model cnn --iters",       /* missing value */
        "bench frobnicate",                      /* unknown benchmark */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = tst_run_cli(bad[i], out, sizeof out);
        CHECK_MSG(st == 2 && strstr(out, "usage: mml bench"), "%s: %d %s", bad[i], st, out);
    }
    char args[1200];
    snprintf(args, sizeof args, "bench epoch '%s/examples/fashion_cnn.json' --epochs 0", MML_SOURCE_DIR);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "must be \"multimodal\""));
    CHECK(tst_run_cli("bench epoch /nonexistent/config.json", out, sizeof out) == 1 && strstr(out, "/nonexistent/config.json"));
    CHECK(tst_run_cli("bench infer --model cnn --iters 2 --threads 1", out, sizeof out) == 0 &&
          strstr(out, "\"impl\": \"mml\", \"model\": \"cnn\", \"batch\": 1, \"threads\": 1"));
    snprintf(args, sizeof args, "bench infer --model fusion --config '%s/examples/avdigits_fusion.json' --batch 2 --iters 1",
             MML_SOURCE_DIR); /* the model needs the config, not its data */
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0 && strstr(out, "\"model\": \"fusion\", \"batch\": 2"), "%s", out);
    CHECK(tst_run_cli("bench epoch --help", out, sizeof out) == 0 && strstr(out, "usage: mml bench epoch"));
}
