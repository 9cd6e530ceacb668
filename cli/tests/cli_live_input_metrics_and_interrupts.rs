//! Live input as a user runs it: `troupe listen` with a WebSocket client streaming speech
//! in and getting VAD events back while it still streams; `troupe run` reading a FIFO with
//! `--metrics`, scraped during the run, then stopped with Ctrl-C (SIGINT): the summary of
//! what was done is printed and the exit code is 130.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::troupe;

/// Reads `child`'s stderr until a line starting with `prefix`; returns the rest of that
/// line's first word after it. The rest of stderr is drained on a thread (and returned
/// by the handle).
fn announced(child: &mut Child, prefix: &str) -> (String, std::thread::JoinHandle<String>) {
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no `{prefix}` line: {seen}"
        );
        seen.push_str(&line);
        if let Some(rest) = line.strip_prefix(prefix) {
            let word = rest.split_whitespace().next().unwrap().to_owned();
            let rest = std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            });
            return (word, rest);
        }
    }
}

fn interrupt(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(pid, libc::SIGINT) };
}

#[test]
fn a_client_streams_speech_in_and_gets_its_events_while_it_streams() {
    let mut listen = troupe()
        .args(["listen", "examples/live_vad.toml", "--input", "mic"])
        .args(["--output", "vad", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (url, rest) = announced(&mut listen, "listening on ");
    let wav = std::fs::read("../examples/data/speech.wav")
        .or_else(|_| {
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/speech.wav"))
        })
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events: Vec<(serde_json::Value, f64)> = runtime.block_on(async {
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        let (mut to_server, mut from_server) = socket.split();
        // 22.05 kHz mono s16: 20 ms is 882 bytes; sent at twice real time.
        let chunk = 882;
        let (header, samples) = wav.split_at(44);
        to_server
            .send(Message::binary(header.to_vec()))
            .await
            .unwrap();
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sending = {
            let sent = sent.clone();
            let samples = samples.to_vec();
            async move {
                for piece in samples.chunks(chunk) {
                    to_server
                        .send(Message::binary(piece.to_vec()))
                        .await
                        .unwrap();
                    sent.fetch_add(piece.len() as u64, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                to_server.send(Message::text("end")).await.unwrap();
            }
        };
        let receiving = async {
            let mut events = Vec::new();
            while let Some(Ok(message)) = from_server.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let event: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                // How much audio the client had sent when the event came, in seconds.
                let sent_s = sent.load(std::sync::atomic::Ordering::SeqCst) as f64 / 44_100.0;
                let end = event["event"] == "end";
                events.push((event, sent_s));
                if end {
                    break;
                }
            }
            events
        };
        let ((), events) = tokio::join!(sending, receiving);
        events
    });
    interrupt(&listen);
    let status = listen.wait().unwrap();
    let stderr = rest.join().unwrap();
    assert!(status.success(), "{status:?}: {stderr}");

    let kinds = |kind: &str| {
        events
            .iter()
            .filter(|(e, _)| e["event"] == kind)
            .collect::<Vec<_>>()
    };
    let starts = kinds("speech_start");
    let ends = kinds("speech_end");
    // examples/data/speech.wav has 4 bursts.
    assert_eq!(starts.len(), 4, "{events:?}");
    assert_eq!(ends.len(), 4, "{events:?}");
    assert_eq!(kinds("segment").len(), 4);
    let probabilities = kinds("probability").len();
    assert!(
        probabilities > 50,
        "one per chunk the VAD took: {probabilities}"
    );
    for (event, sent_s) in starts.iter().chain(&ends) {
        let t = event["time_s"].as_f64().unwrap();
        // Decided within half a second of audio after its time (the VAD's own confirmation
        // and hangover, plus the transport), while the client still streams.
        assert!(
            *sent_s < t + 0.8,
            "{event} came only after {sent_s:.2} s of audio were sent"
        );
    }
    let end = &events.last().unwrap().0;
    assert_eq!(end["event"], "end");
    assert_eq!(end["error"], serde_json::Value::Null);
}

/// `GET /metrics` from `address`.
fn scrape(address: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

/// The value of the sample `name{labels}` in a Prometheus text exposition.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels))
        .and_then(|rest| rest.trim().parse().ok())
}

#[test]
fn a_run_from_a_fifo_serves_metrics_and_prints_its_summary_when_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("mic.pcm");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let manifest = dir.path().join("live.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[pipelines.live.nodes]]\nid = \"mic\"\ntype = \"audio.stream_source\"\n\
             params = {{ path = \"{}\", format = \"s16le\", sample_rate = 16000 }}\n\
             [[pipelines.live.nodes]]\nid = \"vad\"\ntype = \"audio.vad\"\n\
             params = {{ events = true }}\n\
             [[pipelines.live.edges]]\nfrom = \"mic\"\nto = \"vad\"\n",
            fifo.display()
        ),
    )
    .unwrap();
    let mut run = troupe()
        .arg("run")
        .arg(&manifest)
        .args(["--metrics", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (metrics_url, rest) = announced(&mut run, "metrics at ");
    let address = metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    // One second of a 440 Hz tone, and the writer kept open: the run waits for more.
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let tone: Vec<u8> = (0..16_000)
        .flat_map(|i| {
            let x = (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin();
            ((x * 8000.0) as i16).to_le_bytes()
        })
        .collect();
    writer.write_all(&tone).unwrap();
    let began = Instant::now();
    let taken = loop {
        let text = scrape(&address);
        let taken = sample(
            &text,
            "troupe_node_items_in_total{pipeline=\"live\",node=\"vad\"}",
        );
        if taken.is_some_and(|n| n >= 50.0) {
            assert!(
                text.contains("troupe_node_process_seconds_bucket"),
                "{text}"
            );
            assert!(
                sample(
                    &text,
                    "troupe_node_items_out_total{pipeline=\"live\",node=\"mic\"}"
                )
                .is_some_and(|n| n >= 50.0),
                "{text}"
            );
            break taken.unwrap();
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the run never took the audio: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(taken, 50.0, "one second in 20 ms chunks");
    interrupt(&run);
    let output = run.wait_with_output().unwrap();
    drop(writer);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = rest.join().unwrap();
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stderr.contains("the run was cancelled"), "{stderr}");
    let vad = stdout
        .lines()
        .find(|l| l.starts_with("vad "))
        .unwrap_or_else(|| panic!("a summary line for vad: {stdout}"));
    assert!(vad.contains(" 50 "), "it counts the 50 chunks taken: {vad}");
}
