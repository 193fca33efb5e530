"""torchaudio 0.13 reference features for the audio front-end: spectrogram,
mel, log-mel and MFCC for several parameter sets on two FSDD recordings
(8 kHz, read here with the wave module; the C test reads the same files) and
a synthetic 16 kHz chirp with noise; resampling 8k->16k, 16k->8k, 44.1k->16k.
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
}


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
t = torch.arange(16000 * 0.25) / 16000
torch.manual_seed(5)
chirp = 0.5 * torch.sin(2 * np.pi * (200 + 2500 * t) * t) + 0.05 * torch.randn(len(t))
signals["chirp16k"] = (chirp.float(), 16000)
out["chirp16k.samples"] = chirp.float()
for sname, (x, rate) in signals.items():
    for pname, (kind, kw) in PARAMS.items():
        if pname.startswith("spec") and sname != "clip0":
            continue  # one clip covers the plain spectrogram; keeps the fixture small
        out[f"{sname}.{pname}"] = features(x, rate, kind, kw)
for name, (src, a, b) in {"up_8k_16k": ("clip0", 8000, 16000), "down_16k_8k": ("chirp16k", 16000, 8000)}.items():
    out[f"resample.{name}"] = AF.resample(signals[src][0][:2000], a, b)  # first 2000 samples
tone = 0.3 * torch.sin(2 * np.pi * 440 * torch.arange(4410) / 44100) + 0.2 * torch.sin(
    2 * np.pi * 3000 * torch.arange(4410) / 44100)
out["resample.tone44k"] = tone.float()
out["resample.down_44k_16k"] = AF.resample(tone.float(), 44100, 16000)
fixtures.save("audio", out, clips=",".join(CLIPS))
print("wrote audio fixtures")
