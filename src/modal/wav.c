/* RIFF/WAVE: PCM 8 (unsigned), 16, 24, 32-bit integer, 32-bit float, plain
 * or WAVE_FORMAT_EXTENSIBLE; channels averaged to mono; unknown chunks skipped
 * (with their pad byte). Every chunk size is checked against the bytes that
 * remain before it is used. The RIFF size itself is not trusted: streaming
 * writers leave it 0 or 0xFFFFFFFF, and the chunk checks catch truncation. */
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

/* A chunk id made printable for an error message. */
static const char *chunk_name(const unsigned char *id, char out[5])
{
    for (int i = 0; i < 4; i++) out[i] = id[i] >= 32 && id[i] < 127 && id[i] != '\'' ? (char)id[i] : '?';
    out[4] = 0;
    return out;
}

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
    if (f->channels < 1 || f->channels > 64) return mml_error(MML_ERR_FORMAT, "%s: fmt declares %d channels (need 1 to 64)", what, f->channels);
    if (f->rate < 1 || f->rate > 1000000) return mml_error(MML_ERR_FORMAT, "%s: sample rate %d Hz is out of range [1, 1000000]", what, f->rate);
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
    char name[5];
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
            if (frames == 0) return mml_error(MML_ERR_FORMAT, "%s: data chunk of %u bytes holds no sample frame", what, size);
            out->samples = mml_malloc((size_t)frames * sizeof(float) + 4);
            if (!out->samples) return MML_ERR_NOMEM;
            for (int64_t i = 0; i < frames; i++) {
                float acc = 0.0f;
                for (int c = 0; c < f.channels; c++) acc += sample_at(body + i * f.block + c * (f.bits / 8), &f);
                out->samples[i] = acc / (float)f.channels;
                if (!isfinite(out->samples[i])) {
                    mml_audio_free(out);
                    return mml_error(MML_ERR_FORMAT, "%s: sample frame %lld is not a finite number", what, (long long)i);
                }
            }
            out->n = frames;
            out->rate = f.rate;
            out->channels = f.channels;
            out->bits = f.bits;
            return MML_OK;
        }
        if (size > avail)
            return mml_error(MML_ERR_FORMAT, "%s: chunk '%s' declares %u bytes, %zu remain (truncated)", what,
                             chunk_name(b + pos, name), size, avail);
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

/* 16-bit PCM (fmt 16 bytes) or IEEE float (fmt 18 bytes with cbSize 0 and a
 * fact chunk, as the format requires for non-PCM data). */
static mml_status wav_write(const char *path, const float *samples, int64_t n, int rate, bool as_float)
{
    int width = as_float ? 4 : 2;
    size_t head_len = as_float ? 58 : 44;
    if (n < 1 || n > (int64_t)(UINT32_MAX - head_len) / width || rate < 1 || rate > 1000000)
        return mml_error(MML_ERR_ARG, "%s: cannot write %lld samples at %d Hz", path, (long long)n, rate);
    unsigned char head[58], *p = head;
    uint32_t data_len = (uint32_t)(width * n);
    memcpy(p, "RIFF", 4);
    put32(p + 4, (uint32_t)(head_len - 8) + data_len);
    memcpy(p + 8, "WAVEfmt ", 8);
    put32(p + 16, as_float ? 18 : 16);
    put16(p + 20, as_float ? 3 : 1);
    put16(p + 22, 1);
    put32(p + 24, (uint32_t)rate);
    put32(p + 28, (uint32_t)rate * (uint32_t)width);
    put16(p + 32, (uint16_t)width);
    put16(p + 34, (uint16_t)(8 * width));
    p += 36;
    if (as_float) {
        put16(p, 0);
        memcpy(p + 2, "fact", 4);
        put32(p + 6, 4);
        put32(p + 10, (uint32_t)n);
        p += 14;
    }
    memcpy(p, "data", 4);
    put32(p + 4, data_len);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return mml_error(MML_ERR_ARG, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return mml_error(MML_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    bool ok = fwrite(head, 1, head_len, f) == head_len;
    for (int64_t i = 0; ok && i < n; i++) {
        unsigned char s[4];
        if (as_float) {
            uint32_t u;
            memcpy(&u, &samples[i], 4);
            put32(s, u);
        } else {
            float v = isnan(samples[i]) ? 0.0f : samples[i] * 32768.0f;
            v = v > 32767.0f ? 32767.0f : (v < -32768.0f ? -32768.0f : v);
            put16(s, (uint16_t)(int16_t)lrintf(v));
        }
        ok = fwrite(s, 1, (size_t)width, f) == (size_t)width;
    }
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return mml_error(MML_ERR_IO, "%s: write failed", path);
    }
    return MML_OK;
}

mml_status mml_wav_save(const char *path, const float *samples, int64_t n, int rate)
{
    return wav_write(path, samples, n, rate, false);
}

mml_status mml_wav_save_float(const char *path, const float *samples, int64_t n, int rate)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(samples[i])) return mml_error(MML_ERR_ARG, "%s: sample %lld is not finite", path, (long long)i);
    return wav_write(path, samples, n, rate, true);
}
