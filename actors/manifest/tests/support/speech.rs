//! Speech-like test audio with voiced bursts at known times (included with `#[path]`).
//!
//! Each burst is additive vowel synthesis: the harmonics of a gliding pitch (110-190 Hz),
//! weighted by three formant resonances that change every syllable (~170 ms), under a
//! syllabic envelope; the whole file carries faint background noise (about -60 dBFS).

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::f64::consts::TAU;
use std::path::Path;

/// Formant frequencies (Hz) of five vowels: a, i, e, o, u.
const VOWELS: [[f64; 3]; 5] = [
    [750.0, 1150.0, 2500.0],
    [280.0, 2250.0, 2950.0],
    [500.0, 1800.0, 2550.0],
    [550.0, 900.0, 2400.0],
    [320.0, 850.0, 2250.0],
];
const SYLLABLE_S: f64 = 0.17;

/// `seconds` of audio at `rate` with speech at each `(start, end)` of `bursts`.
pub fn speech_like(rate: u32, seconds: f64, bursts: &[(f64, f64)]) -> Vec<f32> {
    let rate = f64::from(rate);
    let mut noise = 0x2545_f491_4f6c_dd1d_u64;
    let mut phase = 0.0f64;
    (0..(seconds * rate) as usize)
        .map(|i| {
            let t = i as f64 / rate;
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let hiss = (noise >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            let mut s = 0.001 * hiss;
            if let Some(&(start, end)) = bursts.iter().find(|(a, b)| (*a..*b).contains(&t)) {
                let rel = t - start;
                let f0 = 150.0 + 40.0 * (TAU * 0.9 * t).sin();
                phase = (phase + f0 / rate).fract();
                let formants = VOWELS[(rel / SYLLABLE_S) as usize % VOWELS.len()];
                let voice = vowel(phase, f0, &formants);
                let syllabic = 0.6 - 0.4 * (TAU * rel / SYLLABLE_S).cos();
                let ramp = (rel / 0.015).min(1.0) * ((end - t) / 0.015).min(1.0);
                s += 0.25 * syllabic * ramp * voice + 0.01 * syllabic * ramp * hiss;
            }
            s as f32
        })
        .collect()
}

/// One sample of a vowel: harmonics of `f0` up to 4 kHz at glottal phase `phase`, each
/// weighted by how near it is to a formant.
fn vowel(phase: f64, f0: f64, formants: &[f64; 3]) -> f64 {
    let mut sum = 0.0;
    let mut k = 1.0;
    while k * f0 < 4_000.0 {
        let f = k * f0;
        let gain: f64 = formants
            .iter()
            .enumerate()
            .map(|(n, &formant)| {
                let bandwidth = 80.0 + 40.0 * n as f64;
                let detune = (f - formant) / bandwidth;
                1.0 / (1.0 + detune * detune) / (1.0 + n as f64)
            })
            .sum();
        sum += gain / k.sqrt() * (TAU * k * phase).sin();
        k += 1.0;
    }
    sum * 0.4
}

/// Writes `samples` as a mono 16-bit WAV.
pub fn write_wav(path: &Path, rate: u32, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        wav.write_sample((s.clamp(-1.0, 1.0) * 32_767.0).round() as i16)
            .unwrap();
    }
    wav.finalize().unwrap();
}
