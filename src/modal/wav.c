/* RIFF/WAVE: PCM 8 (unsigned), 16, 24, 32-bit integer, 32-bit float, plain
 * or WAVE_FORMAT_EXTENSIBLE; channels averaged to mono; unknown chunks skipped
 * (with their pad byte). Every size is checked before it is used. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/audio.h"

#define MAX_FILE ((size_t)1 << 30)

static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

typedef struct fmt_info {
    int format, channels, rate, bits, block;
} fmt_info;

static mml_status parse_fmt(const unsigned char *p, uint32_t size, const char *what, fmt_info *f)
{
    if (size < 16) return mml_error(MML_ERR_FORMAT, "%s: fmt chunk of %u bytes is too short", what, size);
    f->format = le16(p);
    f->channels = le16(p + 2);
    f->rate = (int)le32(p + 4);
    f->block = le16(p + 12);
    f->bits = le16(p + 14);
    if (f->format == 0xFFFE) { /* WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the real tag */
        if (size < 40) return mml_error(MML_ERR_FORMAT, "%s: extensible fmt chunk is too short", what);
        f->format = le16(p + 24);
    }
    if (f->format != 1 && f->format != 3)
        return mml_error(MML_ERR_UNSUPPORTED, "%s: WAV encoding %d is not PCM or IEEE float", what, f->format);
    if (f->channels < 1 || f->channels > 64) return mml_error(MML_ERR_FORMAT, "%s: %d channels", what, f->channels);
    if (f->rate < 1 || f->rate > 1000000) return mml_error(MML_ERR_FORMAT, "%s: sample rate %d", what, f->rate);
    bool ok = f->format == 3 ? f->bits == 32 : (f->bits == 8 || f->bits == 16 || f->bits == 24 || f->bits == 32);
    if (!ok) return mml_error(MML_ERR_UNSUPPORTED, "%s: %d-bit %s samples", what, f->bits, f->format == 3 ? "float" : "PCM");
    if (f->block != f->channels * f->bits / 8)
        return mml_error(MML_ERR_FORMAT, "%s: block align %d does not match %d channels of %d bits", what, f->block,
                         f->channels, f->bits);
    return MML_OK;
}

static float sample_at(const unsigned char *p, const fmt_info *f)
{
    switch (f->bits) {
    case 8: return ((float)p[0] - 128.0f) / 128.0f;
    case 16: return (float)(int16_t)le16(p) / 32768.0f;
    case 24: {
        int32_t v = (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24) >> 8;
        return (float)v / 8388608.0f;
    }
    default:
        if (f->format == 3) {
            uint32_t u = le32(p);
            float v;
            memcpy(&v, &u, 4);
            return v;
        }
        return (float)((double)(int32_t)le32(p) / 2147483648.0);
    }
}

mml_status mml_wav_decode(const void *bytes, size_t len, const char *what, mml_audio *out)
{
    memset(out, 0, sizeof *out);
    const unsigned char *b = bytes;
    if (len < 12 || memcmp(b, "RIFF", 4) || memcmp(b + 8, "WAVE", 4))
        return mml_error(MML_ERR_FORMAT, "%s: not a WAV file (no RIFF/WAVE header)", what);
    fmt_info f = { 0 };
    bool have_fmt = false;
    size_t pos = 12;
    while (pos + 8 <= len) {
        uint32_t size = le32(b + pos + 4);
        const unsigned char *body = b + pos + 8;
        size_t avail = len - pos - 8;
        if (!memcmp(b + pos, "fmt ", 4)) {
            if (size > avail) return mml_error(MML_ERR_FORMAT, "%s: fmt chunk runs past the end of the file", what);
            mml_status rc = parse_fmt(body, size, what, &f);
            if (rc != MML_OK) return rc;
            have_fmt = true;
        } else if (!memcmp(b + pos, "data", 4)) {
            if (!have_fmt) return mml_error(MML_ERR_FORMAT, "%s: data chunk before the fmt chunk", what);
            if (size > avail) return mml_error(MML_ERR_FORMAT, "%s: data chunk declares %u bytes, %zu remain (truncated)", what, size, avail);
            int64_t frames = size / (uint32_t)f.block;
            out->samples = mml_malloc((size_t)frames * sizeof(float) + 4);
            if (!out->samples) return MML_ERR_NOMEM;
            for (int64_t i = 0; i < frames; i++) {
                float acc = 0.0f;
                for (int c = 0; c < f.channels; c++) acc += sample_at(body + i * f.block + c * (f.bits / 8), &f);
                out->samples[i] = acc / (float)f.channels;
            }
            out->n = frames;
            out->rate = f.rate;
            out->channels = f.channels;
            out->bits = f.bits;
            return MML_OK;
        }
        if (size > avail) break;
        pos += 8 + (size_t)size + (size & 1); /* chunks are padded to even sizes */
    }
    return mml_error(MML_ERR_FORMAT, "%s: %s", what, have_fmt ? "no data chunk" : "no fmt chunk");
}

mml_status mml_wav_load(const char *path, mml_audio *out)
{
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t len;
    mml_status rc = mml_file_read(path, MAX_FILE, &buf, &len);
    if (rc != MML_OK) return rc;
    rc = mml_wav_decode(buf, len, path, out);
    mml_free(buf);
    return rc;
}

void mml_audio_free(mml_audio *a)
{
    mml_free(a->samples);
    memset(a, 0, sizeof *a);
}

static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }

mml_status mml_wav_save(const char *path, const float *samples, int64_t n, int rate)
{
    if (n < 0 || n > (int64_t)(UINT32_MAX - 44) / 2 || rate < 1)
        return mml_error(MML_ERR_ARG, "%s: cannot write %lld samples at %d Hz", path, (long long)n, rate);
    unsigned char head[44];
    memcpy(head, "RIFF", 4);
    put32(head + 4, (uint32_t)(36 + 2 * n));
    memcpy(head + 8, "WAVEfmt ", 8);
    put32(head + 16, 16);
    put16(head + 20, 1);
    put16(head + 22, 1);
    put32(head + 24, (uint32_t)rate);
    put32(head + 28, (uint32_t)rate * 2);
    put16(head + 32, 2);
    put16(head + 34, 16);
    memcpy(head + 36, "data", 4);
    put32(head + 40, (uint32_t)(2 * n));
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return mml_error(MML_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    bool ok = fwrite(head, 1, 44, f) == 44;
    for (int64_t i = 0; ok && i < n; i++) {
        float v = samples[i] * 32768.0f;
        v = v > 32767.0f ? 32767.0f : (v < -32768.0f ? -32768.0f : v);
        unsigned char s[2];
        put16(s, (uint16_t)(int16_t)lrintf(v));
        ok = fwrite(s, 1, 2, f) == 2;
    }
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return mml_error(MML_ERR_IO, "%s: write failed", path);
    }
    return MML_OK;
}
