//! What one extension is: its code, its environment, its limits and its restart policy.

use std::path::PathBuf;
use std::time::Duration;

use troupe_runtime::supervision::RestartSpec;

use crate::env::EnvSpec;
use crate::process::SandboxConfig;

/// Default deadline of a call from the host to an extension.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a cancelled call (past its deadline, or given up by its caller) may run on
/// in the child before the child is killed and restarted.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(1);
/// Default deadline for a child to start its interpreter and say hello (generous: a loaded
/// machine can take seconds to start Python, and a hang in the extension's own code is
/// bounded by the start deadline instead).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default deadline for importing the module and running the start-up hooks: a start that
/// hangs (a module sleeping at import, an `initialize` that never returns) is reported as
/// `StartTimeout` after this, not as a first call's timeout. Set it higher (`start_timeout`,
/// manifest `start_timeout_ms`) for extensions that load large models at start.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time `prepare_shutdown` gets before the child is terminated, then killed.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of calls that may wait to be sent (for a (re)start, or for room in the
/// window of calls in flight).
pub const DEFAULT_CAPACITY: usize = 1024;

/// The largest memory limit, in MiB (16 TiB): larger is no limit at all, and a typo.
pub const MAX_MEMORY_LIMIT_MB: u64 = 1 << 24;
/// Default number of calls in the child at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Default number of the child's own calls (to the host, singletons, other extensions) the
/// host serves at once.
pub const DEFAULT_MAX_CHILD_CALLS: usize = 1024;

/// How to run one Python extension.
///
/// ```
/// use std::time::Duration;
/// use troupe_bridge_python::extension::ExtensionConfig;
///
/// let config = ExtensionConfig::new("stats", "stats_plugin")
///     .path("plugins/stats")
///     .dependencies(["numpy>=2,<3"])
///     .memory_limit_mb(512)
///     .call_timeout(Duration::from_secs(5));
/// assert_eq!(config.env.dependencies, ["numpy>=2,<3"]);
/// ```
#[derive(Debug, Clone)]
pub struct ExtensionConfig {
    /// Unique name: how the host, the registry and other extensions refer to it.
    pub name: String,
    /// The Python module to import.
    pub module: String,
    /// The `troupe.Extension` subclass in the module; `None`: the only one there.
    pub class: Option<String>,
    /// Directories put in front of the child's `sys.path` (where the module lives).
    pub sys_path: Vec<PathBuf>,
    /// Interpreter and dependencies: selects (or builds) the venv.
    pub env: EnvSpec,
    /// Extra environment variables of the child.
    pub vars: Vec<(String, String)>,
    /// Working directory of the child; the host's when `None`.
    pub cwd: Option<PathBuf>,
    /// When and how often a crashed child is restarted.
    pub restart: RestartSpec,
    /// Deadline of each call unless the caller gives one; `None`: no deadline.
    pub call_timeout: Option<Duration>,
    /// How long a cancelled call may run on in the child (a hung `def` method ignores the
    /// cancel) before the child is killed with
    /// [`ExitCause::CancelIgnored`](troupe_value::ExitCause::CancelIgnored) and restarted;
    /// until then no other call is sent to it. `None`: the child is never killed for it.
    pub cancel_grace: Option<Duration>,
    /// Deadline for the child to connect.
    pub connect_timeout: Duration,
    /// Deadline for importing the module and running the start-up hooks.
    pub start_timeout: Duration,
    /// Time `prepare_shutdown` gets on a graceful stop.
    pub stop_timeout: Duration,
    /// Resident memory above which the child is killed and restarted.
    pub memory_limit: Option<u64>,
    /// Calls that may wait to be sent (no child runs yet, or `max_in_flight` are in it);
    /// more are refused with `MailboxFull`.
    pub capacity: usize,
    /// Calls in the child at once; the next wait their turn, in order.
    pub max_in_flight: usize,
    /// The child's own calls the host serves at once; more are refused with `MailboxFull`.
    pub max_child_calls: usize,
    /// Bounds of the connection (frame size, bytes that may wait for a child not reading).
    pub link: crate::process::LinkLimits,
    /// Whether the extension may call the host (`troupe.host`).
    pub host_calls: bool,
    /// How its child is confined (default: the `default` level).
    pub sandbox: SandboxConfig,
}

impl ExtensionConfig {
    /// An extension `name` that imports `module`, with no dependencies and default limits.
    pub fn new(name: impl Into<String>, module: impl Into<String>) -> ExtensionConfig {
        ExtensionConfig {
            name: name.into(),
            module: module.into(),
            class: None,
            sys_path: Vec::new(),
            env: EnvSpec::new(Vec::<String>::new()),
            vars: Vec::new(),
            cwd: None,
            restart: RestartSpec::default(),
            call_timeout: Some(DEFAULT_CALL_TIMEOUT),
            cancel_grace: Some(DEFAULT_CANCEL_GRACE),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            start_timeout: DEFAULT_START_TIMEOUT,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            memory_limit: None,
            capacity: DEFAULT_CAPACITY,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_child_calls: DEFAULT_MAX_CHILD_CALLS,
            link: crate::process::LinkLimits::default(),
            host_calls: true,
            sandbox: SandboxConfig::default(),
        }
    }

    /// Adds a directory to the child's `sys.path`.
    pub fn path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.sys_path.push(dir.into());
        self
    }

    /// Names the Extension subclass to load.
    pub fn class(mut self, class: impl Into<String>) -> Self {
        self.class = Some(class.into());
        self
    }

    /// Sets the PEP 508 dependencies.
    pub fn dependencies<I, S>(mut self, deps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.env.dependencies = deps.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the interpreter the venv is made from.
    pub fn python(mut self, python: impl Into<PathBuf>) -> Self {
        self.env = self.env.with_python(python);
        self
    }

    /// Lets the venv see the interpreter's own site-packages (`--system-site-packages`): on a
    /// machine with torch or cupy installed system-wide and no package index, an extension
    /// with no dependencies of its own then uses those, and nothing is installed.
    pub fn system_site_packages(mut self, yes: bool) -> Self {
        self.env = self.env.with_system_site_packages(yes);
        self
    }

    /// Adds an environment variable.
    pub fn var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.push((key.into(), value.into()));
        self
    }

    /// Sets the restart policy.
    pub fn restart(mut self, spec: RestartSpec) -> Self {
        self.restart = spec;
        self
    }

    /// Sets the default call deadline.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = Some(timeout);
        self
    }

    /// Sets the cancel grace (`None`: a child is never killed for a call that runs on
    /// after it was cancelled).
    pub fn cancel_grace(mut self, grace: Option<Duration>) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// Sets the connect deadline.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the start-up deadline.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Sets the graceful-stop deadline.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Kills and restarts the child above `mb` MiB of resident memory (at most
    /// [`MAX_MEMORY_LIMIT_MB`]).
    pub fn memory_limit_mb(mut self, mb: u64) -> Self {
        self.memory_limit = Some(mb.min(MAX_MEMORY_LIMIT_MB).saturating_mul(1024 * 1024));
        self
    }

    /// Sets the sandbox of its child: a [`SandboxLevel`](crate::process::SandboxLevel) or a
    /// whole [`SandboxConfig`].
    pub fn sandbox(mut self, sandbox: impl Into<SandboxConfig>) -> Self {
        self.sandbox = sandbox.into();
        self
    }

    /// Sets how many calls may wait to be sent (1 to [`troupe_runtime::MAX_CAPACITY`]).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.clamp(1, troupe_runtime::MAX_CAPACITY);
        self
    }

    /// Sets how many calls may be in the child at once.
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.max_in_flight = calls.max(1);
        self
    }

    /// Sets how many of the child's own calls the host serves at once.
    pub fn max_child_calls(mut self, calls: usize) -> Self {
        self.max_child_calls = calls.max(1);
        self
    }
}
