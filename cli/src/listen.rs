//! `troupe listen MANIFEST --input ID --output ID --listen ADDR`: a WebSocket ingress. Each
//! connection is one session: a run of the pipeline of its own, whose source `--input` (an
//! `audio.stream_source`, whose parameters give the byte layout) reads the binary messages
//! the client sends, and whose `--output` nodes' outputs go back to the client as they are
//! produced, one JSON text message each. The session's input ends when the client sends
//! the text message `end` or closes; the run then finishes, its last outputs go out, then a
//! `{"event": "end", ...}` message with the run's counts, and the connection closes.
//!
//! Backpressure, as on edges: at most [`INGRESS_MESSAGES`] messages wait for the pipeline,
//! then the session stops reading its socket (TCP holds the client back); outputs wait for
//! the client the same way, up to [`EGRESS_MESSAGES`]. Extensions start once and serve every
//! session.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use troupe_host::extension_host::ExtensionHost;
use troupe_manifest::{Manifest, NodeBody};
use troupe_nodes::{Emitter, Node, NodeError};
use troupe_value::Value;

use crate::error::CliError;
use crate::run::start_extensions;

/// Client messages that may wait for the pipeline before the session stops reading.
pub(crate) const INGRESS_MESSAGES: usize = 32;
/// The largest message (and frame) a client may send: 20 ms of 768 kHz 64-channel f32 audio
/// is under 4 MiB.
const MAX_MESSAGE: usize = 4 << 20;
/// Sessions served at once; more connections are refused at once.
pub(crate) const MAX_SESSIONS: usize = 64;
/// How long a client may take to complete its WebSocket handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Outputs that may wait for the client before the pipeline is held.
pub(crate) const EGRESS_MESSAGES: usize = 256;
/// The id the session's output node takes in the pipeline.
const EGRESS_ID: &str = "session.output";

/// Arguments of `troupe listen`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListenArgs {
    /// The manifest (TOML).
    manifest: PathBuf,
    /// The pipeline each session runs; needed when the manifest has several.
    #[arg(long, short, value_name = "NAME")]
    pipeline: Option<String>,
    /// The pipeline's `audio.stream_source` node that reads what the client sends.
    #[arg(long, value_name = "ID")]
    input: String,
    /// A node whose outputs go to the client (repeat for several).
    #[arg(long, value_name = "ID", required = true)]
    output: Vec<String>,
    /// Where to listen for WebSocket clients (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8765")]
    listen: SocketAddr,
    /// Serve Prometheus metrics at `http://ADDR/metrics`, as `troupe run --metrics`.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

/// What a session needs from the command.
struct Sessions {
    manifest: Manifest,
    pipeline: String,
    input: String,
    input_params: troupe_value::Map,
    outputs: Vec<String>,
    host: Option<ExtensionHost>,
    /// Makes the pipeline's nodes placed on other hosts.
    remote_nodes: std::sync::Arc<troupe_manifest::RemoteNodeMaker>,
}

/// Serves sessions until Ctrl-C.
pub(crate) fn listen(args: &ListenArgs) -> Result<(), CliError> {
    let manifest = Manifest::load(&args.manifest)?;
    let pipeline = manifest.pipeline(args.pipeline.as_deref())?;
    let name = pipeline.name.clone();
    let input_params = match pipeline.nodes.iter().find(|n| n.id == args.input) {
        Some(node) => match &node.body {
            NodeBody::Builtin {
                type_name: "audio.stream_source",
                params,
                ..
            } => params.clone(),
            _ => {
                return Err(CliError::Listen(format!(
                    "--input {}: must be an audio.stream_source node",
                    args.input
                )));
            }
        },
        None => {
            return Err(CliError::Listen(format!(
                "--input {}: pipeline `{name}` has no such node",
                args.input
            )));
        }
    };
    if let Some(missing) = args
        .output
        .iter()
        .find(|id| !pipeline.nodes.iter().any(|n| &n.id == *id))
    {
        return Err(CliError::Listen(format!(
            "--output {missing}: pipeline `{name}` has no such node"
        )));
    }
    let _metrics = crate::run::serve_metrics(args.metrics)?;
    actix::System::new().block_on(async {
        let remote = crate::remote::bind(&manifest).await?;
        let host = start_extensions(&manifest, &remote).await?;
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError::Listen(format!("cannot listen at {}: {e}", args.listen)))?;
        let address = listener
            .local_addr()
            .map_err(|e| CliError::Listen(e.to_string()))?;
        eprintln!(
            "listening on ws://{address} (pipeline `{name}`: input `{}`, outputs {})",
            args.input,
            args.output.join(", ")
        );
        let sessions = Rc::new(Sessions {
            manifest,
            pipeline: name,
            input: args.input.clone(),
            input_params,
            outputs: args.output.clone(),
            host,
            remote_nodes: std::sync::Arc::new(remote.node_maker()),
        });
        let mut number = 0u64;
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_SESSIONS));
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            tracing::warn!(%peer, limit = MAX_SESSIONS, "connection refused: too many sessions");
                            continue;
                        };
                        number += 1;
                        let sessions = sessions.clone();
                        actix::spawn(async move {
                            if let Err(e) = sessions.serve(stream, number).await {
                                tracing::warn!(session = number, %peer, error = %e, "session failed");
                            }
                            drop(slot);
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "accept failed"),
                },
                _ = &mut interrupted => break,
            }
        }
        eprintln!("stopping");
        if let Some(host) = &sessions.host {
            host.shutdown().await;
        }
        Ok(())
    })
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("no WebSocket handshake within {HANDSHAKE_TIMEOUT:?}")]
    HandshakeTimeout,
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error(transparent)]
    Manifest(#[from] troupe_manifest::ManifestError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Pipeline(#[from] troupe_pipeline::PipelineError),
}

impl Sessions {
    /// One connection: its own run of the pipeline, fed by what it sends.
    async fn serve(&self, stream: TcpStream, number: u64) -> Result<(), SessionError> {
        let _ = stream.set_nodelay(true);
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let socket = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            tokio_tungstenite::accept_async_with_config(stream, Some(config)),
        )
        .await
        .map_err(|_| SessionError::HandshakeTimeout)??;
        let (mut to_client, mut from_client) = socket.split();
        let (bytes_tx, bytes_rx) = sync_channel::<Vec<u8>>(INGRESS_MESSAGES);
        let (out_tx, mut out_rx) = mpsc::channel::<String>(EGRESS_MESSAGES);

        let source = troupe_nodes::audio::stream_source_reading(
            Box::new(troupe_nodes::audio::ChannelReader::new(bytes_rx)),
            self.input_params.clone(),
        )?;
        let mut loader = self.manifest.loader();
        if let Some(host) = &self.host {
            loader = loader.python_nodes(host.python_nodes());
        }
        let remote_nodes = self.remote_nodes.clone();
        loader = loader.remote_nodes(move |spec| remote_nodes(spec));
        // The source is live: the pipeline runs it on a thread of its own.
        let mut builder = loader
            .builder(&self.pipeline)?
            .replace_source(&self.input, source)
            .node(EGRESS_ID, Box::new(Egress { out: out_tx }));
        for output in &self.outputs {
            builder = builder.edge(output.clone(), EGRESS_ID);
        }
        let running = builder.build()?.start();
        tracing::info!(session = number, "session started");

        let reading = async move {
            while let Some(message) = from_client.next().await {
                let bytes = match message {
                    Ok(Message::Binary(bytes)) => bytes.to_vec(),
                    Ok(Message::Text(text)) if text.as_str().trim() == "end" => break,
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => continue,
                };
                if !feed(&bytes_tx, bytes).await {
                    break;
                }
            }
            // Dropping the sender ends the source's stream.
        };
        let writing = async {
            while let Some(text) = out_rx.recv().await {
                if to_client.send(Message::text(text)).await.is_err() {
                    // The client is gone: what the pipeline still sends is dropped, never
                    // waited for (a full queue would hold the run forever).
                    out_rx.close();
                    while out_rx.recv().await.is_some() {}
                    break;
                }
            }
        };
        let (report, (), ()) = tokio::join!(running.finish_report(), reading, writing);
        let summary = &report.summary;
        let end = Value::map([
            ("event", Value::from("end")),
            (
                "error",
                report
                    .error
                    .as_ref()
                    .map_or(Value::Null, |e| Value::from(e.to_string())),
            ),
            ("wall_time_s", Value::Float(summary.wall_time.as_secs_f64())),
            (
                "items_in",
                Value::Int(summary.nodes.iter().map(|n| n.items_in as i64).sum()),
            ),
        ]);
        if let Ok(text) = troupe_nodes::data::to_json(&end) {
            let _ = to_client.send(Message::text(text)).await;
        }
        let _ = to_client.close().await;
        tracing::info!(session = number, wall_time = ?summary.wall_time, "session ended");
        Ok(())
    }
}

/// Hands `bytes` to the source, waiting (off the arbiter) while its queue is full: the
/// session reads no more of the socket meanwhile. `false` once the source is gone.
async fn feed(queue: &SyncSender<Vec<u8>>, bytes: Vec<u8>) -> bool {
    match queue.try_send(bytes) {
        Ok(()) => true,
        Err(TrySendError::Disconnected(_)) => false,
        Err(TrySendError::Full(bytes)) => {
            let queue = queue.clone();
            tokio::task::spawn_blocking(move || queue.send(bytes).is_ok())
                .await
                .unwrap_or(false)
        }
    }
}

/// The session's output: each input goes to the client as one JSON text message; a full
/// queue holds the pipeline (the send is awaited before the next input).
struct Egress {
    out: mpsc::Sender<String>,
}

impl Node for Egress {
    fn type_name(&self) -> &'static str {
        "session.output"
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let text = troupe_nodes::data::to_json(&input).map_err(|e| NodeError::Format {
            node: "session.output",
            reason: e.to_string(),
        })?;
        let queue = self.out.clone();
        out.defer(async move {
            // A client that left takes nothing more: its outputs are dropped.
            let _ = queue.send(text).await;
            Ok(Vec::new())
        });
        Ok(())
    }
}
