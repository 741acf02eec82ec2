"""Regenerate the non-English test calls (needs espeak-ng and ffmpeg; the outputs are committed).

french-late-start.ogg: 40 s of faint line noise, then a French caller. Whisper's own language
detection looks at the first 30 s of a file and would see no speech there.
spanish-call.ogg: a Spanish caller from the start.
"""
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SR = 16000
TEXTS = {
    "fr": "Bonjour, je vous appelle au sujet de ma facture du mois dernier. Le montant est beaucoup trop "
          "élevé et je voudrais un remboursement. Pouvez-vous vérifier mon compte, s'il vous plaît? "
          "Merci beaucoup, bonne journée.",
    "es": "Buenos días, llamo porque mi pedido no ha llegado todavía. Lo compré hace dos semanas y el "
          "número de seguimiento no funciona. ¿Pueden enviarlo de nuevo? Gracias.",
}


def speak(lang: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "x.wav"
        subprocess.run(["espeak-ng", "-v", lang, "-s", "150", "-w", str(wav), TEXTS[lang]], check=True)
        pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-ac", "1", "-ar", str(SR), "-f", "s16le", "-"],
                             capture_output=True, check=True).stdout
    return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768


def save(audio: np.ndarray, name: str) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "s16le", "-ar", str(SR), "-ac", "1", "-i", "-",
                    "-map_metadata", "-1", "-c:a", "libopus", "-b:a", "24k", str(HERE / name)], input=pcm, check=True)


def main() -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 10 ** (-60 / 20), 40 * SR).astype(np.float32)
    save(np.concatenate([noise, speak("fr"), np.zeros(SR, np.float32)]), "french-late-start.ogg")
    save(np.concatenate([np.zeros(SR // 2, np.float32), speak("es"), np.zeros(SR, np.float32)]), "spanish-call.ogg")


if __name__ == "__main__":
    main()
