//! The background level a voice detector measures speech against.
//!
//! Minimum statistics: the floor is the lowest (lightly smoothed) frame energy of the last
//! `window` frames. Speech pauses between syllables and words within a second or so, so the
//! minimum over a window longer than that sits at the background level during speech too,
//! and it follows a change of background within one window.

use std::collections::VecDeque;

/// Weight of a new frame in the smoothed energy (the rest is the previous value).
const SMOOTHING: f32 = 0.5;

/// Sliding minimum of frame energies in dB.
#[derive(Debug)]
pub(super) struct NoiseFloor {
    window: u64,
    frames: u64,
    smoothed: Option<f32>,
    /// Candidates for the minimum: (frame index, smoothed dB), rising in both.
    minima: VecDeque<(u64, f32)>,
}

impl NoiseFloor {
    /// A floor over the last `window` frames (at least 1).
    pub(super) fn new(window: usize) -> NoiseFloor {
        NoiseFloor {
            window: window.max(1) as u64,
            frames: 0,
            smoothed: None,
            minima: VecDeque::new(),
        }
    }

    /// The floor in dB over the frames pushed so far (`None` before the first).
    pub(super) fn level(&self) -> Option<f32> {
        self.minima.front().map(|&(_, db)| db)
    }

    /// Adds one frame's energy in dB.
    pub(super) fn push(&mut self, energy_db: f32) {
        let smoothed = match self.smoothed {
            Some(prev) => prev + SMOOTHING * (energy_db - prev),
            None => energy_db,
        };
        self.smoothed = Some(smoothed);
        while self.minima.back().is_some_and(|&(_, db)| db >= smoothed) {
            self.minima.pop_back();
        }
        self.minima.push_back((self.frames, smoothed));
        while self
            .minima
            .front()
            .is_some_and(|&(i, _)| i + self.window <= self.frames)
        {
            self.minima.pop_front();
        }
        self.frames += 1;
    }
}

/// Mean power of `samples` in dB relative to full scale (-120 for silence).
pub(super) fn energy_db(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return -120.0;
    }
    let power = samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32;
    10.0 * (power + 1e-12).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_minimum_of_the_window() {
        let mut floor = NoiseFloor::new(4);
        assert_eq!(floor.level(), None);
        floor.push(-60.0);
        assert_eq!(floor.level(), Some(-60.0));
        for _ in 0..3 {
            floor.push(-20.0);
        }
        // Smoothing lifts the later frames, the quiet one is still in the window.
        assert_eq!(floor.level(), Some(-60.0));
        floor.push(-20.0);
        // The quiet frame left the window; the floor rose to the smoothed speech level.
        assert!(floor.level().is_some_and(|l| l > -60.0 && l < -20.0));
        for _ in 0..8 {
            floor.push(-40.0);
        }
        assert!(floor.level().is_some_and(|l| (l + 40.0).abs() < 0.1));
    }

    #[test]
    fn energy_of_a_full_scale_square_is_zero_db() {
        assert!((energy_db(&[1.0, -1.0, 1.0, -1.0])).abs() < 1e-4);
        assert!((energy_db(&[0.1; 8]) + 20.0).abs() < 1e-3);
        assert_eq!(energy_db(&[]), -120.0);
    }
}
