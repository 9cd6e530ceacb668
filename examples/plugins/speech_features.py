"""Per-segment features of detected speech, with numpy: a python node of
`examples/audio_vad.toml`."""

import numpy as np

import troupe


class SpeechFeatures(troupe.Extension):
    def initialize(self):
        self.segments = 0
        self.speech_seconds = 0.0

    def segment_features(self, segment, floor_db=-90.0):
        """One speech segment from the VAD (``start_s``, ``end_s``, ``audio``) in, its
        loudness and spectral features out."""
        audio = segment["audio"]
        x = np.asarray(audio.samples, dtype=np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1)
        rms = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
        spectrum = np.abs(np.fft.rfft(x)) if x.size else np.zeros(1)
        freqs = np.fft.rfftfreq(x.size, d=1.0 / audio.sample_rate) if x.size else np.zeros(1)
        power = float(spectrum.sum())
        centroid = float((freqs * spectrum).sum() / power) if power > 0 else 0.0
        signs = np.signbit(x)
        zcr = float(np.count_nonzero(signs[1:] != signs[:-1]) / max(x.size - 1, 1))
        self.segments += 1
        self.speech_seconds += audio.duration
        troupe.singleton("stats").incr("segments")
        return {
            "index": self.segments - 1,
            "start_s": segment["start_s"],
            "end_s": segment["end_s"],
            "sample_rate": audio.sample_rate,
            "duration_s": round(audio.duration, 4),
            "rms_db": round(max(20.0 * np.log10(rms), floor_db) if rms > 0 else floor_db, 2),
            "peak": round(float(np.abs(x).max()) if x.size else 0.0, 4),
            "zero_crossing_rate": round(zcr, 4),
            "spectral_centroid_hz": round(centroid, 1),
        }

    def segment_features_flush(self, floor_db=-90.0):
        """End of stream: one summary line (the shared store's count included)."""
        yield {
            "segments": self.segments,
            "speech_s": round(self.speech_seconds, 3),
            "segments_in_store": troupe.singleton("stats").get("segments", 0),
        }
