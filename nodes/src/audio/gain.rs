//! `audio.gain`: a fixed gain in dB, or peak normalisation of each chunk.
//!
//! With `normalize = false` every sample is multiplied by `10^(db / 20)`. With
//! `normalize = true` each chunk on its own is scaled so that its peak sample reaches
//! `target_db` dBFS (`db` is then ignored); a chunk whose peak is below -80 dBFS is taken as
//! silence and left as it is, so that noise is not blown up by 80 dB or more. Chunks are
//! normalised independently, so the gain can jump between chunks: put an `audio.chunker`
//! in front to choose the window. Output is f32, clamped to [-1, 1] so it never clips when
//! converted to integer samples.

use troupe_value::Value;

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};

use super::samples::{db_to_gain, expect_audio, interleaved_f32, make_audio};

const NAME: &str = "audio.gain";
/// Peaks below this (-80 dBFS) are silence to normalisation.
const SILENCE_PEAK: f32 = 1e-4;

/// The catalog entry.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Applies a gain in dB, or normalises each chunk's peak to target_db (f32, clamped).",
    is_source: false,
    params: &[
        ParamSpec {
            name: "db",
            kind: ParamKind::Float,
            default: Some("0.0"),
            doc: "Gain in decibels (negative attenuates); ignored when normalize is true.",
        },
        ParamSpec {
            name: "normalize",
            kind: ParamKind::Bool,
            default: Some("false"),
            doc: "Scale each chunk so its peak reaches target_db (chunks below -80 dBFS are \
                  left alone).",
        },
        ParamSpec {
            name: "target_db",
            kind: ParamKind::Float,
            default: Some("-1.0"),
            doc: "Peak level in dBFS that normalize aims for (at most 0).",
        },
    ],
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let db = params.float("db", Some(0.0))?;
    if !db.is_finite() || db.abs() > 200.0 {
        return Err(params
            .out_of_range("db", format!("must be within +-200 dB, got {db}"))
            .into());
    }
    let mode = if params.bool("normalize", Some(false))? {
        let target_db = params.float("target_db", Some(-1.0))?;
        if !(-200.0..=0.0).contains(&target_db) {
            return Err(params
                .out_of_range(
                    "target_db",
                    format!("must be in -200..=0 dBFS, got {target_db}"),
                )
                .into());
        }
        Mode::Normalize(db_to_gain(target_db))
    } else {
        Mode::Fixed(db_to_gain(db))
    };
    Ok(Built::Node(Box::new(Gain { mode })))
}

enum Mode {
    /// Linear factor.
    Fixed(f32),
    /// Linear peak to reach.
    Normalize(f32),
}

/// Scales audio samples.
pub(crate) struct Gain {
    mode: Mode,
}

impl Node for Gain {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let audio = expect_audio(NAME, input)?;
        let samples = interleaved_f32(&audio);
        let factor = match self.mode {
            Mode::Fixed(factor) => factor,
            Mode::Normalize(target) => {
                let peak = samples
                    .iter()
                    .filter(|s| s.is_finite())
                    .fold(0.0f32, |m, s| m.max(s.abs()));
                if peak < SILENCE_PEAK {
                    1.0
                } else {
                    target / peak
                }
            }
        };
        let scaled = samples
            .iter()
            .map(|&s| (s * factor).clamp(-1.0, 1.0))
            .collect();
        out.emit(make_audio(
            NAME,
            scaled,
            audio.sample_rate(),
            audio.channels(),
            audio.timestamp_ns(),
        )?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use troupe_value::{Array, Audio};

    use super::super::testing::{audio_of, concat, node, run};
    use super::*;

    fn apply(params: &[(&str, Value)], audio: Audio) -> Vec<f32> {
        concat(&audio_of(&run(node(NAME, params).as_mut(), [audio])))
    }

    #[test]
    fn decibels_are_exact_and_clamped() {
        let audio = Audio::from_interleaved(vec![0.5, -0.25, 0.0, 0.9], 8000, 2, 0).expect("a");
        let out = apply(&[("db", Value::Float(-20.0))], audio.clone());
        for (got, want) in out.iter().zip([0.05f32, -0.025, 0.0, 0.09]) {
            assert!((got - want).abs() < 1e-7, "{got} != {want}");
        }
        let out = apply(&[("db", Value::Float(6.0))], audio);
        let factor = 10f32.powf(6.0 / 20.0);
        assert!((out[1] + 0.25 * factor).abs() < 1e-6);
        assert_eq!(out[3], 1.0);
    }

    #[test]
    fn normalisation_reaches_the_target_peak() {
        let pcm = Array::from_slice(&[1000i16, -8000, 4000, 0], vec![4]).expect("array");
        let audio = Audio::new(pcm, 16_000, 1, 0).expect("audio");
        let out = apply(
            &[
                ("normalize", Value::Bool(true)),
                ("target_db", Value::Float(-6.0)),
            ],
            audio,
        );
        let target = 10f32.powf(-6.0 / 20.0);
        assert!((out[1] + target).abs() < 1e-6);
        assert!((out[0] - target / 8.0).abs() < 1e-6);
        let silence = Audio::from_interleaved(vec![1e-6; 4], 8000, 1, 0).expect("audio");
        assert_eq!(
            apply(&[("normalize", Value::Bool(true))], silence),
            vec![1e-6; 4]
        );
    }

    #[test]
    fn impossible_targets_are_param_errors() {
        let map = [
            ("normalize".to_owned(), Value::Bool(true)),
            ("target_db".to_owned(), Value::Float(3.0)),
        ]
        .into_iter()
        .collect();
        assert!(matches!(
            crate::catalog::build(NAME, map),
            Err(NodeError::Params(crate::ParamError::OutOfRange { .. }))
        ));
    }
}
