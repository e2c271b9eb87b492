//! The command line, as clap sees it. Help texts teach by example.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::serve::security::Token;

#[derive(Debug, Parser)]
#[command(
    name = "testloop",
    version,
    about = "Run test workflows (Testkube TestWorkflow YAML) locally, keep their logs, and read them back.",
    long_about = "Run test workflows (Testkube TestWorkflow YAML) on this machine, with every execution, \
step result and log line kept in a data directory, so that you (or an AI agent) can read why a run \
failed and compare it with the next one.",
    after_help = "Examples:
  testloop run examples/workflows/hello.yaml
  testloop run examples/workflows/greet.yaml --set name=World
  testloop validate my-workflow.yaml
  testloop executions --workflow hello
  testloop logs 01JD3 --step 2 --tail 50
  testloop logs 01JD3 --grep 'FAIL|panicked' --context 3
  testloop tests 01JD3 --failed
  testloop rerun 01JD3 --only-failed
  testloop diff 01JD2 01JD3
  testloop flaky calc"
)]
pub struct Cli {
    /// Where executions, logs and artifacts are kept [default: $TESTLOOP_HOME, else
    /// ~/.local/share/testloop].
    #[arg(long, global = true, env = "TESTLOOP_HOME", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workflow from a file (saving it as a new version when it changed) or by name.
    #[command(after_help = "Examples:
  testloop run examples/workflows/hello.yaml
  testloop run examples/workflows/greet.yaml --set name=World --set times=3
  testloop run examples/workflows/sample-project.yaml --workflow sample-project-failing
  testloop run hello                 # the latest saved version of workflow `hello`

Exit status: 0 when the execution passed, 1 when it failed, was aborted or timed out,
2 when the workflow is invalid or cannot run. Ctrl-C aborts the execution (twice: quit now).")]
    Run(RunArgs),

    /// Check workflow files and print every problem with its line, column and field path.
    #[command(after_help = "Examples:
  testloop validate my-workflow.yaml
  testloop validate ../shared/examples/testkube/*.yaml

Output, one problem a line:  FILE:LINE:COLUMN: spec.steps[2].timeout: expected a duration like 90s or 5m
Exit status: 0 when every file is valid, 1 otherwise.")]
    Validate(ValidateArgs),

    /// Print the Kubernetes objects a run would create (a ConfigMap and a Pod per unit), as
    /// `helm template` does: for review and GitOps. Nothing is created.
    #[command(after_help = "Examples:
  testloop render examples/workflows/hello.yaml --executor kubernetes
  testloop render my-workflow.yaml --set env=staging --executor kubernetes --namespace tests
  testloop render my-workflow.yaml --executor kubernetes | kubectl apply --dry-run=server -f -

Exit status: 0 when the objects were printed, 2 when the workflow cannot run on Kubernetes.")]
    Render(RenderArgs),

    /// List executions, newest first.
    #[command(after_help = "Examples:
  testloop executions
  testloop executions --workflow hello --status failed --limit 5")]
    Executions(ExecutionsArgs),

    /// Print an execution's step logs: the last lines by default, or a range, or what matches.
    #[command(after_help = "Examples:
  testloop logs 01JD3QX            # the last 100 lines of every step (an id prefix is enough)
  testloop logs 01JD3QX --step 2 --tail 20
  testloop logs 01JD3QX --step 2 --head 50
  testloop logs 01JD3QX --step 2/1 --lines 200:260
  testloop logs 01JD3QX --grep 'error|FAIL' --context 2
  testloop logs 01JD3QX --step 2 --all")]
    Logs(LogsArgs),

    /// Run an execution again: the same workflow version and config, or only what failed.
    #[command(after_help = "Examples:
  testloop rerun 01JD3QX                 # everything again, same version and config
  testloop rerun 01JD3QX --only-failed   # skip the steps that passed; failed tests reach the
                                         # workflow as {{ execution.failed_tests }}

Exit status: as for `testloop run`.")]
    Rerun(RerunArgs),

    /// Print an execution's test cases (from JUnit reports, or failures recognised in its logs).
    #[command(after_help = "Examples:
  testloop tests 01JD3QX            # counts, then every case, failed ones first
  testloop tests 01JD3QX --failed   # only failed and errored cases, with messages")]
    Tests(TestsArgs),

    /// Compare two executions: tests newly failing or fixed, step changes, config and workflow
    /// changes, and the normalised log diff of the failing step.
    #[command(after_help = "Examples:
  testloop diff 01JD3QA 01JD3QB   # what changed from the first to the second
  testloop diff 01JD3QB           # against the last execution of its workflow that passed

Exit status: 0 when the diff was made (whatever it says), 2 when it could not be.")]
    Diff(DiffArgs),

    /// List a workflow's flaky tests: outcomes that flip between runs of the same version.
    #[command(after_help = "Examples:
  testloop flaky calc             # over its last 20 finished executions
  testloop flaky calc --last 50")]
    Flaky(FlakyArgs),

    /// Serve the MCP tools to an AI agent: over stdin/stdout (the default), or over HTTP.
    #[command(after_help = "Examples:
  testloop serve                                        # stdio, for an IDE or desktop agent
  testloop serve --transport http                       # http://127.0.0.1:8080/mcp
  testloop serve --transport http --listen 127.0.0.1:0  # any free port, printed on stderr
  TESTLOOP_TOKEN=$(openssl rand -hex 32) testloop serve --transport http --listen 0.0.0.0:8080 \\
      --allowed-host testloop.internal

HTTP endpoints: /mcp (streamable HTTP), /sse and /message (legacy HTTP+SSE), /healthz (no token).
Listening beyond loopback requires a token; clients send `Authorization: Bearer <token>`.
Limits: 4 MiB per message; 64 sessions and 64 requests in flight at once (503 beyond).
SIGTERM or Ctrl-C: finish the requests in flight (up to 10s), then stop (twice: quit at once).
Executions still running when serving ends are aborted and recorded.")]
    Serve(ServeArgs),

    /// List the files an execution saved (its artifacts), or print one.
    #[command(after_help = "Examples:
  testloop artifacts 01JD3QX                        # size, kind and path of each file
  testloop artifacts 01JD3QX --under reports
  testloop artifacts 01JD3QX reports/junit.xml      # the file, as saved, on stdout
  testloop artifacts 01JD3QX out/coverage.bin > coverage.bin

Exit status: 0 when listed or printed, 2 when the execution or the file does not exist (or a
binary file would go to a terminal).")]
    Artifacts(ArtifactsArgs),

    /// Delete old executions, with their logs and artifacts, by age, count or size.
    #[command(after_help = "Examples:
  testloop prune --keep-days 30
  testloop prune --keep-executions 100 --keep-bytes 5G
  testloop prune --keep-days 7 --dry-run

Never deleted: executions still running, and each workflow's latest execution and latest that
passed (the baseline of `diff`). The same limits given to `serve`, `run` or `rerun` (or set in
TESTLOOP_KEEP_DAYS, TESTLOOP_KEEP_EXECUTIONS, TESTLOOP_KEEP_BYTES) apply when the data directory
is opened and after every execution.")]
    Prune(PruneArgs),

    /// Inside a unit's pod, in the init container: prepare the pod for the runner.
    #[command(hide = true)]
    PodInit,

    /// Inside a unit's pod: run one step container's share of the unit.
    #[command(hide = true)]
    PodRun(PodRunArgs),
}

/// How much history to keep (nothing is deleted unless one is set).
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Delete executions that ended more than this many days ago.
    #[arg(long, env = "TESTLOOP_KEEP_DAYS", value_name = "DAYS")]
    pub keep_days: Option<u32>,

    /// Keep only this many latest executions of each workflow (at least 1).
    #[arg(long, env = "TESTLOOP_KEEP_EXECUTIONS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_executions: Option<u32>,

    /// Delete the oldest executions while all logs and artifacts take more than this: bytes, or
    /// with K, M, G or T (binary units: 5G is 5 GiB).
    #[arg(long, env = "TESTLOOP_KEEP_BYTES", value_name = "SIZE", value_parser = parse_size)]
    pub keep_bytes: Option<u64>,
}

impl RetentionArgs {
    pub fn retention(&self) -> testloop_orchestrator::retention::Retention {
        testloop_orchestrator::retention::Retention {
            max_age: self
                .keep_days
                .map(|days| std::time::Duration::from_secs(u64::from(days) * 86_400)),
            max_per_workflow: self.keep_executions.map(|n| n as usize),
            max_bytes: self.keep_bytes,
        }
    }
}

/// `1024`, `500K`, `200M`, `5G`, `1T` (also `5GiB`, `5GB`: all binary), as bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("expected a size like 500M or 5G, got `{text}`"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`: use K, M, G or T"
            ));
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[derive(Debug, Args)]
pub struct ArtifactsArgs {
    /// Execution id, or a unique prefix of one.
    pub execution: String,

    /// A file's path in the execution's artifact store, as the listing shows it: print it.
    pub path: Option<String>,

    /// List only this directory of the store.
    #[arg(long, value_name = "DIR", conflicts_with = "path")]
    pub under: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub retention: RetentionArgs,

    /// Print what would be deleted, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct PodRunArgs {
    /// The index of this container among the pod's step containers.
    #[arg(long)]
    pub container: usize,
}

/// How `testloop serve` talks to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    /// JSON-RPC lines on stdin and stdout.
    Stdio,
    /// Streamable HTTP at /mcp and legacy HTTP+SSE at /sse, on --listen.
    Http,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// stdio, or http.
    #[arg(long, value_enum, default_value_t = TransportKind::Stdio)]
    pub transport: TransportKind,

    /// The address to listen on with --transport http (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// The bearer token HTTP clients must send (required beyond loopback). Prefer the
    /// environment variable: a command line is visible to other users.
    #[arg(
        long,
        env = "TESTLOOP_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<Token>,

    /// Another accepted `Host` header, `name` (any port) or `name:port` (repeatable); loopback
    /// names and the listen address are always accepted.
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,

    /// A browser origin allowed to call, like https://app.example.com (repeatable); requests
    /// without an Origin, and from loopback origins, are always allowed.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// How the workspace appears at /data: auto, namespace, bwrap or none.
    #[arg(long, env = "TESTLOOP_SANDBOX", default_value = "auto")]
    pub sandbox: String,

    #[command(flatten)]
    pub executor: ExecutorArgs,

    #[command(flatten)]
    pub retention: RetentionArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A workflow file, or the name of a saved workflow.
    #[arg(value_name = "FILE_OR_NAME")]
    pub target: String,

    /// A config value, typed by the workflow's `spec.config` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,

    /// Which workflow of a file that holds several.
    #[arg(short, long, value_name = "NAME")]
    pub workflow: Option<String>,

    /// How the workspace appears at /data: auto, namespace, bwrap or none.
    #[arg(long, env = "TESTLOOP_SANDBOX", default_value = "auto")]
    pub sandbox: String,

    #[command(flatten)]
    pub executor: ExecutorArgs,

    #[command(flatten)]
    pub retention: RetentionArgs,

    /// Lines of the failing step's log printed at the end.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub failure_lines: u64,
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// Execution id, or a unique prefix of one.
    #[arg(value_name = "EXECUTION")]
    pub execution: String,

    /// Skip the top-level steps that passed (setup and after steps still run), and pass the
    /// failed test cases' names as `execution.failed_tests`.
    #[arg(long)]
    pub only_failed: bool,

    /// How the workspace appears at /data: auto, namespace, bwrap or none.
    #[arg(long, env = "TESTLOOP_SANDBOX", default_value = "auto")]
    pub sandbox: String,

    #[command(flatten)]
    pub executor: ExecutorArgs,

    #[command(flatten)]
    pub retention: RetentionArgs,

    /// Lines of the failing step's log printed at the end.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub failure_lines: u64,
}

#[derive(Debug, Args)]
pub struct TestsArgs {
    /// Execution id, or a unique prefix of one.
    #[arg(value_name = "EXECUTION")]
    pub execution: String,

    /// Only failed and errored cases.
    #[arg(long)]
    pub failed: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The baseline execution, or, alone, the execution to compare with the last passed run.
    #[arg(value_name = "A")]
    pub first: String,

    /// The execution to compare with A.
    #[arg(value_name = "B")]
    pub second: Option<String>,
}

#[derive(Debug, Args)]
pub struct FlakyArgs {
    /// The workflow's name.
    #[arg(value_name = "WORKFLOW")]
    pub workflow: String,

    /// How many of its latest finished executions to look at (1 to 200).
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=200))]
    pub last: u16,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Workflow files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A workflow file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// A config value, typed by the workflow's `spec.config` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,

    /// Which workflow of a file that holds several.
    #[arg(short, long, value_name = "NAME")]
    pub workflow: Option<String>,

    #[command(flatten)]
    pub executor: ExecutorArgs,
}

#[derive(Debug, Args)]
pub struct ExecutionsArgs {
    /// Only executions of this workflow.
    #[arg(long, value_name = "NAME")]
    pub workflow: Option<String>,

    /// Only executions with this status (queued, running, passed, failed, aborted, timed-out,
    /// interrupted).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,

    /// At most this many.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Execution id, or a unique prefix of one.
    #[arg(value_name = "EXECUTION")]
    pub execution: String,

    /// Only this step (`2`, `2/1`, `setup/1`, `after/1`); all steps otherwise.
    #[arg(long, value_name = "PATH")]
    pub step: Option<String>,

    /// The last N lines of each step.
    #[arg(long, value_name = "N", conflicts_with_all = ["head", "lines", "all"])]
    pub tail: Option<u64>,

    /// The first N lines of each step.
    #[arg(long, value_name = "N", conflicts_with_all = ["lines", "all"])]
    pub head: Option<u64>,

    /// Lines FROM:TO (1-based, inclusive).
    #[arg(long, value_name = "FROM:TO", value_parser = parse_line_range, conflicts_with = "all")]
    pub lines: Option<(u64, u64)>,

    /// Every line.
    #[arg(long)]
    pub all: bool,

    /// Only lines matching this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub grep: Option<String>,

    /// Lines of context around each --grep match.
    #[arg(long, default_value_t = 0, value_name = "N", requires = "grep")]
    pub context: usize,

    /// At most N --grep matches per step.
    #[arg(long, default_value_t = 200, value_name = "N", requires = "grep")]
    pub max_matches: usize,

    /// Prefix each line with its time.
    #[arg(long)]
    pub timestamps: bool,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got `{text}`")),
    }
}

fn parse_line_range(text: &str) -> Result<(u64, u64), String> {
    let parsed = text.split_once(':').and_then(|(from, to)| {
        Some((
            from.trim().parse::<u64>().ok()?,
            to.trim().parse::<u64>().ok()?,
        ))
    });
    match parsed {
        Some((from, to)) if from >= 1 && from <= to => Ok((from, to)),
        _ => Err(format!(
            "expected FROM:TO with 1 <= FROM <= TO, like 200:260, got `{text}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;
    use crate::serve::limits::{
        MAX_IN_FLIGHT_REQUESTS, MAX_MESSAGE_BYTES, MAX_SESSIONS, SHUTDOWN_GRACE,
    };

    #[test]
    fn sizes_read_in_binary_units() {
        use super::parse_size;
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("500K"), Ok(500 << 10));
        assert_eq!(parse_size("200M"), Ok(200 << 20));
        assert_eq!(parse_size("5G"), Ok(5 << 30));
        assert_eq!(parse_size("5gib"), Ok(5 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert!(parse_size("M").unwrap_err().contains("expected a size"));
        assert!(
            parse_size("1.5G")
                .unwrap_err()
                .contains("unknown size unit `.5G`")
        );
        assert!(
            parse_size("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn serve_help_states_the_limits_as_defined() {
        let mut command = Cli::command();
        let help = command
            .find_subcommand_mut("serve")
            .expect("serve")
            .render_long_help()
            .to_string();
        assert!(
            help.contains(&format!("{} MiB per message", MAX_MESSAGE_BYTES >> 20)),
            "{help}"
        );
        assert!(help.contains(&format!("{MAX_SESSIONS} sessions")), "{help}");
        assert!(
            help.contains(&format!("{MAX_IN_FLIGHT_REQUESTS} requests in flight")),
            "{help}"
        );
        assert!(
            help.contains(&format!("up to {}s", SHUTDOWN_GRACE.as_secs())),
            "{help}"
        );
    }
}

/// Where executions run: this machine, or a Kubernetes cluster.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Executor")]
pub struct ExecutorArgs {
    /// Where executions run unless they ask otherwise: `local` (child processes here) or
    /// `kubernetes` (one pod per unit).
    #[arg(long = "executor", env = "TESTLOOP_EXECUTOR", value_enum, default_value_t = ExecutorChoice::Local)]
    pub kind: ExecutorChoice,

    /// The kubeconfig to use [default: $KUBECONFIG, ~/.kube/config, else the in-cluster
    /// ServiceAccount]. Giving it (or --context) also makes `kubernetes` available per run.
    #[arg(long, env = "TESTLOOP_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context [default: its current context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Where test pods run [default: the context's namespace, else `default`].
    #[arg(long, env = "TESTLOOP_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,

    /// Keep the pods of units that did not pass (for `kubectl describe` and `kubectl logs`);
    /// their ConfigMaps go with them when you delete them.
    #[arg(long)]
    pub keep_failed_pods: bool,

    /// The image whose `testloop` binary each test pod's init container copies in.
    #[arg(long, env = "TESTLOOP_TOOLKIT_IMAGE", value_name = "IMAGE")]
    pub toolkit_image: Option<String>,

    /// Where the testloop binary is in the toolkit image [default: /testloop].
    #[arg(
        long,
        env = "TESTLOOP_TOOLKIT_BINARY",
        value_name = "PATH",
        hide = true
    )]
    pub toolkit_binary: Option<String>,

    /// The image for steps that name none.
    #[arg(long, env = "TESTLOOP_DEFAULT_IMAGE", value_name = "IMAGE")]
    pub default_image: Option<String>,

    /// The ServiceAccount test pods run as when the workflow names none.
    #[arg(long, env = "TESTLOOP_RUNNER_SERVICE_ACCOUNT", value_name = "NAME")]
    pub runner_service_account: Option<String>,

    /// Seconds a pod may stay unschedulable before its unit fails.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub schedule_timeout: u64,
}

impl ExecutorArgs {
    /// Whether a cluster is to be connected to.
    pub fn wants_kubernetes(&self) -> bool {
        self.kind == ExecutorChoice::Kubernetes
            || self.kubeconfig.is_some()
            || self.context.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorChoice {
    Local,
    Kubernetes,
}
