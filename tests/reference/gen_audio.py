"""torchaudio 0.13 reference features for the audio front-end: spectrogram,
mel, log-mel and MFCC for several parameter sets on two FSDD recordings
(8 kHz, read here with the wave module; the C test reads the same files) and
a synthetic 16 kHz chirp with noise (audio.safetensors); resampling 8k->16k,
16k->8k, 44.1k->16k and silence trimming bounds (audio_proc.safetensors).
Run: /usr/bin/python3 tests/reference/gen_audio.py"""
import os
import wave

import numpy as np
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

import fixtures

FSDD = os.environ.get("MML_DATASETS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "datasets"))
CLIPS = ["0_george_0.wav", "7_jackson_12.wav"]


def read_wav(path):
    with wave.open(path) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
        return torch.from_numpy(data.copy()), w.getframerate()


PARAMS = {  # name: (kind, kwargs)
    "spec_default": ("spectrogram", dict(n_fft=400)),
    "spec_mag_nocenter": ("spectrogram", dict(n_fft=256, win_length=200, hop_length=80, power=1.0, center=False)),
    "mel_htk": ("mel", dict(n_fft=256, hop_length=80, n_mels=40)),
    "mel_slaney_norm": ("mel", dict(n_fft=512, win_length=400, hop_length=160, n_mels=64, f_min=20.0, f_max=3800.0,
                                    mel_scale="slaney", norm="slaney")),
    "logmel": ("logmel", dict(n_fft=256, hop_length=80, n_mels=40)),
    "logmel_topdb": ("logmel", dict(n_fft=256, hop_length=80, n_mels=40, top_db=60.0)),
    "mfcc": ("mfcc", dict(n_fft=256, hop_length=80, n_mels=40, n_mfcc=13)),
    "mfcc_slaney": ("mfcc", dict(n_fft=400, hop_length=160, n_mels=64, n_mfcc=20, mel_scale="slaney", norm="slaney")),
    "spec_odd": ("spectrogram", dict(n_fft=63, hop_length=160)),
    "mel_slaney_center0": ("mel", dict(n_fft=256, hop_length=160, n_mels=32, mel_scale="slaney", center=False)),
    "mfcc_norm_center0": ("mfcc", dict(n_fft=256, hop_length=160, n_mels=32, n_mfcc=13, norm="slaney", center=False)),
}
# Sets computed on every signal; the others on clip0 only, to keep the fixture small.
EVERYWHERE = {"logmel", "mel_slaney_norm", "mfcc", "mfcc_slaney"}
CLIP1 = {"logmel", "mel_slaney_norm", "mfcc"}


def features(x, rate, kind, kw):
    kw = dict(kw)
    top_db = kw.pop("top_db", None)
    if kind == "spectrogram":
        return T.Spectrogram(**kw)(x)
    if kind == "mfcc":
        n_mfcc = kw.pop("n_mfcc")
        return T.MFCC(sample_rate=rate, n_mfcc=n_mfcc, melkwargs=kw)(x)
    m = T.MelSpectrogram(sample_rate=rate, **kw)(x)
    return m if kind == "mel" else T.AmplitudeToDB("power", top_db=top_db)(m)


out = {}
signals = {}
for i, name in enumerate(CLIPS):
    signals[f"clip{i}"] = read_wav(os.path.join(FSDD, "fsdd", "recordings", name))
t = torch.arange(16000 * 0.125) / 16000
torch.manual_seed(5)
chirp = 0.5 * torch.sin(2 * np.pi * (200 + 2500 * t) * t) + 0.05 * torch.randn(len(t))
signals["chirp16k"] = (chirp.float(), 16000)
out["chirp16k.samples"] = chirp.float()
for sname, (x, rate) in signals.items():
    for pname, (kind, kw) in PARAMS.items():
        if sname != "clip0" and (pname not in EVERYWHERE or (sname == "clip1" and pname not in CLIP1)):
            continue
        out[f"{sname}.{pname}"] = features(x, rate, kind, kw)
fixtures.save("audio", out, clips=",".join(CLIPS))


def trim_bounds(y, top_db, frame_length, hop_length):
    """librosa 0.10 effects.trim transcribed (librosa is not installed): frame RMS
    with centred zero padding, power_to_db against the maximum, frames above -top_db."""
    pad = frame_length // 2
    yp = np.pad(y.astype(np.float64), pad)
    frames = 1 + (len(yp) - frame_length) // hop_length
    mse = np.array([np.mean(yp[f * hop_length:f * hop_length + frame_length] ** 2) for f in range(frames)])
    db = 10 * np.log10(np.maximum(mse, 1e-10)) - 10 * np.log10(max(mse.max(), 1e-10))
    nz = np.flatnonzero(db > -top_db)
    return [int(nz[0] * hop_length), int(min(len(y), (nz[-1] + 1) * hop_length))]


proc = {}
clip0 = signals["clip0"][0]
proc["resample.up_8k_16k"] = AF.resample(clip0[:1000], 8000, 16000)  # the first 1000 samples
proc["resample.down_16k_8k"] = AF.resample(chirp.float(), 16000, 8000)
# The C test builds the same tone: 0.3 sin(2 pi 440 i / 44100) + 0.2 sin(2 pi 3000 i / 44100).
tone = 0.3 * torch.sin(2 * np.pi * 440 * torch.arange(4410, dtype=torch.float64) / 44100) + 0.2 * torch.sin(
    2 * np.pi * 3000 * torch.arange(4410, dtype=torch.float64) / 44100)
proc["resample.down_44k_16k"] = AF.resample(tone.float(), 44100, 16000)
for i in range(len(CLIPS)):
    y = signals[f"clip{i}"][0].numpy()
    proc[f"trim.clip{i}"] = np.array(trim_bounds(y, 10, 512, 128) + trim_bounds(y, 20, 256, 64)
                                     + trim_bounds(y, 30, 1024, 256), dtype=np.int64)
fixtures.save("audio_proc", proc, clips=",".join(CLIPS), trim="top_db/frame/hop: 10/512/128, 20/256/64, 30/1024/256")
print("wrote audio fixtures")
