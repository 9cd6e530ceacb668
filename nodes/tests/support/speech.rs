//! Test signals shared by the integration tests.
//!
//! Speech-like bursts (a glottal pulse train through moving formants) with known
//! boundaries, and loud sounds that are not speech.

/// Where the bursts are, in seconds.
pub(crate) const SPEECH: [(f64, f64); 4] = [(0.8, 2.3), (3.5, 4.3), (5.6, 7.6), (8.4, 9.0)];
/// A 1 kHz tone and a burst of white noise, both at -20 dBFS: loud, but not speech.
pub(crate) const TONE: (f64, f64) = (10.5, 11.3);
pub(crate) const HISS: (f64, f64) = (12.0, 12.8);
pub(crate) const TOTAL_S: f64 = 14.0;

/// Deterministic noise in [-1, 1].
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// A two-pole resonator (a formant).
struct Formant {
    a1: f32,
    a2: f32,
    gain: f32,
    y1: f32,
    y2: f32,
}

impl Formant {
    fn new() -> Formant {
        Formant {
            a1: 0.0,
            a2: 0.0,
            gain: 0.0,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn tune(&mut self, freq: f32, bandwidth: f32, rate: u32) {
        let rate = rate as f32;
        let r = (-std::f32::consts::PI * bandwidth / rate).exp();
        self.a1 = 2.0 * r * (2.0 * std::f32::consts::PI * freq / rate).cos();
        self.a2 = -r * r;
        self.gain = 1.0 - r;
    }

    fn run(&mut self, x: f32) -> f32 {
        let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Speech-like bursts at `SPEECH`: a glottal pulse train (110-200 Hz, gliding) through three
/// formants that move every 180 ms syllable, with a syllabic envelope and breath noise,
/// over background noise at about -55 dBFS; then `TONE` and `HISS`. Mono at `rate`.
pub(crate) fn speech_like(rate: u32) -> Vec<f32> {
    const VOWELS: [(f32, f32, f32); 5] = [
        (730.0, 1090.0, 2440.0),
        (270.0, 2290.0, 3010.0),
        (530.0, 1840.0, 2480.0),
        (570.0, 840.0, 2410.0),
        (300.0, 870.0, 2240.0),
    ];
    let rate_hz = rate;
    let rate = f64::from(rate);
    let mut noise = Noise(7);
    let mut formants = [Formant::new(), Formant::new(), Formant::new()];
    let mut phase = 0.0f64;
    let mut vowel = usize::MAX;
    (0..(TOTAL_S * rate) as usize)
        .map(|i| {
            let t = i as f64 / rate;
            let mut s = 0.0025 * noise.next();
            if let Some(&(start, end)) = SPEECH.iter().find(|(a, b)| t >= *a && t < *b) {
                let rel = t - start;
                let syllable = (rel / 0.18) as usize;
                if syllable % VOWELS.len() != vowel {
                    vowel = syllable % VOWELS.len();
                    let (f1, f2, f3) = VOWELS[vowel];
                    formants[0].tune(f1, 80.0, rate_hz);
                    formants[1].tune(f2, 100.0, rate_hz);
                    formants[2].tune(f3, 150.0, rate_hz);
                }
                let f0 = 150.0 + 40.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
                phase += f0 / rate;
                let pulse = if phase >= 1.0 {
                    phase -= 1.0;
                    12.0
                } else {
                    0.0
                };
                let source = pulse + 0.05 * noise.next();
                let syllabic = 0.55 - 0.45 * (2.0 * std::f64::consts::PI * rel / 0.18).cos();
                let ramp = (rel / 0.02).min(1.0) * ((end - t) / 0.02).min(1.0);
                let voice = formants[0].run(source)
                    + 0.6 * formants[1].run(source)
                    + 0.3 * formants[2].run(source);
                s += 0.3 * (syllabic * ramp) as f32 * voice;
            }
            if (TONE.0..TONE.1).contains(&t) {
                s += 0.1 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin() as f32;
            }
            if (HISS.0..HISS.1).contains(&t) {
                s += 0.1 * noise.next();
            }
            s
        })
        .collect()
}
