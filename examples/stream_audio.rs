//! Streams a WAV file into a running `troupe listen` session in real time, 20 ms per
//! message as a microphone would, and prints the speech events that come back with their
//! latency.
//!
//! ```text
//! cargo run --release -- listen examples/live_vad.toml --input mic --output vad
//! cargo run --release --example stream_audio -- examples/data/speech.wav [ws://127.0.0.1:8765]
//! ```
//!
//! Latency: a `probability` event for the VAD's chunk `[t, t')` can leave only once the
//! client has sent the audio up to `t'`; its latency is the time from that send to the
//! event's arrival. The run ends with p50/p99 of those, and each `speech_start` /
//! `speech_end` with its media time and when it arrived. `--fast` sends as fast as the
//! server takes it (no pacing).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// Media per message.
const CHUNK: Duration = Duration::from_millis(20);
/// Canonical WAV header bytes sent first.
const HEADER: usize = 44;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fast = args.iter().any(|a| a == "--fast");
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let path = positional
        .first()
        .ok_or("usage: stream_audio FILE.wav [ws://HOST:PORT] [--fast]")?;
    let url = positional
        .get(1)
        .map_or("ws://127.0.0.1:8765", |s| s.as_str());
    let wav = std::fs::read(path)?;
    let (rate, channels, bits) = wav_format(&wav).ok_or("not a canonical PCM WAV file")?;
    let bytes_per_chunk =
        (rate as usize * channels as usize * bits as usize / 8) * CHUNK.as_millis() as usize / 1000;

    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    let (mut to_server, mut from_server) = socket.split();
    let began = Instant::now();
    // When the audio up to each chunk's end was sent (index k: media [20k, 20k+20) ms).
    let mut sent_until: Vec<Duration> = Vec::new();
    to_server
        .send(Message::binary(wav[..HEADER].to_vec()))
        .await?;
    let mut chunks = wav[HEADER..].chunks(bytes_per_chunk);
    let mut next_due = Instant::now();
    let mut sending = true;
    let mut latencies = Vec::new();
    let mut last_probability: Option<(f64, Duration)> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_due.into()), if sending => {
                match chunks.next() {
                    Some(chunk) => {
                        to_server.send(Message::binary(chunk.to_vec())).await?;
                        sent_until.push(began.elapsed());
                        if !fast {
                            next_due += CHUNK;
                        }
                    }
                    None => {
                        to_server.send(Message::text("end")).await?;
                        sending = false;
                    }
                }
            }
            message = from_server.next() => {
                let Some(message) = message else { break };
                let Message::Text(text) = message? else { continue };
                let arrived = began.elapsed();
                let event: serde_json::Value = serde_json::from_str(text.as_str())?;
                match event["event"].as_str() {
                    Some("probability") => {
                        let t = event["time_s"].as_f64().unwrap_or(0.0);
                        // The previous chunk ended where this one starts.
                        if let Some((_, at)) = last_probability {
                            let needed = chunk_index(t);
                            if let Some(sent) = sent_until.get(needed.saturating_sub(1)) {
                                latencies.push(at.saturating_sub(*sent));
                            }
                        }
                        last_probability = Some((t, arrived));
                    }
                    Some(kind @ ("speech_start" | "speech_end")) => {
                        let t = event["time_s"].as_f64().unwrap_or(0.0);
                        println!(
                            "{kind:<12} at {t:6.2} s of audio, arrived {:6.2} s into the stream",
                            arrived.as_secs_f64()
                        );
                    }
                    Some("segment") => {}
                    Some("end") => {
                        println!("session ended: {event}");
                    }
                    _ => println!("{text}"),
                }
            }
        }
    }
    latencies.sort_unstable();
    if !latencies.is_empty() {
        let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
        println!(
            "chunk in -> its VAD event out: p50 {:.1} ms, p99 {:.1} ms over {} chunks",
            at(50).as_secs_f64() * 1e3,
            at(99).as_secs_f64() * 1e3,
            latencies.len()
        );
    }
    Ok(())
}

/// The client's chunk whose sending completed media time `t` seconds.
fn chunk_index(t: f64) -> usize {
    (t / CHUNK.as_secs_f64()).ceil().max(0.0) as usize
}

/// Rate, channels and bits of a canonical 44-byte-header PCM WAV file.
fn wav_format(wav: &[u8]) -> Option<(u32, u16, u16)> {
    if wav.len() < HEADER || &wav[0..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return None;
    }
    let u16_at = |i: usize| u16::from_le_bytes([wav[i], wav[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([wav[i], wav[i + 1], wav[i + 2], wav[i + 3]]);
    (&wav[36..40] == b"data").then(|| (u32_at(24), u16_at(22), u16_at(34)))
}
