//! `audio.channel_mix`: changes the channel layout of each chunk.
//!
//! `mono` averages all channels; `stereo` duplicates a mono chunk into both channels, keeps
//! a stereo chunk as it is and keeps the first two channels (front left and right in the
//! usual layouts) of a wider one; `select` keeps the one channel `channel`. Output is f32,
//! except that a chunk already in the asked layout passes on unchanged.

use troupe_value::Value;

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};

use super::samples::{expect_audio, interleaved_f32, make_audio};

const NAME: &str = "audio.channel_mix";
const MODES: &[&str] = &["mono", "stereo", "select"];

/// The catalog entry.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Mixes audio down to mono, up or down to stereo, or selects one channel.",
    is_source: false,
    params: &[
        ParamSpec {
            name: "mode",
            kind: ParamKind::Choice(MODES),
            default: Some("mono"),
            doc: "mono: average of all channels; stereo: mono duplicated, stereo kept, wider \
                  audio cut to its first two channels; select: the one channel `channel`.",
        },
        ParamSpec {
            name: "channel",
            kind: ParamKind::Int { min: 0, max: 63 },
            default: Some("0"),
            doc: "Channel index (from 0) kept by mode=select.",
        },
    ],
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let mode = match params.choice("mode", MODES, Some("mono"))? {
        "stereo" => Mode::Stereo,
        "select" => {
            let channel = params.int("channel", Some(0))?;
            let channel = u16::try_from(channel).map_err(|_| {
                params.out_of_range("channel", format!("must be 0..65535, got {channel}"))
            })?;
            Mode::Select(channel)
        }
        _ => Mode::Mono,
    };
    Ok(Built::Node(Box::new(ChannelMix { mode })))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Mono,
    Stereo,
    Select(u16),
}

/// Remaps the channels of each chunk.
pub(crate) struct ChannelMix {
    mode: Mode,
}

/// Averages each frame of `samples` (interleaved, `channels` wide).
pub(crate) fn mix_to_mono(samples: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return samples.to_vec();
    }
    let scale = 1.0 / channels as f32;
    samples
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() * scale)
        .collect()
}

impl Node for ChannelMix {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let audio = expect_audio(NAME, input)?;
        let channels = usize::from(audio.channels());
        let unchanged = match self.mode {
            Mode::Mono => channels == 1,
            Mode::Stereo => channels == 2,
            Mode::Select(c) => channels == 1 && c == 0,
        };
        if unchanged {
            out.emit(audio);
            return Ok(());
        }
        let (samples, out_channels) = match self.mode {
            Mode::Mono => (mix_to_mono(&interleaved_f32(&audio), channels), 1),
            Mode::Stereo => {
                let input = interleaved_f32(&audio);
                let stereo = if channels == 1 {
                    input.iter().flat_map(|&s| [s, s]).collect()
                } else {
                    input
                        .chunks_exact(channels)
                        .flat_map(|frame| [frame[0], frame[1]])
                        .collect()
                };
                (stereo, 2)
            }
            Mode::Select(c) => {
                if usize::from(c) >= channels {
                    return Err(no_such_channel(c, audio.channels()));
                }
                let input = interleaved_f32(&audio);
                let picked = input
                    .chunks_exact(channels)
                    .map(|f| f[usize::from(c)])
                    .collect();
                (picked, 1)
            }
        };
        out.emit(make_audio(
            NAME,
            samples,
            audio.sample_rate(),
            out_channels,
            audio.timestamp_ns(),
        )?);
        Ok(())
    }
}

fn no_such_channel(channel: u16, channels: u16) -> NodeError {
    NodeError::InvalidInput {
        node: NAME,
        reason: format!("channel {channel} does not exist in audio of {channels} channel(s)"),
    }
}

#[cfg(test)]
mod tests {
    use troupe_value::Audio;

    use super::super::testing::{audio_of, concat, node, run};
    use super::*;

    fn mix(params: &[(&str, Value)], samples: Vec<f32>, channels: u16) -> Vec<f32> {
        let audio = Audio::from_interleaved(samples, 8000, channels, 42).expect("audio");
        let out = run(node(NAME, params).as_mut(), [audio]);
        let chunks = audio_of(&out);
        assert_eq!(chunks[0].timestamp_ns(), 42);
        concat(&chunks)
    }

    #[test]
    fn modes() {
        let three = vec![0.3, 0.6, 0.9, -0.3, 0.0, 0.3];
        assert_eq!(mix(&[], three.clone(), 3), [0.6, 0.0]);
        let stereo = [("mode", Value::from("stereo"))];
        assert_eq!(mix(&stereo, vec![0.1, 0.2], 1), [0.1, 0.1, 0.2, 0.2]);
        assert_eq!(mix(&stereo, three.clone(), 3), [0.3, 0.6, -0.3, 0.0]);
        assert_eq!(mix(&stereo, vec![0.1, 0.2], 2), [0.1, 0.2]);
        let select = [("mode", Value::from("select")), ("channel", Value::Int(2))];
        assert_eq!(mix(&select, three, 3), [0.9, 0.3]);
    }

    #[test]
    fn a_missing_channel_is_an_error() {
        let mut n = node(
            NAME,
            &[("mode", Value::from("select")), ("channel", Value::Int(1))],
        );
        let audio = Audio::from_interleaved(vec![0.0; 4], 8000, 1, 0).expect("audio");
        assert!(matches!(
            n.process(Value::Audio(audio), &mut Emitter::new()),
            Err(NodeError::InvalidInput { .. })
        ));
    }
}
