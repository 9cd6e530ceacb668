//! What every audio node does to its input and output: check that it is audio, read its
//! samples as interleaved f32, make new chunks, and turn frame counts into time.

use std::borrow::Cow;

use troupe_value::{Audio, DType, Value};

use crate::node::NodeError;

/// Scale of i16 samples: `i16::MIN` maps to -1.0.
const I16_SCALE: f32 = 32768.0;

/// The audio chunk in `input`, or [`NodeError::WrongInput`].
pub(crate) fn expect_audio(node: &'static str, input: Value) -> Result<Audio, NodeError> {
    match input {
        Value::Audio(audio) => Ok(audio),
        other => Err(NodeError::WrongInput {
            node,
            expected: "audio",
            got: other.type_name(),
        }),
    }
}

/// The chunk's samples as interleaved f32 in [-1, 1] (i16 is scaled by 1/32768).
///
/// Borrows f32 samples when their bytes are aligned, copies otherwise.
pub(crate) fn interleaved_f32(audio: &Audio) -> Cow<'_, [f32]> {
    let samples = audio.samples();
    match samples.dtype() {
        DType::I16 => {
            let converted = match samples.as_slice::<i16>() {
                Some(s) => s.iter().map(|&v| f32::from(v) / I16_SCALE).collect(),
                None => samples
                    .to_vec::<i16>()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| f32::from(v) / I16_SCALE)
                    .collect(),
            };
            Cow::Owned(converted)
        }
        // `Audio` holds only f32 or i16, so this is f32.
        _ => match samples.as_slice::<f32>() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(samples.to_vec::<f32>().unwrap_or_default()),
        },
    }
}

/// A chunk of interleaved f32 `samples`; `InvalidInput` if they do not fill whole frames.
pub(crate) fn make_audio(
    node: &'static str,
    samples: Vec<f32>,
    sample_rate: u32,
    channels: u16,
    timestamp_ns: u64,
) -> Result<Audio, NodeError> {
    if !samples.len().is_multiple_of(usize::from(channels.max(1))) {
        return Err(NodeError::InvalidInput {
            node,
            reason: format!(
                "{} samples do not make whole frames of {channels} channels",
                samples.len()
            ),
        });
    }
    Audio::from_interleaved(samples, sample_rate, channels, timestamp_ns).map_err(|e| {
        NodeError::InvalidInput {
            node,
            reason: e.to_string(),
        }
    })
}

/// Nanoseconds that `frames` frames last at `sample_rate` (rounded down, no overflow).
pub(crate) fn frames_to_ns(frames: u64, sample_rate: u32) -> u64 {
    let ns = u128::from(frames) * 1_000_000_000 / u128::from(sample_rate.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Converts an f32 sample in [-1, 1] to i16, clamping what lies outside (NaN becomes 0).
pub(crate) fn f32_to_i16(sample: f32) -> i16 {
    // `as` saturates and maps NaN to 0.
    (sample * I16_SCALE)
        .round()
        .clamp(-I16_SCALE, I16_SCALE - 1.0) as i16
}

/// A linear gain factor from decibels.
pub(crate) fn db_to_gain(db: f64) -> f32 {
    10f64.powf(db / 20.0) as f32
}

#[cfg(test)]
mod tests {
    use troupe_value::Array;

    use super::*;

    #[test]
    fn i16_and_f32_read_as_f32() {
        let a = Audio::new(
            Array::from_slice(&[i16::MIN, 0, 16384, i16::MAX], vec![2, 2]).expect("array"),
            8000,
            2,
            0,
        )
        .expect("audio");
        assert_eq!(
            interleaved_f32(&a).as_ref(),
            &[-1.0, 0.0, 0.5, 32767.0 / 32768.0]
        );
        let b = Audio::from_interleaved(vec![0.25, -0.5], 8000, 1, 0).expect("audio");
        assert!(matches!(interleaved_f32(&b), Cow::Borrowed(&[0.25, -0.5])));
    }

    #[test]
    fn conversions() {
        assert_eq!(frames_to_ns(16_000, 16_000), 1_000_000_000);
        assert_eq!(frames_to_ns(1, 3), 333_333_333);
        assert_eq!(f32_to_i16(2.0), i16::MAX);
        assert_eq!(f32_to_i16(-2.0), i16::MIN);
        assert_eq!(f32_to_i16(f32::NAN), 0);
        assert_eq!(f32_to_i16(0.5), 16384);
        assert!((db_to_gain(-20.0) - 0.1).abs() < 1e-7);
        assert!(matches!(
            expect_audio("t", Value::Int(1)),
            Err(NodeError::WrongInput { got: "int", .. })
        ));
    }
}
