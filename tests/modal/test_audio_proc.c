/* Clip processing: trimming against librosa's algorithm (bounds from
 * tests/reference/gen_audio.py) and a hand-derived case, pre-emphasis, noise at
 * an SNR, the spectral-gating denoiser and its ISTFT, SpecAugment masks. */
#include <math.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/audio.h"
#include "test.h"

static mml_audio make_clip(int64_t n, int rate)
{
    mml_audio a = { mml_calloc((size_t)n, sizeof(float)), n, rate, 1, 32 };
    return a;
}

static double energy(const float *x, int64_t n)
{
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) e += (double)x[i] * x[i];
    return e;
}

TEST(audio_trim_matches_librosa)
{
    /* 0.2 s near-silence, 0.5 s tone, 0.3 s near-silence at 8 kHz. A centred frame
     * of 512 counts as sound once one tone sample is inside it: frames 11 to 45. */
    mml_audio a = make_clip(8000, 8000);
    for (int64_t i = 0; i < a.n; i++) a.samples[i] = 1e-5f * (float)((i * 7919) % 13 - 6) / 6.0f;
    for (int64_t i = 1600; i < 5600; i++) a.samples[i] = 0.5f * cosf(0.3f * (float)i);
    int64_t s = -1, e = -1;
    CHECK_OK(mml_audio_trim(&a, 60.0f, 512, 128, &s, &e));
    CHECK_MSG(s == 11 * 128 && e == 46 * 128 && a.n == e - s, "kept [%lld, %lld)", (long long)s, (long long)e);
    CHECK(a.samples[1600 - s] == 0.5f * cosf(0.3f * 1600.0f));
    mml_audio_free(&a);

    mml_safetensors *fx = tst_fixture("audio_proc.safetensors");
    if (!fx) return;
    static const int settings[3][3] = { { 10, 512, 128 }, { 20, 256, 64 }, { 30, 1024, 256 } };
    for (int c = 0; c < 2; c++) {
        char rel[64], path[1024];
        snprintf(rel, sizeof rel, "fsdd/recordings/%s", c ? "7_jackson_12.wav" : "0_george_0.wav");
        mml_audio clip;
        if (mml_wav_load(tst_dataset_path(rel, path, sizeof path), &clip) != MML_OK) {
            printf("    (skipped: %s)\n", mml_last_error());
            break;
        }
        snprintf(rel, sizeof rel, "trim.clip%d", c);
        mml_tensor *want = mml_safetensors_tensor(fx, rel, MML_I64);
        CHECK(want && want->numel == 6);
        for (int k = 0; want && k < 3; k++) {
            mml_audio t = make_clip(clip.n, clip.rate);
            memcpy(t.samples, clip.samples, (size_t)clip.n * sizeof(float));
            CHECK_OK(mml_audio_trim(&t, (float)settings[k][0], settings[k][1], settings[k][2], &s, &e));
            const int64_t *w = (const int64_t *)want->data;
            CHECK_MSG(s == w[2 * k] && e == w[2 * k + 1], "%s setting %d: [%lld, %lld), librosa [%lld, %lld)", rel, k,
                      (long long)s, (long long)e, (long long)w[2 * k], (long long)w[2 * k + 1]);
            mml_audio_free(&t);
        }
        mml_tensor_free(want);
        mml_audio_free(&clip);
    }
    mml_safetensors_free(fx);
}

TEST(audio_preemphasis_and_noise_at_snr)
{
    mml_audio a = make_clip(4, 8000);
    memcpy(a.samples, (float[]){ 1.0f, 0.5f, -0.25f, 2.0f }, 4 * sizeof(float));
    mml_audio_preemphasis(&a, 0.97f);
    CHECK_CLOSE("preemphasis", a.samples, ((float[]){ 1.0f, 0.5f - 0.97f, -0.25f - 0.485f, 2.0f + 0.2425f }), 4, 1e-6, 0.0);
    mml_audio_free(&a);

    mml_audio x = make_clip(4000, 8000), y = make_clip(4000, 8000);
    for (int64_t i = 0; i < x.n; i++) x.samples[i] = y.samples[i] = 0.4f * sinf(0.05f * (float)i);
    float *clean = mml_malloc(4000 * sizeof(float));
    memcpy(clean, x.samples, 4000 * sizeof(float));
    mml_rng r1, r2;
    mml_rng_seed(&r1, 7);
    mml_rng_seed(&r2, 7);
    CHECK_OK(mml_audio_add_noise(&x, 12.5f, &r1));
    CHECK_OK(mml_audio_add_noise(&y, 12.5f, &r2));
    CHECK(!memcmp(x.samples, y.samples, 4000 * sizeof(float)));
    for (int64_t i = 0; i < x.n; i++) y.samples[i] = x.samples[i] - clean[i];
    double snr = 10.0 * log10(energy(clean, 4000) / energy(y.samples, 4000));
    CHECK_NEAR(snr, 12.5, 1e-3);
    mml_audio silent = make_clip(10, 8000);
    CHECK(mml_audio_add_noise(&silent, 10.0f, &r1) == MML_ERR_ARG && strstr(mml_last_error(), "silent"));
    mml_audio_free(&silent);
    mml_free(clean);
    mml_audio_free(&x);
    mml_audio_free(&y);
}

TEST(audio_denoise_gates_stationary_noise)
{
    /* prop_decrease 0 keeps every bin: the ISTFT gives the input back. */
    mml_audio a = make_clip(3001, 8000);
    mml_rng rng;
    mml_rng_seed(&rng, 3);
    for (int64_t i = 0; i < a.n; i++) a.samples[i] = 0.3f * mml_rng_normal(&rng);
    float *orig = mml_malloc((size_t)a.n * sizeof(float));
    memcpy(orig, a.samples, (size_t)a.n * sizeof(float));
    mml_denoise_params p = mml_denoise_defaults();
    p.prop_decrease = 0.0f;
    CHECK_OK(mml_audio_denoise(&a, &p));
    CHECK_CLOSE("istft round trip", a.samples, orig, a.n, 0.0, 2e-6);
    mml_free(orig);
    mml_audio_free(&a);

    /* 0.3 s of noise, then a tone in the same noise: the gate removes most of the
     * noise-only part (measured -16 dB with the quiet-frame profile, -22 dB with the
     * clip) and brings the tone part closer to the clean tone (9.3 and 9.7 dB). */
    int64_t n = 8000, onset = 2400;
    float *clean = mml_calloc((size_t)n, sizeof(float)), *noise = mml_malloc((size_t)n * sizeof(float));
    for (int64_t i = onset; i < n; i++) clean[i] = 0.3f * sinf(2.0f * 3.14159265f * 440.0f * (float)i / 8000.0f);
    for (int64_t i = 0; i < n; i++) noise[i] = 0.03f * mml_rng_normal(&rng);
    for (int use_clip = 0; use_clip < 2; use_clip++) {
        mml_audio x = make_clip(n, 8000);
        for (int64_t i = 0; i < n; i++) x.samples[i] = clean[i] + noise[i];
        p = mml_denoise_defaults();
        if (use_clip) p.noise = noise, p.noise_n = onset;
        CHECK_OK(mml_audio_denoise(&x, &p));
        double quiet_db = 10.0 * log10(energy(x.samples + 512, onset - 1024) / energy(noise + 512, onset - 1024));
        for (int64_t i = 0; i < n; i++) x.samples[i] -= clean[i];
        double before = energy(noise + onset, n - onset), after = energy(x.samples + onset, n - onset);
        double gain_db = 10.0 * log10(before / after);
        CHECK_MSG(quiet_db < -12.0 && gain_db > 6.0, "%s profile: noise-only part %.1f dB, tone-part SNR gain %.1f dB",
                  use_clip ? "clip" : "quiet-frame", quiet_db, gain_db);
        mml_audio_free(&x);
    }
    mml_free(clean);
    mml_free(noise);

    mml_audio tiny = make_clip(100, 8000);
    CHECK(mml_audio_denoise(&tiny, &p) == MML_ERR_ARG);
    p.n_fft = 511;
    CHECK(mml_audio_denoise(&tiny, &p) == MML_ERR_ARG && strstr(mml_last_error(), "even"));
    mml_audio_free(&tiny);
}

/* The masked index range of a [rows, cols] tensor of ones, or -1 when a cell
 * outside one contiguous range of whole rows (or columns) changed. */
static int mask_width(const mml_tensor *t, mml_mask_axis axis, int64_t *start)
{
    int64_t rows = t->shape[0], cols = t->shape[1], size = axis == MML_MASK_FREQ ? rows : cols, first = -1, last = -2;
    for (int64_t i = 0; i < size; i++) {
        int zeros = 0, across = (int)(axis == MML_MASK_FREQ ? cols : rows);
        for (int64_t j = 0; j < across; j++) zeros += mml_f32(t)[axis == MML_MASK_FREQ ? i * cols + j : j * cols + i] == -5.0f;
        if (zeros != 0 && zeros != across) return -1;
        if (zeros && first < 0) first = i;
        if (zeros) {
            if (last >= 0 && last != i - 1) return -1;
            last = i;
        }
    }
    *start = first;
    return (int)(last - first + 1);
}

TEST(audio_spec_augment_masks)
{
    mml_tensor *t = mml_tensor_create(MML_F32, 2, (int64_t[]){ 20, 50 }, false);
    for (int axis = 0; axis < 2; axis++) {
        int seen[31] = { 0 };
        for (uint64_t seed = 0; seed < 300; seed++) {
            for (int64_t i = 0; i < t->numel; i++) mml_f32(t)[i] = 1.0f;
            mml_rng rng;
            mml_rng_seed(&rng, seed);
            int param = axis == MML_MASK_FREQ ? 8 : 30;
            CHECK_OK(mml_spec_mask(t, (mml_mask_axis)axis, param, 1.0f, -5.0f, &rng));
            int64_t start;
            int w = mask_width(t, (mml_mask_axis)axis, &start);
            CHECK_MSG(w >= 0 && w < param, "axis %d seed %llu: width %d", axis, (unsigned long long)seed, w);
            if (w >= 0 && w < 31) seen[w]++;
        }
        int distinct = 0;
        for (int w = 0; w < 31; w++) distinct += seen[w] > 0;
        CHECK_MSG(distinct >= (axis == MML_MASK_FREQ ? 8 : 25), "axis %d: %d distinct widths", axis, distinct);
    }
    /* p = 0.1 caps the time mask at floor(0.1 * 50) = 5 columns: widths 0..4 */
    for (uint64_t seed = 0; seed < 100; seed++) {
        for (int64_t i = 0; i < t->numel; i++) mml_f32(t)[i] = 1.0f;
        mml_rng rng;
        mml_rng_seed(&rng, seed);
        CHECK_OK(mml_spec_mask(t, MML_MASK_TIME, 30, 0.1f, -5.0f, &rng));
        int64_t start;
        int w = mask_width(t, MML_MASK_TIME, &start);
        CHECK(w >= 0 && w <= 4);
    }
    mml_rng rng;
    mml_rng_seed(&rng, 1);
    CHECK(mml_spec_mask(t, MML_MASK_TIME, 3, 1.5f, 0.0f, &rng) == MML_ERR_ARG);
    mml_tensor_free(t);
}
