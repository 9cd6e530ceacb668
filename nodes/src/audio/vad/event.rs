//! The maps `audio.vad` emits besides its segments when `events` or `probability` is on.
//!
//! Every such map has an `"event"` key (and so do the segment maps then), so a consumer
//! branches on one key: `speech_start`, `speech_end`, `probability` or `segment`.

use troupe_value::Value;

/// The key every event map has.
pub(super) const KEY: &str = "event";
/// The `"event"` value of a segment map.
pub(super) const SEGMENT: &str = "segment";

/// Speech was confirmed; it began at `time_s`.
pub(super) fn speech_start(time_s: f64) -> Value {
    Value::map([
        (KEY, Value::from("speech_start")),
        ("time_s", Value::Float(time_s)),
    ])
}

/// Speech that began at `start_s` ended at `time_s` (the end of its last voiced frame).
pub(super) fn speech_end(time_s: f64, start_s: f64) -> Value {
    Value::map([
        (KEY, Value::from("speech_end")),
        ("time_s", Value::Float(time_s)),
        ("start_s", Value::Float(start_s)),
    ])
}

/// The speech probability `p` of the chunk that starts at `time_s`.
pub(super) fn probability(time_s: f64, p: f32) -> Value {
    Value::map([
        (KEY, Value::from("probability")),
        ("time_s", Value::Float(time_s)),
        ("p", Value::Float(f64::from(p))),
    ])
}

/// The energy method's stand-in for a probability: how far the frame is over the noise
/// floor, as a share of twice the margin that opens a candidate (`open_db`), in 0..=1. So
/// `p >= 0.5` exactly when the frame is loud enough to open a candidate.
pub(super) fn energy_probability(margin_db: f32, open_db: f32) -> f32 {
    if open_db <= 0.0 {
        return if margin_db > 0.0 { 1.0 } else { 0.0 };
    }
    (margin_db / (2.0 * open_db)).clamp(0.0, 1.0)
}

/// The highest frame probability among the frames one chunk completes.
#[derive(Debug, Default)]
pub(super) struct ChunkScore {
    /// The last frame's probability (what a chunk that completes no frame reports).
    last: f32,
    /// The highest in this chunk so far, if it completed a frame.
    max: Option<f32>,
}

impl ChunkScore {
    /// Adds the probability of a frame the chunk completed.
    pub(super) fn frame(&mut self, p: f32) {
        let p = if p.is_finite() {
            p.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.last = p;
        self.max = Some(self.max.map_or(p, |max| max.max(p)));
    }

    /// The chunk's probability; starts the next chunk.
    pub(super) fn take(&mut self) -> f32 {
        self.max.take().unwrap_or(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_probability_is_one_half_at_the_open_margin() {
        assert_eq!(energy_probability(9.0, 9.0), 0.5);
        assert_eq!(energy_probability(-3.0, 9.0), 0.0);
        assert_eq!(energy_probability(40.0, 9.0), 1.0);
    }

    #[test]
    fn a_chunk_reports_its_loudest_frame_or_repeats_the_last() {
        let mut score = ChunkScore::default();
        assert_eq!(score.take(), 0.0);
        score.frame(0.2);
        score.frame(0.9);
        score.frame(0.4);
        assert_eq!(score.take(), 0.9);
        assert_eq!(score.take(), 0.4);
        score.frame(f32::NAN);
        assert_eq!(score.take(), 0.0);
    }
}
