"""Make the hold-music clips that tests/test_hard_audio.py uses (run once; the outputs are committed).

    python tests/data/make_hard_audio.py [--wheel arcade-3.3.3-py3-none-any.whl]

Real music, not synthesized: two instrumental tracks by Anttis ("1918" and "Funky Robot", from
https://www.soundclick.com/bands/?bandID=1277008, released by the artist as free-to-use
instrumentals) as the Python Arcade library redistributes them inside its wheel on PyPI
(arcade 3.3.3, arcade/resources/assets/music/, with a readme crediting Anttis). Without --wheel
the script fetches that wheel with `pip download --no-deps arcade==3.3.3`.

Each clip is 40 s cut from 60 s into the track (past the intro, where the full arrangement
plays) and made to sound like music on hold heard through a phone line: mono, telephone band
(300-3400 Hz), 8 kHz, through G.711 mu-law once, then stored as a small 8 kHz mp3. The tests
turn it back into an 8 kHz mu-law WAV, the format many call recorders write.

Every other hard-audio case (silence, room tone, noise, hum) is generated inside the test from
a fixed seed, so it needs no file here.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRACKS = {"hold-music-1918.mp3": "1918.mp3", "hold-music-funkyrobot.mp3": "funkyrobot.mp3"}
START, SECONDS = 60.0, 40.0
PHONE = "highpass=f=300:poles=2,highpass=f=300:poles=2,lowpass=f=3400:poles=2,lowpass=f=3400:poles=2"


def ffmpeg(*args: str, input: bytes | None = None) -> bytes:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", *args]
    return subprocess.run(cmd, input=input, capture_output=True, check=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", help="a local arcade-3.3.3 wheel (else pip downloads it)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = Path(a.wheel) if a.wheel else None
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "arcade==3.3.3",
                            "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("arcade-3.3.3-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            for out, name in TRACKS.items():
                src = Path(tmp) / name
                src.write_bytes(z.read(f"arcade/resources/assets/music/{name}"))
                # phone line: band-limit, 8 kHz, G.711 mu-law round trip
                ulaw = ffmpeg("-ss", f"{START}", "-t", f"{SECONDS}", "-i", str(src), "-ac", "1",
                              "-af", PHONE, "-ar", "8000", "-c:a", "pcm_mulaw", "-f", "wav", "-")
                ffmpeg("-f", "wav", "-i", "-", "-map_metadata", "-1", "-fflags", "+bitexact",
                       "-flags:a", "+bitexact", "-ar", "8000", "-c:a", "libmp3lame", "-b:a", "24k",
                       str(HERE / out), input=ulaw)
                print(f"{HERE / out}: {(HERE / out).stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
