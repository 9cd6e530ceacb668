//! Audio nodes refuse bad input and bad parameters with typed errors, never a panic.

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, NodeError, ParamError};
use troupe_value::{Audio, Map, Value};

fn params(pairs: &[(&str, Value)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn build_err(name: &str, pairs: &[(&str, Value)]) -> NodeError {
    catalog::build(name, params(pairs)).expect_err("should be refused")
}

fn node(name: &str, pairs: &[(&str, Value)]) -> Box<dyn troupe_nodes::Node> {
    match catalog::build(name, params(pairs)).expect(name) {
        Built::Node(node) => node,
        Built::Source(_) => panic!("{name} is a source"),
    }
}

#[test]
fn text_into_resample_is_wrong_input() {
    let mut n = node("audio.resample", &[("rate", Value::Int(16_000))]);
    let err = n
        .process(Value::from("hello"), &mut Emitter::new())
        .expect_err("text");
    assert!(matches!(
        err,
        NodeError::WrongInput {
            node: "audio.resample",
            expected: "audio",
            got: "str"
        }
    ));
}

#[test]
fn every_processing_node_refuses_non_audio() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wav = dir.path().join("never.wav");
    let cases: [(&str, Vec<(&str, Value)>); 6] = [
        ("audio.resample", vec![("rate", Value::Int(8000))]),
        ("audio.channel_mix", vec![]),
        ("audio.chunker", vec![]),
        ("audio.gain", vec![]),
        ("audio.vad", vec![]),
        (
            "audio.wav_sink",
            vec![("path", Value::from(wav.to_str().expect("utf-8")))],
        ),
    ];
    for (name, pairs) in cases {
        let mut n = node(name, &pairs);
        for bad in [Value::Null, Value::Int(3), Value::List(vec![])] {
            assert!(
                matches!(
                    n.process(bad, &mut Emitter::new()),
                    Err(NodeError::WrongInput { .. })
                ),
                "{name}"
            );
        }
        n.flush(&mut Emitter::new()).expect("flush after nothing");
    }
    assert!(!wav.exists());
}

#[test]
fn bad_parameters_are_param_errors() {
    assert!(matches!(
        build_err("audio.resample", &[]),
        NodeError::Params(ParamError::Missing { param: "rate", .. })
    ));
    assert!(matches!(
        build_err("audio.resample", &[("rate", Value::Int(0))]),
        NodeError::Params(ParamError::OutOfRange { param: "rate", .. })
    ));
    assert!(matches!(
        build_err("audio.resample", &[("rate", Value::from("fast"))]),
        NodeError::Params(ParamError::WrongType { param: "rate", .. })
    ));
    assert!(matches!(
        build_err(
            "audio.resample",
            &[("rate", Value::Int(1)), ("quality", Value::Int(1))]
        ),
        NodeError::Params(ParamError::Unknown { .. })
    ));
    assert!(matches!(
        build_err("audio.file_source", &[]),
        NodeError::Params(ParamError::Missing { param: "path", .. })
    ));
    assert!(matches!(
        build_err("audio.channel_mix", &[("mode", Value::from("surround"))]),
        NodeError::Params(ParamError::OutOfRange { param: "mode", .. })
    ));
    assert!(matches!(
        build_err("audio.vad", &[("aggressiveness", Value::Int(4))]),
        NodeError::Params(ParamError::OutOfRange { .. })
    ));
    assert!(matches!(
        build_err(
            "audio.vad",
            &[
                ("pad_ms", Value::Int(500)),
                ("min_silence_ms", Value::Int(200))
            ]
        ),
        NodeError::Params(ParamError::OutOfRange {
            param: "pad_ms",
            ..
        })
    ));
    assert!(matches!(
        build_err("audio.chunker", &[("frames", Value::Int(-5))]),
        NodeError::Params(ParamError::OutOfRange { .. })
    ));
    assert!(matches!(
        build_err(
            "audio.wav_sink",
            &[
                ("path", Value::from("x.wav")),
                ("format", Value::from("u8"))
            ]
        ),
        NodeError::Params(ParamError::OutOfRange {
            param: "format",
            ..
        })
    ));
}

#[test]
fn resample_refuses_ratios_over_64() {
    let mut n = node("audio.resample", &[("rate", Value::Int(16_000))]);
    let audio = Audio::from_interleaved(vec![0.0; 100], 100, 1, 0).expect("audio");
    assert!(matches!(
        n.process(Value::Audio(audio), &mut Emitter::new()),
        Err(NodeError::InvalidInput { .. })
    ));
}

#[test]
fn earshot_refuses_rates_other_than_16k() {
    let mut vad = node("audio.vad", &[]);
    let audio = Audio::from_interleaved(vec![0.0; 480], 48_000, 1, 0).expect("audio");
    assert!(matches!(
        vad.process(Value::Audio(audio), &mut Emitter::new()),
        Err(NodeError::InvalidInput { .. })
    ));
}

#[test]
fn missing_and_corrupt_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let open = |path: &std::path::Path| {
        catalog::build(
            "audio.file_source",
            params(&[("path", Value::from(path.to_str().expect("utf-8")))]),
        )
    };
    assert!(matches!(
        open(&dir.path().join("absent.wav")),
        Err(NodeError::Io { .. })
    ));
    for (name, bytes) in [
        (
            "garbage.mp3",
            b"this is not audio at all, not even close".to_vec(),
        ),
        ("empty.flac", Vec::new()),
        ("short.wav", b"RIFF\x10\0\0\0WAVEfmt ".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let result = open(&path);
        assert!(
            matches!(result, Err(NodeError::Format { .. })),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn non_finite_samples_do_not_panic() {
    let samples = [f32::NAN, f32::INFINITY, -f32::INFINITY, 0.5].repeat(2000);
    for (name, pairs) in [
        ("audio.vad", vec![]),
        ("audio.vad", vec![("method", Value::from("energy"))]),
        ("audio.gain", vec![("normalize", Value::Bool(true))]),
        ("audio.resample", vec![("rate", Value::Int(8000))]),
        ("audio.channel_mix", vec![("mode", Value::from("stereo"))]),
    ] {
        let mut n = node(name, &pairs);
        let audio = Audio::from_interleaved(samples.clone(), 16_000, 1, 0).expect("audio");
        let mut out = Emitter::new();
        n.process(Value::Audio(audio), &mut out).expect(name);
        n.flush(&mut out).expect(name);
    }
}
