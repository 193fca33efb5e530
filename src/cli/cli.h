/* Internal to the mml command: one function per subcommand.
 * Exit codes: 0 success, 1 bad input or failed run, 2 bad usage. */
#ifndef MML_CLI_H
#define MML_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "mml/multimodal.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

/* True when argv holds -h or --help. */
bool cli_wants_help(int argc, char **argv);
/* Prints "mml: <message>" (the last library error when msg is NULL) to stderr. */
int cli_fail(const char *msg);
int cli_usage(const char *usage, const char *problem);

int cmd_audio(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int bench_train(int argc, char **argv); /* mml bench train */
int bench_knn(int argc, char **argv);   /* mml bench knn */
int bench_epoch(int argc, char **argv); /* mml bench epoch */
int bench_infer(int argc, char **argv); /* mml bench infer */
/* The CNN of mml bench train (a) as an mml_model, for the inference benchmark. */
mml_status bench_cnn_build(mml_model **out);
double cli_median(double *v, int n);    /* sorts v */
/* An integer in [lo, hi] (the whole string); 0, or -1 when malformed. */
int cli_parse_count(const char *s, int64_t lo, int64_t hi, int64_t *out);
double cli_peak_rss_mb(void); /* this process's peak resident set */
int cmd_caption(int argc, char **argv);
int cmd_compare(int argc, char **argv);
/* The "task" of a JSON config ("" when none or unreadable). */
const char *cli_config_task(const char *path, char *buf, size_t cap);
/* A config over multimodal manifests, its data opened (cmd_train_mm.c);
 * progress: a bar or log lines on stderr while extracting features. */
typedef struct cli_mm_job {
    mml_config *cfg;
    char *dir;
    mml_cfg_node data, model, train;
    mml_train_options opt;
    mml_mm_data d;
} cli_mm_job;
mml_status cli_mm_job_open(cli_mm_job *j, const char *path, int64_t epochs, int64_t seed, bool progress);
void cli_mm_job_close(cli_mm_job *j);
mml_status cli_mm_job_meta(const cli_mm_job *j, char **config_json, char **classes);
/* mml train on a config with "task": "multimodal" (cmd_train_mm.c) or "retrieval" (cmd_train_align.c). */
int cli_train_multimodal(const char *path, const char *out, const char *log_path, int64_t epochs, int64_t seed, bool json,
                         const struct mml_mm_perturb *test);
/* "audio=0.5" into the missing (or noise) level of that modality; -1 if malformed. */
int cli_parse_perturb(const char *arg, bool missing, struct mml_mm_perturb *p);
int cli_train_align(const char *path, const char *out, const char *log_path, int64_t epochs, int64_t seed, bool json);
int cli_train_caption(const char *path, const char *out, const char *log_path, int64_t epochs, int64_t seed, bool json);
int cli_train_ae(const char *path, const char *out, const char *log_path, int64_t epochs, int64_t seed, bool json);
/* mml eval on a model of a "retrieval" config: retrieval and transfer on its test split. */
int cli_eval_align(const char *path, bool json);
int cmd_data(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_text(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
