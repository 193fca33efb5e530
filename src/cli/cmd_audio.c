/* mml audio info FILE... | features IN.wav --type ... --out OUT.safetensors | process IN.wav ... --out OUT.wav */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/audio.h"
#include "mml/safetensors.h"

#define PROCESS_OPTIONS "[--resample SR] [--trim TOP_DB] [--denoise] [--preemphasis C] [--noise-snr DB [--seed S]]"

static const char *FEATURES_USAGE =
    "mml audio features IN.wav --type spectrogram|mel|logmel|mfcc [--n-fft N] [--hop N] [--win N]\n"
    "       [--n-mels N] [--n-mfcc N] [--f-min F] [--f-max F] [--mel-scale htk|slaney] [--norm none|slaney]\n"
    "       [--center 0|1] [--power P] [--top-db D] " PROCESS_OPTIONS " --out OUT.safetensors";
static const char *PROCESS_USAGE = "mml audio process IN.wav " PROCESS_OPTIONS " [--float] --out OUT.wav";

/* Processing applied, in this order, before features or writing. */
typedef struct process_opts {
    double resample, trim, preemphasis, noise_snr, seed;
    bool denoise;
} process_opts;

static const char *process_opts_problem(const process_opts *o)
{
    if (o->seed < 0) return "--seed must not be negative";
    if (o->resample < 0 || o->resample > 1e6) return "--resample must be in [1, 1000000]";
    return NULL;
}

static mml_status process(mml_audio *a, const process_opts *o)
{
    mml_status rc = MML_OK;
    if (o->resample > 0) rc = mml_audio_resample(a, (int)o->resample);
    if (rc == MML_OK && o->trim > 0) rc = mml_audio_trim(a, (float)o->trim, 2048, 512, NULL, NULL);
    if (rc == MML_OK && o->denoise) {
        mml_denoise_params d = mml_denoise_defaults();
        rc = mml_audio_denoise(a, &d);
    }
    if (rc == MML_OK && o->preemphasis > 0) mml_audio_preemphasis(a, (float)o->preemphasis);
    if (rc == MML_OK && o->noise_snr == o->noise_snr) {
        mml_rng rng;
        mml_rng_seed(&rng, (uint64_t)o->seed);
        rc = mml_audio_add_noise(a, (float)o->noise_snr, &rng);
    }
    return rc;
}

static int audio_info(int argc, char **argv)
{
    if (argc < 2) return cli_usage("mml audio info FILE.wav...", "no file given");
    int rc = CLI_OK;
    for (int i = 1; i < argc; i++) {
        mml_audio a;
        if (mml_wav_load(argv[i], &a) != MML_OK) {
            rc = cli_fail(NULL);
            continue;
        }
        printf("%s: WAV, %d Hz, %d channel%s, %d-bit, %lld samples, %.3f s\n", argv[i], a.rate, a.channels,
               a.channels > 1 ? "s" : "", a.bits, (long long)a.n, (double)a.n / a.rate);
        mml_audio_free(&a);
    }
    return rc;
}

static bool num(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return end != s && !*end && fabs(*out) <= 1e9; /* keeps the int conversions defined */
}

static int audio_features(int argc, char **argv)
{
    static const char *const types[] = { "spectrogram", "mel", "logmel", "mfcc", NULL };
    const char *in = NULL, *out = NULL, *type = NULL, *scale = "htk", *norm = "none";
    double v, n_fft = 400, hop = -1, win = -1, n_mels = 128, n_mfcc = 40, f_min = 0, f_max = -1, center = 1, power = 2,
              top_db = -1;
    process_opts po = { .noise_snr = NAN };
    struct { const char *flag; double *dst; } nums[] = {
        { "--n-fft", &n_fft }, { "--hop", &hop }, { "--win", &win }, { "--n-mels", &n_mels }, { "--n-mfcc", &n_mfcc },
        { "--f-min", &f_min }, { "--f-max", &f_max }, { "--center", &center }, { "--power", &power },
        { "--top-db", &top_db }, { "--resample", &po.resample }, { "--trim", &po.trim },
        { "--preemphasis", &po.preemphasis }, { "--noise-snr", &po.noise_snr }, { "--seed", &po.seed },
    };
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc, matched = false;
        for (size_t k = 0; k < sizeof nums / sizeof nums[0] && !matched; k++)
            if (!strcmp(argv[i], nums[k].flag)) {
                if (!has || !num(argv[++i], &v)) return cli_usage(FEATURES_USAGE, "option needs a number");
                *nums[k].dst = v;
                matched = true;
            }
        if (matched) continue;
        if (!strcmp(argv[i], "--type") && has) type = argv[++i];
        else if (!strcmp(argv[i], "--out") && has) out = argv[++i];
        else if (!strcmp(argv[i], "--mel-scale") && has) scale = argv[++i];
        else if (!strcmp(argv[i], "--norm") && has) norm = argv[++i];
        else if (!strcmp(argv[i], "--denoise")) po.denoise = true;
        else if (argv[i][0] == '-' || in) return cli_usage(FEATURES_USAGE, "unexpected argument");
        else in = argv[i];
    }
    int kind = -1;
    for (int k = 0; type && types[k]; k++)
        if (!strcmp(type, types[k])) kind = k;
    if (!in || !out || kind < 0) return cli_usage(FEATURES_USAGE, "needs IN.wav, --type (spectrogram|mel|logmel|mfcc) and --out");
    if (strcmp(scale, "htk") && strcmp(scale, "slaney")) return cli_usage(FEATURES_USAGE, "--mel-scale is htk or slaney");
    if (strcmp(norm, "none") && strcmp(norm, "slaney")) return cli_usage(FEATURES_USAGE, "--norm is none or slaney");
    if (process_opts_problem(&po)) return cli_usage(FEATURES_USAGE, process_opts_problem(&po));
    mml_audio a;
    if (mml_wav_load(in, &a) != MML_OK) return cli_fail(NULL);
    if (process(&a, &po) != MML_OK) {
        mml_audio_free(&a);
        fprintf(stderr, "mml: %s: %s\n", in, mml_last_error());
        return CLI_FAIL;
    }
    mml_spec_params p = mml_spec_defaults(a.rate);
    p.n_fft = (int)n_fft;
    p.win_length = win > 0 ? (int)win : p.n_fft;
    p.hop_length = hop > 0 ? (int)hop : p.win_length / 2;
    p.n_mels = (int)n_mels;
    p.n_mfcc = (int)n_mfcc;
    p.f_min = (float)f_min;
    p.f_max = f_max > 0 ? (float)f_max : (float)a.rate / 2.0f;
    p.center = center != 0;
    p.power = (float)power;
    p.top_db = (float)top_db;
    p.mel_scale = strcmp(scale, "slaney") ? MML_MEL_HTK : MML_MEL_SLANEY;
    p.slaney_norm = !strcmp(norm, "slaney");
    mml_tensor *f = mml_audio_features(&a, (mml_feature_kind)kind, &p);
    int rate = a.rate;
    mml_audio_free(&a);
    if (!f) {
        fprintf(stderr, "mml: %s: %s\n", in, mml_last_error());
        return CLI_FAIL;
    }
    mml_st_writer *w = mml_st_writer_create();
    char buf[64];
    mml_status st = mml_st_writer_add(w, "features", f, MML_F32);
    struct { const char *k; double v; } meta[] = {
        { "sample_rate", rate }, { "n_fft", p.n_fft }, { "win_length", p.win_length }, { "hop_length", p.hop_length },
        { "n_mels", p.n_mels }, { "n_mfcc", p.n_mfcc }, { "f_min", p.f_min }, { "f_max", p.f_max },
        { "center", p.center }, { "power", p.power }, { "top_db", p.top_db }, { "trim_top_db", po.trim },
        { "preemphasis", po.preemphasis }, { "denoise", po.denoise }, { "noise_snr", po.noise_snr }, { "seed", po.seed },
    };
    for (size_t k = 0; st == MML_OK && k < sizeof meta / sizeof meta[0]; k++) {
        snprintf(buf, sizeof buf, "%g", meta[k].v);
        st = mml_st_writer_meta(w, meta[k].k, buf);
    }
    if (st == MML_OK) st = mml_st_writer_meta(w, "type", type);
    if (st == MML_OK) st = mml_st_writer_meta(w, "mel_scale", scale);
    if (st == MML_OK) st = mml_st_writer_meta(w, "norm", norm);
    if (st == MML_OK) st = mml_st_writer_save(w, out);
    if (st == MML_OK)
        printf("%s: %s [%lld, %lld] written to %s\n", in, type, (long long)f->shape[0], (long long)f->shape[1], out);
    mml_st_writer_free(w);
    mml_tensor_free(f);
    return st == MML_OK ? CLI_OK : cli_fail(NULL);
}

static int audio_process(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    bool as_float = false;
    process_opts po = { .noise_snr = NAN };
    struct { const char *flag; double *dst; } nums[] = {
        { "--resample", &po.resample }, { "--trim", &po.trim }, { "--preemphasis", &po.preemphasis },
        { "--noise-snr", &po.noise_snr }, { "--seed", &po.seed },
    };
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc, matched = false;
        for (size_t k = 0; k < sizeof nums / sizeof nums[0] && !matched; k++)
            if (!strcmp(argv[i], nums[k].flag)) {
                if (!has || !num(argv[++i], nums[k].dst)) return cli_usage(PROCESS_USAGE, "option needs a number");
                matched = true;
            }
        if (matched) continue;
        if (!strcmp(argv[i], "--out") && has) out = argv[++i];
        else if (!strcmp(argv[i], "--denoise")) po.denoise = true;
        else if (!strcmp(argv[i], "--float")) as_float = true;
        else if (argv[i][0] == '-' || in) return cli_usage(PROCESS_USAGE, "unexpected argument");
        else in = argv[i];
    }
    if (!in || !out) return cli_usage(PROCESS_USAGE, "needs IN.wav and --out OUT.wav");
    if (process_opts_problem(&po)) return cli_usage(PROCESS_USAGE, process_opts_problem(&po));
    mml_audio a;
    if (mml_wav_load(in, &a) != MML_OK) return cli_fail(NULL);
    mml_status rc = process(&a, &po);
    if (rc != MML_OK) fprintf(stderr, "mml: %s: %s\n", in, mml_last_error());
    else if ((as_float ? mml_wav_save_float : mml_wav_save)(out, a.samples, a.n, a.rate) != MML_OK) rc = cli_fail(NULL);
    else printf("%s: %lld samples at %d Hz written to %s\n", in, (long long)a.n, a.rate, out);
    mml_audio_free(&a);
    return rc == MML_OK ? CLI_OK : CLI_FAIL;
}

int cmd_audio(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: mml audio info FILE.wav...\n       %s\n       %s\n"
               "Processing runs in the order listed: resampling, trimming (librosa's trim, frames of 2048 every 512),\n"
               "spectral-gating denoising, pre-emphasis, then white noise at an SNR. Features follow torchaudio's definitions, "
               "parameter names and defaults; the output holds one tensor `features` [features, frames].\n",
               PROCESS_USAGE, FEATURES_USAGE);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "info")) return audio_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "features")) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            printf("usage: %s\n", FEATURES_USAGE);
            return CLI_OK;
        }
        return audio_features(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "process")) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            printf("usage: %s\n", PROCESS_USAGE);
            return CLI_OK;
        }
        return audio_process(argc - 1, argv + 1);
    }
    return cli_usage("mml audio info|features|process ...", "unknown audio command");
}
