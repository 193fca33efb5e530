/* The audio front-end against torchaudio 0.13 (tests/reference/gen_audio.py):
 * features on real FSDD recordings and a synthetic 16 kHz signal, resampling,
 * and WAV decoding of every sample format plus broken files. */
#include <math.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/audio.h"
#include "test.h"

static const char *CLIPS[] = { "0_george_0.wav", "7_jackson_12.wav" };

static bool load_clip(int i, mml_audio *a)
{
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "fsdd/recordings/%s", CLIPS[i]);
    if (mml_wav_load(tst_dataset_path(rel, path, sizeof path), a) != MML_OK) {
        printf("    (skipped: %s)\n", mml_last_error());
        return false;
    }
    return true;
}

typedef struct pset {
    const char *name;
    mml_feature_kind kind;
    mml_spec_params p;
} pset;

static pset params(int idx, int rate)
{
    mml_spec_params d = mml_spec_defaults(rate);
    pset s = { NULL, MML_FEAT_SPECTROGRAM, d };
    switch (idx) {
    case 0: s.name = "spec_default"; break;
    case 1:
        s.name = "spec_mag_nocenter";
        s.p.n_fft = 256, s.p.win_length = 200, s.p.hop_length = 80, s.p.power = 1.0f, s.p.center = false;
        break;
    case 2:
        s.name = "mel_htk", s.kind = MML_FEAT_MEL;
        s.p.n_fft = s.p.win_length = 256, s.p.hop_length = 80, s.p.n_mels = 40;
        break;
    case 3:
        s.name = "mel_slaney_norm", s.kind = MML_FEAT_MEL;
        s.p.n_fft = 512, s.p.win_length = 400, s.p.hop_length = 160, s.p.n_mels = 64, s.p.f_min = 20.0f, s.p.f_max = 3800.0f;
        s.p.mel_scale = MML_MEL_SLANEY, s.p.slaney_norm = true;
        break;
    case 4:
        s.name = "logmel", s.kind = MML_FEAT_LOGMEL;
        s.p.n_fft = s.p.win_length = 256, s.p.hop_length = 80, s.p.n_mels = 40;
        break;
    case 5:
        s.name = "logmel_topdb", s.kind = MML_FEAT_LOGMEL;
        s.p.n_fft = s.p.win_length = 256, s.p.hop_length = 80, s.p.n_mels = 40, s.p.top_db = 60.0f;
        break;
    case 6:
        s.name = "mfcc", s.kind = MML_FEAT_MFCC;
        s.p.n_fft = s.p.win_length = 256, s.p.hop_length = 80, s.p.n_mels = 40, s.p.n_mfcc = 13;
        break;
    case 7:
        s.name = "mfcc_slaney", s.kind = MML_FEAT_MFCC;
        s.p.n_fft = s.p.win_length = 400, s.p.hop_length = 160, s.p.n_mels = 64, s.p.n_mfcc = 20;
        s.p.mel_scale = MML_MEL_SLANEY, s.p.slaney_norm = true;
        break;
    case 8: /* odd n_fft takes the complex FFT path */
        s.name = "spec_odd";
        s.p.n_fft = s.p.win_length = 63, s.p.hop_length = 160;
        break;
    case 9:
        s.name = "mel_slaney_center0", s.kind = MML_FEAT_MEL;
        s.p.n_fft = s.p.win_length = 256, s.p.hop_length = 160, s.p.n_mels = 32, s.p.center = false;
        s.p.mel_scale = MML_MEL_SLANEY;
        break;
    default:
        s.name = "mfcc_norm_center0", s.kind = MML_FEAT_MFCC;
        s.p.n_fft = s.p.win_length = 256, s.p.hop_length = 160, s.p.n_mels = 32, s.p.n_mfcc = 13, s.p.center = false;
        s.p.slaney_norm = true;
    }
    return s;
}

enum { N_PSETS = 11 };

static void check_signal(const mml_safetensors *fx, const char *sname, const mml_audio *a)
{
    int checked = 0;
    for (int i = 0; i < N_PSETS; i++) {
        pset s = params(i, a->rate);
        char key[128];
        snprintf(key, sizeof key, "%s.%s", sname, s.name);
        const mml_st_entry *e = mml_safetensors_find(fx, key);
        if (!e) continue; /* not every signal carries every set */
        checked++;
        mml_tensor *f = mml_audio_features(a, s.kind, &s.p);
        CHECK_MSG(f && f->ndim == 2 && f->shape[0] == e->shape[0] && f->shape[1] == e->shape[1], "%s: %s", key,
                  f ? "shape differs" : mml_last_error());
        if (f && f->numel == (int64_t)(e->nbytes / 4)) {
            /* dB values: 1e-3 absolute; powers: 1e-3 relative; MFCCs: 1e-3 relative with
             * a floor of 1e-5 of the largest coefficient, since a coefficient near zero is a
             * cancellation of dB values near -100 whose float32 rounding is ~1e-4. */
            bool db = s.kind == MML_FEAT_LOGMEL;
            double floor = 1e-5;
            if (s.kind == MML_FEAT_MFCC) {
                mml_tensor *w = mml_safetensors_tensor(fx, key, MML_F32);
                double mx = 0;
                for (int64_t k = 0; w && k < w->numel; k++) mx = fmax(mx, fabs(mml_f32(w)[k]));
                floor = 1e-5 * mx;
                mml_tensor_free(w);
            }
            CHECK_FIXTURE(fx, key, mml_f32(f), f->numel, db ? 0.0 : 1e-3, db ? 1e-3 : floor);
        }
        mml_tensor_free(f);
    }
    CHECK_MSG(checked >= 3, "%s: only %d parameter sets in the fixture", sname, checked);
}

TEST(audio_features_match_torchaudio)
{
    mml_safetensors *fx = tst_fixture("audio.safetensors");
    if (!fx) return;
    for (int i = 0; i < 2; i++) {
        mml_audio a;
        if (!load_clip(i, &a)) continue;
        CHECK(a.rate == 8000 && a.channels == 1 && a.bits == 16);
        char sname[16];
        snprintf(sname, sizeof sname, "clip%d", i);
        check_signal(fx, sname, &a);
        mml_audio_free(&a);
    }
    mml_tensor *chirp = mml_safetensors_tensor(fx, "chirp16k.samples", MML_F32);
    mml_audio c = { mml_f32(chirp), chirp->numel, 16000, 1, 32 };
    check_signal(fx, "chirp16k", &c);
    mml_tensor_free(chirp);
    mml_safetensors_free(fx);
}

/* Error energy relative to the signal, in dB. */
static double error_db(const float *got, const float *want, int64_t n)
{
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        s += (double)want[i] * want[i];
    }
    return 10.0 * log10(e / s + 1e-30);
}

static void check_resample(const mml_safetensors *fx, const float *x, int64_t n, int from, int to, const char *key)
{
    mml_audio a = { mml_malloc((size_t)n * sizeof(float)), n, from, 1, 32 };
    memcpy(a.samples, x, (size_t)n * sizeof(float));
    CHECK_OK(mml_audio_resample(&a, to));
    mml_tensor *want = mml_safetensors_tensor(fx, key, MML_F32);
    CHECK_MSG(want && want->numel == a.n, "%s: %lld samples, torchaudio %lld", key, (long long)a.n,
              want ? (long long)want->numel : -1LL);
    if (want && want->numel == a.n) {
        double db = error_db(a.samples, mml_f32(want), a.n);
        CHECK_MSG(db < -60.0, "%s: error energy %.1f dB", key, db);
    }
    mml_tensor_free(want);
    mml_audio_free(&a);
}

TEST(audio_resample_matches_torchaudio)
{
    mml_safetensors *fx = tst_fixture("audio_proc.safetensors"), *feat = tst_fixture("audio.safetensors");
    if (!fx || !feat) goto done;
    mml_audio clip;
    if (load_clip(0, &clip)) {
        check_resample(fx, clip.samples, 1000, 8000, 16000, "resample.up_8k_16k");
        mml_audio_free(&clip);
    }
    mml_tensor *chirp = mml_safetensors_tensor(feat, "chirp16k.samples", MML_F32);
    CHECK(chirp && chirp->numel == 2000);
    if (chirp) check_resample(fx, mml_f32(chirp), chirp->numel, 16000, 8000, "resample.down_16k_8k");
    mml_tensor_free(chirp);
    float tone[4410];
    for (int i = 0; i < 4410; i++)
        tone[i] = (float)(0.3 * sin(2 * M_PI * 440 * i / 44100.0) + 0.2 * sin(2 * M_PI * 3000 * i / 44100.0));
    check_resample(fx, tone, 4410, 44100, 16000, "resample.down_44k_16k");
done:
    mml_safetensors_free(fx);
    mml_safetensors_free(feat);
}

TEST(wav_decodes_every_layout)
{
    mml_safetensors *fx = tst_fixture("wav.safetensors");
    if (!fx) return;
    mml_tensor *sig = mml_safetensors_tensor(fx, "signal", MML_F32);
    struct { const char *file; int rate, channels, bits; double tol; } cases[] = {
        { "pcm8.wav", 8000, 1, 8, 1.0 / 128 }, { "pcm16.wav", 8000, 1, 16, 1e-4 },
        { "pcm24_stereo.wav", 16000, 2, 24, 1e-6 }, { "pcm32.wav", 8000, 1, 32, 1e-7 },
        { "float32.wav", 22050, 1, 32, 0.0 }, { "extensible16_stereo.wav", 8000, 2, 16, 1e-4 },
        { "with_chunks.wav", 8000, 1, 16, 1e-4 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[128], path[1024];
        snprintf(rel, sizeof rel, "wav/%s", cases[i].file);
        mml_audio a;
        mml_status st = mml_wav_load(tst_fixture_path(rel, path, sizeof path), &a);
        CHECK_MSG(st == MML_OK, "%s: %s", cases[i].file, mml_last_error());
        if (st != MML_OK) continue;
        CHECK(a.rate == cases[i].rate && a.channels == cases[i].channels && a.bits == cases[i].bits && a.n == 64);
        if (a.n == 64) CHECK_CLOSE(cases[i].file, a.samples, mml_f32(sig), 64, 0.0, cases[i].tol);
        mml_audio_free(&a);
    }
    mml_tensor_free(sig);
    mml_safetensors_free(fx);
}

TEST(wav_round_trip_and_broken_files_via_cli)
{
    char path[512], args[3072], out[4096];
    float x[100];
    for (int i = 0; i < 100; i++) x[i] = 0.5f * sinf((float)i * 0.2f);
    CHECK_OK(mml_wav_save(tst_tmp_path("rt.wav", path, sizeof path), x, 100, 16000));
    mml_audio a;
    CHECK_OK(mml_wav_load(path, &a));
    CHECK(a.n == 100 && a.rate == 16000);
    if (a.n == 100) CHECK_CLOSE("round trip", a.samples, x, 100, 0.0, 1.0 / 32768);
    mml_audio_free(&a);
    snprintf(args, sizeof args, "audio info '%s'", path);
    CHECK(tst_run_cli(args, out, sizeof out) == 0 && strstr(out, "16000 Hz"));

    /* 32-bit float is written bit-exactly */
    x[3] = 1.75f;
    CHECK_OK(mml_wav_save_float(tst_tmp_path("rt_float.wav", path, sizeof path), x, 100, 22050));
    CHECK_OK(mml_wav_load(path, &a));
    CHECK(a.n == 100 && a.rate == 22050 && a.bits == 32 && !memcmp(a.samples, x, sizeof x));
    mml_audio_free(&a);
    x[5] = NAN;
    CHECK(mml_wav_save_float(path, x, 100, 22050) == MML_ERR_ARG);

    struct { const char *file, *says; } broken[] = {
        { "truncated.wav", "truncated" },          { "wrong_magic.wav", "not a WAV" },
        { "no_fmt.wav", "before the fmt" },        { "zero_channels.wav", "0 channels" },
        { "huge_data.wav", "4294967280 bytes" },   { "bad_bits.wav", "12-bit" },
        { "empty.wav", "not a WAV" },              { "header_only.wav", "no fmt chunk" },
        { "zero_rate.wav", "sample rate 0" },      { "bad_block_align.wav", "block align 7" },
        { "short_fmt.wav", "too short" },          { "huge_fmt.wav", "fmt chunk runs past" },
        { "data_before_fmt.wav", "before the fmt" }, { "chunk_past_end.wav", "chunk 'LIST' declares 1000" },
        { "empty_data.wav", "no sample frame" },   { "adpcm.wav", "encoding 2" },
        { "nan_float.wav", "not a finite" },
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        char rel[128], p[1024];
        snprintf(rel, sizeof rel, "wav/%s", broken[i].file);
        snprintf(args, sizeof args, "audio info '%s'", tst_fixture_path(rel, p, sizeof p));
        int st = tst_run_cli(args, out, sizeof out);
        CHECK_MSG(st == 1 && strstr(out, broken[i].file) && strstr(out, broken[i].says) &&
                      strchr(out, '\n') == strrchr(out, '\n'),
                  "%s: status %d, output: %s", broken[i].file, st, out);
        /* the feature command refuses it the same way */
        snprintf(args, sizeof args, "audio features '%s' --type mel --out '%s.st'", p, path);
        st = tst_run_cli(args, out, sizeof out);
        CHECK_MSG(st == 1 && strstr(out, broken[i].says), "features %s: status %d, output: %s", broken[i].file, st, out);
    }
}

TEST(cli_audio_features_writes_torchaudio_layout)
{
    char in[1024], out_path[512], args[2048], text[4096];
    FILE *probe = fopen(tst_dataset_path("fsdd/recordings/0_george_0.wav", in, sizeof in), "rb");
    if (!probe) {
        printf("    (skipped: FSDD not present)\n");
        return;
    }
    fclose(probe);
    tst_tmp_path("f.safetensors", out_path, sizeof out_path);
    snprintf(args, sizeof args, "audio features '%s' --type logmel --n-fft 256 --hop 80 --n-mels 40 --out '%s'", in, out_path);
    CHECK_MSG(tst_run_cli(args, text, sizeof text) == 0, "%s", text);
    mml_safetensors *st = NULL;
    CHECK_OK(mml_safetensors_load(out_path, &st));
    mml_safetensors *fx = tst_fixture("audio.safetensors");
    if (st && fx) {
        const mml_st_entry *e = mml_safetensors_find(st, "features");
        CHECK(e && e->ndim == 2 && e->shape[0] == 40);
        if (e) CHECK_FIXTURE(fx, "clip0.logmel", (const float *)e->data, (int64_t)(e->nbytes / 4), 0.0, 1e-3);
        CHECK(mml_safetensors_meta(st, "n_mels") && !strcmp(mml_safetensors_meta(st, "n_mels"), "40"));
    }
    mml_safetensors_free(st);
    mml_safetensors_free(fx);
    snprintf(args, sizeof args, "audio features '%s' --type cqt --out '%s'", in, out_path);
    CHECK(tst_run_cli(args, text, sizeof text) == 2);
    snprintf(args, sizeof args, "audio features '%s' --type mel --n-mels 0 --out '%s'", in, out_path);
    CHECK(tst_run_cli(args, text, sizeof text) == 1 && strstr(text, "n_mels"));
}

TEST(cli_audio_process_trims_denoises_and_writes)
{
    char in[512], out_path[512], args[2048], text[4096];
    float x[6000];
    mml_rng rng;
    mml_rng_seed(&rng, 11);
    for (int i = 0; i < 6000; i++) /* 0.25 s of faint noise around a 0.25 s tone */
        x[i] = 1e-4f * mml_rng_normal(&rng) + (i >= 2000 && i < 4000 ? 0.5f * sinf(0.2f * (float)i) : 0.0f);
    CHECK_OK(mml_wav_save(tst_tmp_path("proc_in.wav", in, sizeof in), x, 6000, 8000));
    tst_tmp_path("proc_out.wav", out_path, sizeof out_path);
    snprintf(args, sizeof args, "audio process '%s' --trim 40 --denoise --preemphasis 0.97 --resample 16000 --float --out '%s'",
             in, out_path);
    CHECK_MSG(tst_run_cli(args, text, sizeof text) == 0, "%s", text);
    mml_audio a;
    CHECK_OK(mml_wav_load(out_path, &a));
    /* resampled to 16 kHz first, then trimmed in frames of 512 around the 4000-sample tone */
    CHECK_MSG(a.rate == 16000 && a.bits == 32 && a.n >= 4000 && a.n <= 4000 + 2 * 2048, "%d Hz, %d bits, %lld samples",
              a.rate, a.bits, (long long)a.n);
    mml_audio_free(&a);
    snprintf(args, sizeof args, "audio process '%s' --noise-snr 10 --seed -1 --out '%s'", in, out_path);
    CHECK(tst_run_cli(args, text, sizeof text) == 2);
    snprintf(args, sizeof args, "audio process '%s' --resample 1e30 --out '%s'", in, out_path);
    CHECK(tst_run_cli(args, text, sizeof text) == 2);
}

/* Mel spectrograms of one signal under parameter sets that differ in one
 * field each, in turn and back: each against its spectrogram times its own
 * filterbank (mml_mel_filterbank, made afresh), so a filterbank reused across
 * parameters it does not fit shows. */
TEST(audio_mel_filterbank_follows_parameters)
{
    enum { N = 4000 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = sinf(0.05f * (float)i + 1e-5f * (float)i * (float)i);
    mml_audio a = { x, N, 8000, 1, 32 };
    mml_spec_params base = mml_spec_defaults(8000);
    base.n_fft = base.win_length = 256;
    base.hop_length = 128;
    base.n_mels = 40;
    mml_spec_params sets[4] = { base, base, base, base };
    sets[1].f_max = 3000.0f;
    sets[2].n_mels = 24;
    sets[3].slaney_norm = true;
    for (int round = 0; round < 2; round++)
        for (int s = 0; s < 4; s++) {
            const mml_spec_params *p = &sets[s];
            mml_tensor *mel = mml_audio_features(&a, MML_FEAT_MEL, p);
            mml_tensor *spec = mml_audio_features(&a, MML_FEAT_SPECTROGRAM, p);
            CHECK(mel && spec);
            if (!mel || !spec) return;
            int64_t bins = spec->shape[0], frames = spec->shape[1];
            mml_tensor *fb =
                mml_mel_filterbank((int)bins, p->f_min, p->f_max, p->n_mels, 8000, p->slaney_norm, p->mel_scale);
            float *want = mml_calloc((size_t)(p->n_mels * frames), sizeof(float));
            for (int m = 0; m < p->n_mels; m++)
                for (int64_t k = 0; k < bins; k++)
                    for (int64_t f = 0; f < frames; f++)
                        want[m * frames + f] += mml_f32(fb)[k * p->n_mels + m] * mml_f32(spec)[k * frames + f];
            CHECK_MSG(mel->shape[0] == p->n_mels && mel->shape[1] == frames, "set %d: mel shape", s);
            if (mel->numel == p->n_mels * frames)
                CHECK_CLOSE("mel under its own filterbank", mml_f32(mel), want, mel->numel, 1e-5, 1e-6);
            mml_free(want);
            mml_tensor_free(fb);
            mml_tensor_free(mel);
            mml_tensor_free(spec);
        }
}
