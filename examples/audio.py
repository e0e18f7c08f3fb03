"""Fit an audio clip with SIREN (1-D coordinates, a high first-layer omega_0).

Run: `python examples/audio.py [--samples 16384] [--steps 1000]`
Dense audio needs first_omega_0 in the thousands on [-1, 1] coordinates (SIREN used
3000); the default 30 cannot follow thousands of oscillations.
"""

import argparse

import matplotlib.pyplot as plt

import skinr
from skinr.signals import to_coords

parser = argparse.ArgumentParser()
parser.add_argument("--samples", type=int, default=16384)
parser.add_argument("--steps", type=int, default=1000)
args = parser.parse_args()

clip = skinr.datasets.audio_clip(args.samples, random_state=0)
X, y = to_coords(clip)
fig, ax = plt.subplots(figsize=(9, 3.2))
middle = slice(len(clip) // 2, len(clip) // 2 + min(256, len(clip) // 2))
ax.plot(X[middle, 0], clip[middle], "k", lw=2, alpha=0.4, label="clip")
for omega in (30.0, 3000.0):
    model = skinr.SIREN(
        first_omega_0=omega, max_iter=args.steps, random_state=0, data_range=2.0
    ).fit(X, y)
    print(f"first_omega_0={omega:g}: PSNR {model.score(X, y):.2f} dB (range 2)")
    label = f"first_omega_0={omega:g} ({model.score(X, y):.1f} dB)"
    ax.plot(X[middle, 0], model.predict(X[middle]), lw=0.8, label=label)
ax.set(xlabel="coordinate", title="a stretch of the clip and both fits")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
