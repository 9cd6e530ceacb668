//! Every way a manifest can be wrong is reported with its file, line and key; a good one is
//! read into plain structs, and python nodes are kept as data until a maker builds them.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use troupe_bridge_python::process::{SandboxConfig, SandboxLevel};
use troupe_host::extension_host::PythonNodeSpec;
use troupe_manifest::{Manifest, ManifestError, ManifestErrorKind, NodeBody, SandboxSettingError};
use troupe_nodes::{Emitter, Node, NodeError, ParamError};
use troupe_pipeline::{EdgePolicy, ErrorPolicy};
use troupe_runtime::supervision::RestartPolicy;
use troupe_value::Value;

const FILE: &str = "/manifests/app.toml";

/// A manifest with an extension, a singleton and a pipeline using both kinds of node.
const GOOD: &str = r#"
[extensions.features]
module = "features.segments"
path = "plugins"
class = "Features"
dependencies = ["numpy>=2,<3"]
system_site_packages = true
restart = { policy = "transient", max_restarts = 5, within_s = 30, backoff_initial_ms = 20, backoff_max_ms = 1000 }
memory_limit_mb = 512
call_timeout_ms = 2500
grants = { singletons = ["store"], extensions = ["features"] }
env = { MODEL_DIR = "${MODELS}/small" }
sandbox = { level = "strict", network = true, read = ["models"], write = ["/var/cache/x"], require = true }

[singletons.store]
kind = "kv"
capacity = 100

[pipelines.speech]
error_policy = "skip_item"

[[pipelines.speech.nodes]]
id = "input"
type = "data.jsonl_source"
params = { path = "data/in.jsonl" }

[[pipelines.speech.nodes]]
id = "upper"
type = "data.text"
params = { op = "upper" }
restart = { policy = "temporary" }
error_policy = "fail_pipeline"

[[pipelines.speech.nodes]]
id = "features"
type = "python"
extension = "features"
method = "describe"
generator = true
params = { scale = 2 }

[[pipelines.speech.edges]]
from = "input"
to = "upper"
policy = "drop_oldest"
capacity = 8

[[pipelines.speech.edges]]
from = "upper"
to = "features"
"#;

fn env(name: &str) -> Option<String> {
    (name == "MODELS").then(|| "/opt/models".to_owned())
}

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse_with_env(text, FILE, env)
}

/// Pipeline `p`: a `source` node (`in`, with `source_params`) into a `node` (with
/// `node_params`, on line 10).
fn source_into(source: &str, source_params: &str, node: &str, node_params: &str) -> String {
    format!(
        "\n[[pipelines.p.nodes]]\nid = \"in\"\ntype = \"{source}\"\nparams = {{ {source_params} }}\n\n\
         [[pipelines.p.nodes]]\nid = \"n\"\ntype = \"{node}\"\nparams = {{ {node_params} }}\n\n\
         [[pipelines.p.edges]]\nfrom = \"in\"\nto = \"n\"\n"
    )
}

/// Parses `text`, expects an error, checks where it is and returns it.
fn error_at(text: &str, line: usize, key: &str) -> ManifestError {
    let error = parse(text).expect_err("the manifest is wrong");
    assert_eq!(error.location.file, Path::new(FILE));
    assert_eq!(
        (error.location.line, error.location.key.as_str()),
        (Some(line), key),
        "{error}"
    );
    let shown = error.to_string();
    let prefix = match key {
        "" => format!("{FILE}:{line}: "),
        key => format!("{FILE}:{line}: `{key}`: "),
    };
    assert!(shown.starts_with(&prefix), "{shown}");
    error
}

/// `GOOD` with the first `from` replaced by `to`.
fn good_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replacen(from, to, 1)
}

/// Line (from 1) of the first line of `GOOD` containing `text`.
fn line_of(text: &str) -> usize {
    GOOD.lines().position(|l| l.contains(text)).unwrap() + 1
}

#[test]
fn a_good_manifest_becomes_plain_structs() {
    let manifest = parse(GOOD).unwrap();
    let features = &manifest.extensions["features"];
    assert_eq!(features.module, "features.segments");
    assert_eq!(features.path, Some(PathBuf::from("/manifests/plugins")));
    assert_eq!(features.class.as_deref(), Some("Features"));
    assert_eq!(features.dependencies, ["numpy>=2,<3"]);
    assert!(features.system_site_packages);
    assert!(features.config().env.system_site_packages);
    assert_eq!(features.restart.policy, RestartPolicy::Transient);
    assert_eq!(features.restart.limit.max_restarts, 5);
    assert_eq!(features.restart.limit.within, Duration::from_secs(30));
    assert_eq!(features.restart.backoff.initial, Duration::from_millis(20));
    assert_eq!(features.restart.backoff.max, Duration::from_millis(1000));
    assert_eq!(features.memory_limit_mb, Some(512));
    assert_eq!(features.call_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(features.grants.singletons, ["store"]);
    assert_eq!(features.env["MODEL_DIR"], "/opt/models/small");
    assert_eq!(
        features.sandbox,
        SandboxConfig::strict()
            .network(true)
            .read("/manifests/models")
            .write("/var/cache/x")
            .require(true)
    );
    assert_eq!(features.config().sandbox, features.sandbox);

    let store = &manifest.singletons["store"];
    assert_eq!(store.kind, "kv");
    assert_eq!(store.params["capacity"], Value::Int(100));

    let speech = manifest.pipeline(None).unwrap();
    assert_eq!(speech.nodes.len(), 3);
    match &speech.node("input").unwrap().body {
        NodeBody::Builtin {
            type_name, params, ..
        } => {
            assert_eq!(*type_name, "data.jsonl_source");
            assert_eq!(params["path"], Value::from("/manifests/data/in.jsonl"));
        }
        other => panic!("{other:?}"),
    }
    let upper = speech.node("upper").unwrap();
    assert_eq!(
        upper.capacity,
        Some(8),
        "the edge's capacity is its mailbox"
    );
    assert_eq!(upper.error_policy, ErrorPolicy::FailPipeline);
    assert_eq!(upper.restart.unwrap().policy, RestartPolicy::Temporary);
    let python: Vec<&PythonNodeSpec> = speech.python_nodes().collect();
    assert_eq!(python.len(), 1);
    assert_eq!(
        (python[0].extension.as_str(), python[0].method.as_str()),
        ("features", "describe")
    );
    assert!(python[0].generator && !python[0].flush);
    assert_eq!(python[0].params["scale"], Value::Int(2));
    assert_eq!(
        speech.node("features").unwrap().error_policy,
        ErrorPolicy::SkipItem
    );
    assert_eq!(speech.edges[0].policy, EdgePolicy::DropOldest);
    assert!(speech.node("input").unwrap().restart.is_none());
}

#[test]
fn bad_toml_and_unknown_keys() {
    let error = error_at("[pipelines.a\n", 1, "");
    assert!(matches!(error.kind(), ManifestErrorKind::Toml { .. }));
    let error = error_at(
        &good_with("memory_limit_mb = 512", "memory_limt_mb = 512"),
        line_of("memory_limit_mb"),
        "extensions.features.memory_limt_mb",
    );
    assert!(error.to_string().contains("memory_limt_mb"), "{error}");
    let error = error_at(
        &good_with("policy = \"drop_oldest\"", "policy = \"drop_some\""),
        line_of("drop_oldest"),
        "pipelines.speech.edges[0].policy",
    );
    assert!(error.to_string().contains("drop_some"), "{error}");
    error_at(
        &good_with("memory_limit_mb = 512", "memory_limit_mb = \"lots\""),
        line_of("memory_limit_mb"),
        "extensions.features.memory_limit_mb",
    );
}

#[test]
fn sandbox_levels_and_tables_are_checked() {
    let sandbox = |setting: &str| {
        let text = GOOD.replace(
            GOOD.lines().find(|l| l.starts_with("sandbox")).unwrap(),
            &format!("sandbox = {setting}"),
        );
        parse(&text).map(|m| m.extensions["features"].sandbox.clone())
    };
    assert_eq!(sandbox("\"off\"").unwrap(), SandboxConfig::off());
    assert_eq!(sandbox("\"default\"").unwrap().level, SandboxLevel::Default);
    let no_sandbox_key = GOOD.replace(GOOD.lines().find(|l| l.starts_with("sandbox")).unwrap(), "");
    assert_eq!(
        parse(&no_sandbox_key).unwrap().extensions["features"].sandbox,
        SandboxConfig::default(),
        "on by default"
    );
    let line = line_of("sandbox =");
    for (setting, key, expected) in [
        (
            "\"loose\"",
            "extensions.features.sandbox",
            SandboxSettingError::UnknownLevel {
                given: "loose".into(),
            },
        ),
        (
            "{ level = \"strict\", netwrk = true }",
            "extensions.features.sandbox.netwrk",
            SandboxSettingError::UnknownKey {
                key: "netwrk".into(),
            },
        ),
        (
            "{ network = \"yes\" }",
            "extensions.features.sandbox.network",
            SandboxSettingError::WrongType {
                expected: "true or false",
            },
        ),
        (
            "{ read = [\"a\", 3] }",
            "extensions.features.sandbox.read[1]",
            SandboxSettingError::WrongType {
                expected: "a list of paths",
            },
        ),
        (
            "3",
            "extensions.features.sandbox",
            SandboxSettingError::WrongType {
                expected: "\"off\", \"default\", \"strict\" or a table",
            },
        ),
    ] {
        let text = GOOD.replace(
            GOOD.lines().find(|l| l.starts_with("sandbox")).unwrap(),
            &format!("sandbox = {setting}"),
        );
        let error = error_at(&text, line, key);
        assert!(
            matches!(error.kind(), ManifestErrorKind::Sandbox(e) if *e == expected),
            "{setting}: {error}"
        );
    }
}

#[test]
fn unknown_node_type_and_bad_parameters() {
    let error = error_at(
        &good_with("type = \"data.text\"", "type = \"data.txt\""),
        line_of("type = \"data.text\""),
        "pipelines.speech.nodes[1].type",
    );
    assert!(
        matches!(error.kind(), ManifestErrorKind::UnknownNodeType { name } if name == "data.txt")
    );
    for (from, to, param) in [
        ("op = \"upper\"", "op = \"shout\"", "op"),
        ("op = \"upper\"", "op = 3", "op"),
        ("op = \"upper\"", "op = \"upper\", loud = true", "loud"),
    ] {
        let error = error_at(
            &good_with(from, to),
            line_of(from),
            &format!("pipelines.speech.nodes[1].params.{param}"),
        );
        assert!(
            matches!(
                error.kind(),
                ManifestErrorKind::BadParameter(NodeError::Params(_))
            ),
            "{error}"
        );
    }
    // Missing: the key names it, the line is the node's.
    let error = error_at(
        &good_with("params = { op = \"upper\" }", ""),
        line_of("id = \"upper\"") - 1,
        "pipelines.speech.nodes[1].params.op",
    );
    assert!(matches!(
        error.kind(),
        ManifestErrorKind::BadParameter(NodeError::Params(ParamError::Missing { param: "op", .. }))
    ));
    // A parameter's range is checked at load.
    let vad = source_into(
        "audio.file_source",
        "path = \"x.wav\"",
        "audio.vad",
        "aggressiveness = 7",
    );
    let error = error_at(&vad, 10, "pipelines.p.nodes[1].params.aggressiveness");
    assert!(error.to_string().contains("from 0 to 3"), "{error}");
}

/// What `troupe run` could not do, `troupe check` refuses: absurd capacities, memory limits
/// and frame sizes are errors at their key, never an overflow later.
#[test]
fn sizes_beyond_what_a_run_can_do_are_refused() {
    for (from, to, key) in [
        (
            "capacity = 8",
            "capacity = 4611686018427387904",
            "pipelines.speech.edges[0].capacity",
        ),
        (
            "memory_limit_mb = 512",
            "memory_limit_mb = 17592186044416",
            "extensions.features.memory_limit_mb",
        ),
        (
            "error_policy = \"fail_pipeline\"",
            "error_policy = \"fail_pipeline\"\ncapacity = 4611686018427387904",
            "pipelines.speech.nodes[1].capacity",
        ),
        (
            "generator = true",
            "generator = true\nconcurrency = 100000",
            "pipelines.speech.nodes[2].concurrency",
        ),
    ] {
        let text = good_with(from, to);
        let wrong = to.lines().last().unwrap();
        let line = text.lines().position(|l| l.contains(wrong)).unwrap() + 1;
        let error = error_at(&text, line, key);
        assert!(error.to_string().contains("must be from 1 to"), "{error}");
    }
    let resize = source_into(
        "video.y4m_source",
        "path = \"x.y4m\"",
        "video.resize",
        "width = 2147483648, height = 8",
    );
    let error = error_at(&resize, 10, "pipelines.p.nodes[1].params.width");
    assert!(error.to_string().contains("from 1 to 32768"), "{error}");
}

#[test]
fn edges_endpoints_cycles_and_inputs() {
    let error = error_at(
        &good_with("to = \"features\"", "to = \"featurs\""),
        line_of("to = \"features\""),
        "pipelines.speech.edges[1].to",
    );
    assert!(
        matches!(error.kind(), ManifestErrorKind::MissingEndpoint { node } if node == "featurs")
    );
    let cycle =
        format!("{GOOD}\n[[pipelines.speech.edges]]\nfrom = \"features\"\nto = \"upper\"\n");
    let line = cycle.lines().count() - 2;
    let error = Manifest::parse_with_env(&cycle, FILE, env).unwrap_err();
    assert_eq!(
        (error.location.line, error.location.key.as_str()),
        (Some(line), "pipelines.speech.edges[2]")
    );
    match error.kind() {
        ManifestErrorKind::Cycle { path } => assert_eq!(path, &["upper", "features", "upper"]),
        other => panic!("{other:?}"),
    }
    let into_source = good_with("to = \"upper\"", "to = \"input\"");
    let error = error_at(
        &into_source,
        line_of("to = \"upper\""),
        "pipelines.speech.edges[0].to",
    );
    assert!(error.to_string().contains("source"), "{error}");
    let duplicate = good_with("id = \"upper\"", "id = \"input\"");
    let error = error_at(
        &duplicate,
        line_of("id = \"upper\""),
        "pipelines.speech.nodes[1].id",
    );
    assert!(matches!(
        error.kind(),
        ManifestErrorKind::DuplicateId { .. }
    ));
}

#[test]
fn unknown_extensions_singletons_and_variables() {
    let error = error_at(
        &good_with("extension = \"features\"", "extension = \"feature\""),
        line_of("extension = \"features\""),
        "pipelines.speech.nodes[2].extension",
    );
    assert!(
        matches!(error.kind(), ManifestErrorKind::UnknownExtension { name } if name == "feature")
    );
    let error = error_at(
        &good_with("extensions = [\"features\"]", "extensions = [\"other\"]"),
        line_of("grants"),
        "extensions.features.grants.extensions[0]",
    );
    assert!(matches!(
        error.kind(),
        ManifestErrorKind::UnknownExtension { .. }
    ));
    let error = error_at(
        &good_with("singletons = [\"store\"]", "singletons = [\"cache\"]"),
        line_of("grants"),
        "extensions.features.grants.singletons[0]",
    );
    assert!(matches!(
        error.kind(),
        ManifestErrorKind::UnknownSingleton { .. }
    ));
    let error = error_at(
        &good_with("${MODELS}", "${NO_SUCH_VAR}"),
        line_of("MODEL_DIR"),
        "extensions.features.env.MODEL_DIR",
    );
    assert!(matches!(error.kind(), ManifestErrorKind::MissingEnv { var } if var == "NO_SUCH_VAR"));
    assert!(error.to_string().contains("NO_SUCH_VAR"), "{error}");
    let error = error_at(
        &good_with(
            "type = \"python\"",
            "type = \"python\"\nrestart = { within_s = -1 }",
        ),
        line_of("type = \"python\"") + 1,
        "pipelines.speech.nodes[2].restart.within_s",
    );
    assert!(matches!(error.kind(), ManifestErrorKind::Invalid { .. }));
    let error = error_at(
        &good_with(
            "params = { path = \"data/in.jsonl\" }",
            "params = { path = \"data/in.jsonl\" }\nrestart = {}",
        ),
        line_of("data/in.jsonl") + 1,
        "pipelines.speech.nodes[0].restart",
    );
    assert!(
        error.to_string().contains("sources are not restarted"),
        "{error}"
    );
}

/// Stands in for the extension host: a "python" node that scales ints by its `scale`.
struct Scale(i64);

impl Node for Scale {
    fn type_name(&self) -> &'static str {
        "test.scale"
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let text = input.as_str().unwrap_or_default().to_owned();
        out.emit(Value::map([
            ("text", Value::from(text)),
            ("scale", Value::Int(self.0)),
        ]));
        Ok(())
    }
}

#[actix::test]
async fn python_nodes_need_a_maker_and_run_with_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/in.jsonl"), "\"a\"\n\"b\"\n").unwrap();
    let manifest = Manifest::parse_with_env(GOOD, dir.path().join("app.toml"), env).unwrap();

    let error = manifest.loader().build("speech").unwrap_err();
    assert!(matches!(
        error.kind(),
        ManifestErrorKind::PythonNodesNeedHost
    ));
    assert_eq!(error.location.key, "pipelines.speech.nodes[2]");
    assert_eq!(error.location.line, Some(line_of("type = \"python\"") - 2));
    assert!(
        error
            .to_string()
            .contains("python nodes need an extension host")
    );

    let summary = manifest
        .loader()
        .python_nodes(|spec: &PythonNodeSpec| {
            let scale = spec.params["scale"].as_int().unwrap_or(1);
            Ok(Box::new(Scale(scale)) as Box<dyn Node>)
        })
        .build("speech")
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(summary.node("features").unwrap().items_out, 2);
    assert_eq!(summary.node("features").unwrap().type_name, "test.scale");

    let error = manifest.loader().build("nope").unwrap_err();
    assert!(
        matches!(error.kind(), ManifestErrorKind::UnknownPipeline { known, .. } if known == &["speech"])
    );
    let missing_input = Manifest::parse_with_env(GOOD, "/nowhere/app.toml", env).unwrap();
    let error = missing_input
        .loader()
        .python_nodes(|_: &PythonNodeSpec| Ok(Box::new(Scale(1)) as Box<dyn Node>))
        .build("speech")
        .unwrap_err();
    assert!(
        matches!(error.kind(), ManifestErrorKind::Node(NodeError::Io { .. })),
        "{error}"
    );
    assert_eq!(error.location.key, "pipelines.speech.nodes[0]");
}

#[test]
fn a_missing_file_is_a_read_error() {
    let error = Manifest::load("/no/such/manifest.toml").unwrap_err();
    assert!(matches!(error.kind(), ManifestErrorKind::Read(_)));
    assert_eq!(error.location.line, None);
}

#[test]
fn a_pyproject_adds_its_dependencies_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pyproject.toml");
    std::fs::write(
        &file,
        "[project]\nname = \"features\"\ndependencies = [\"scipy>=1.11\"]\n",
    )
    .unwrap();
    let text = good_with(
        "dependencies = [\"numpy>=2,<3\"]",
        &format!(
            "dependencies = [\"numpy>=2,<3\"]\npyproject = {:?}",
            file.display().to_string()
        ),
    );
    let manifest = parse(&text).unwrap();
    assert_eq!(
        manifest.extensions["features"].dependencies,
        ["numpy>=2,<3", "scipy>=1.11"]
    );

    std::fs::write(&file, "[project]\ndependencies = \"scipy\"\n").unwrap();
    let error = error_at(
        &text,
        line_of("dependencies = [\"numpy") + 1,
        "extensions.features.pyproject",
    );
    assert!(
        error.to_string().contains("must be a list of strings"),
        "{error}"
    );
}

#[test]
fn nodes_the_host_program_supplies_are_left_to_it() {
    let text = r#"
[[pipelines.p.nodes]]
id = "feed"
type = "host.input"

[[pipelines.p.nodes]]
id = "double"
type = "host.node"

[[pipelines.p.nodes]]
id = "tap"
type = "data.passthrough"

[[pipelines.p.edges]]
from = "feed"
to = "double"

[[pipelines.p.edges]]
from = "double"
to = "tap"
"#;
    let manifest = parse(text).unwrap();
    let pipeline = manifest.pipeline(Some("p")).unwrap();
    assert_eq!(
        pipeline.nodes[0].body,
        NodeBody::Supplied { is_source: true }
    );
    assert_eq!(
        pipeline.nodes[1].body,
        NodeBody::Supplied { is_source: false }
    );
    // `troupe run` cannot supply them: a typed error at the node's type.
    let error = manifest.loader().build("p").unwrap_err();
    assert!(
        matches!(error.kind(), ManifestErrorKind::SuppliedByHost { node } if node == "feed"),
        "{error}"
    );
    assert_eq!(error.location.line, Some(4), "{error}");
    // A program that adds them builds the pipeline.
    let builder = manifest.loader().builder("p").unwrap();
    let built = builder
        .source("feed", Box::new(Nothing))
        .node("double", Box::new(Pass))
        .build();
    assert!(built.is_ok(), "{:?}", built.err());
    // Host-supplied nodes take no params.
    let with_params = text.replace(
        "type = \"host.node\"",
        "type = \"host.node\"\nparams = { x = 1 }",
    );
    assert!(
        parse(&with_params)
            .unwrap_err()
            .to_string()
            .contains("takes no params")
    );
}

struct Nothing;

impl troupe_nodes::Source for Nothing {
    fn type_name(&self) -> &'static str {
        "test.nothing"
    }

    fn pull(&mut self, _: &mut Emitter) -> Result<troupe_nodes::SourceState, NodeError> {
        Ok(troupe_nodes::SourceState::Done)
    }
}

struct Pass;

impl Node for Pass {
    fn type_name(&self) -> &'static str {
        "test.pass"
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        out.emit(input);
        Ok(())
    }
}
