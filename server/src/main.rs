//! `testloop`: the command line over the orchestrator, and the MCP server (`testloop serve`).

mod cli;
mod kube;
mod pod;
mod progress;
mod serve;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use testloop_orchestrator::execution::{
    ExecutionRecord, ExecutionStatus, ExecutorKind, StepRecord, Trigger,
};
use testloop_orchestrator::executor::kubernetes::manifest;
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_orchestrator::logs::LogLine;
use testloop_orchestrator::plan;
use testloop_orchestrator::results::TestStatus;
use testloop_orchestrator::run::{
    Baseline, OrchestratorConfig, RunEvent, RunHandle, RunRequest, format_duration,
};
use testloop_orchestrator::spec::{self, Problem};
use testloop_orchestrator::store::{ExecutionFilter, TestCaseFilter};
use testloop_orchestrator::{Orchestrator, logs, summary};

use cli::{Cli, Command};
use progress::Progress;

/// Exit status for an execution that did not pass.
const EXIT_FAILED: u8 = 1;
/// Exit status for input that cannot run at all.
const EXIT_INVALID: u8 = 2;
/// Failed test cases printed after a run that failed.
const FAILED_TESTS_PRINTED: usize = 10;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // In `serve`, stderr is often a client's log file: no colour codes there.
    let serving = matches!(cli.command, Command::Serve(_));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !serving)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TESTLOOP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    // `serve` runs many executions and requests at once on a pool of threads. Every other command
    // runs at most one execution and follows it: one thread does both, so that a step's end does
    // not wake another thread to show it (200 steps of `true`: 833 → 682 voluntary context
    // switches).
    let mut builder = if serving {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("testloop: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    if serving {
        // A blocking read of stdin (when it is not a pipe) cannot be cancelled: do not wait for it.
        runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    } else {
        // The command is done: its blocking work was awaited. Dropping the runtime would still
        // wake and join the idle thread of the blocking pool, a few hundred microseconds of a
        // short command.
        runtime.shutdown_background();
    }
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("testloop: {error:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let data_dir = match (&cli.command, cli.data_dir) {
        // The runner in a pod has no data directory (nor, often, a HOME).
        (Command::PodInit | Command::PodRun(_), _) => PathBuf::new(),
        (_, Some(dir)) => dir,
        (_, None) => default_data_dir()?,
    };
    match cli.command {
        Command::Validate(args) => Ok(validate(&args.files)),
        Command::Render(args) => render(args),
        Command::Run(args) => run(&data_dir, args).await,
        Command::Executions(args) => executions(&data_dir, args),
        Command::Logs(args) => print_logs(&data_dir, args),
        Command::Rerun(args) => rerun(&data_dir, args).await,
        Command::Tests(args) => print_tests(&data_dir, args),
        Command::Diff(args) => diff(&data_dir, args).await,
        Command::Flaky(args) => flaky(&data_dir, args),
        Command::Serve(args) => serve::serve(&data_dir, args).await,
        Command::Prune(args) => prune(&data_dir, &args),
        Command::Artifacts(args) => artifacts(&data_dir, &args),
        Command::PodInit => pod::init(),
        Command::PodRun(args) => pod::run(args.container).await,
    }
}

/// `testloop artifacts`.
fn artifacts(data_dir: &Path, args: &cli::ArtifactsArgs) -> Result<ExitCode> {
    use testloop_orchestrator::artifacts::{self, Kind};
    let orchestrator = open(data_dir, SandboxMode::Auto)?;
    let (record, root) = orchestrator.artifact_store(&args.execution)?;
    let Some(path) = &args.path else {
        let listing = artifacts::list(&root, args.under.as_deref())?;
        if listing.total_files == 0 {
            println!("execution {} saved no artifacts", record.id);
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{} file(s), {}{}",
            listing.total_files,
            testloop_tools::format_bytes(listing.total_bytes),
            if listing.truncated {
                format!(
                    " (the first {} listed; --under DIR lists less)",
                    listing.entries.len()
                )
            } else {
                String::new()
            }
        );
        for entry in &listing.entries {
            println!(
                "{:>10}  {:<6}  {}",
                testloop_tools::format_bytes(entry.size),
                // Kind's Display writes its word as is: padding applies to a String.
                entry.kind.to_string(),
                entry.path
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let artifact = artifacts::open(&root, path)?;
    let stdout = std::io::stdout();
    if artifact.kind() == Kind::Binary && stdout.is_terminal() {
        bail!(
            "{} is binary ({}, {}): redirect the output to a file",
            artifact.path(),
            testloop_tools::format_bytes(artifact.size()),
            artifact.media_type()
        );
    }
    artifact.copy_to(&mut stdout.lock())?;
    Ok(ExitCode::SUCCESS)
}

/// `testloop prune`.
fn prune(data_dir: &Path, args: &cli::PruneArgs) -> Result<ExitCode> {
    let policy = args.retention.retention();
    if policy.keeps_everything() {
        bail!("say what to keep: --keep-days, --keep-executions or --keep-bytes");
    }
    let orchestrator = open(data_dir, SandboxMode::Auto)?;
    let pruned = if args.dry_run {
        orchestrator.prune_plan(&policy)?
    } else {
        orchestrator.prune_with(&policy)?
    };
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    println!(
        "{verb} {} execution(s), {} of logs and artifacts",
        pruned.executions.len(),
        testloop_tools::format_bytes(pruned.bytes)
    );
    for id in &pruned.executions {
        println!("  {id}");
    }
    Ok(ExitCode::SUCCESS)
}

fn default_data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir).join("testloop"));
    }
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .context("no data directory: set --data-dir, TESTLOOP_HOME or HOME")?;
    Ok(PathBuf::from(home).join(".local/share/testloop"))
}

/// Opens the data directory for commands that run nothing.
fn open(data_dir: &Path, sandbox: SandboxMode) -> Result<Orchestrator> {
    open_with(OrchestratorConfig::local(data_dir.to_path_buf(), sandbox))
}

fn open_with(config: OrchestratorConfig) -> Result<Orchestrator> {
    let data_dir = config.data_dir.clone();
    Orchestrator::open(config)
        .with_context(|| format!("cannot open the data directory {}", data_dir.display()))
}

/// Opens the data directory with the executors `args` ask for, connecting to the cluster when
/// Kubernetes is among them.
async fn open_for_runs(
    data_dir: &Path,
    sandbox: SandboxMode,
    args: &cli::ExecutorArgs,
    retention: &cli::RetentionArgs,
) -> Result<Orchestrator> {
    let mut config = OrchestratorConfig::local(data_dir.to_path_buf(), sandbox);
    config.retention = retention.retention();
    if args.wants_kubernetes() {
        config.kubernetes = Some(kube::executor(args).await?);
    }
    if args.kind == cli::ExecutorChoice::Kubernetes {
        config.default_executor = ExecutorKind::Kubernetes;
    }
    open_with(config)
}

/// The workflow of a file to use: the one named, or the only one.
fn choose<'p>(
    parsed: &'p [spec::ParsedWorkflow],
    name: Option<&str>,
    file: &Path,
) -> Result<&'p spec::ParsedWorkflow> {
    match (name, parsed.len()) {
        (Some(name), _) => parsed
            .iter()
            .find(|candidate| candidate.workflow.metadata.name == name)
            .with_context(|| {
                format!(
                    "{} has no workflow `{name}`; it has: {}",
                    file.display(),
                    names(parsed)
                )
            }),
        (None, 1) => Ok(&parsed[0]),
        (None, _) => bail!(
            "{} holds {} workflows: choose one with --workflow NAME ({})",
            file.display(),
            parsed.len(),
            names(parsed)
        ),
    }
}

/// `testloop render`: the Kubernetes objects a run of the workflow would create, as YAML. For a
/// file of several workflows without `--workflow`, every one that can run on Kubernetes is
/// rendered and the others are named on stderr with the reason.
fn render(args: cli::RenderArgs) -> Result<ExitCode> {
    let parsed = match spec::parse_file(&args.file) {
        Ok(parsed) => parsed,
        Err(problems) => {
            print_problems(&args.file, &problems);
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let chosen: Vec<&spec::ParsedWorkflow> = match &args.workflow {
        Some(name) => vec![choose(&parsed, Some(name), &args.file)?],
        None => parsed.iter().collect(),
    };
    let config: BTreeMap<String, String> = args.set.into_iter().collect();
    let options = kube::pod_options(&args.executor);
    let mut rendered = 0;
    for workflow in &chosen {
        match render_one(&workflow.workflow, &config, &options) {
            Ok(yaml) => {
                print!("{yaml}");
                rendered += 1;
            }
            Err(error) => eprintln!(
                "testloop: {}: {}: {error}",
                args.file.display(),
                workflow.workflow.metadata.name
            ),
        }
    }
    Ok(if rendered == 0 {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    })
}

fn render_one(
    workflow: &spec::Workflow,
    config: &BTreeMap<String, String>,
    options: &manifest::PodOptions,
) -> Result<String> {
    let execution_id = "render";
    let plan = plan::plan(
        workflow,
        config,
        plan::ExecutionVars {
            executor: ExecutorKind::Kubernetes,
            ..plan::ExecutionVars::new(execution_id)
        },
    )?;
    let unit = plan.into_unit(execution_id, PathBuf::new(), PathBuf::new());
    let objects = manifest::build(&unit, options, "render")?;
    Ok(format!(
        "---\n{}---\n{}",
        yaml_serde::to_string(&objects.config_map)?,
        yaml_serde::to_string(&objects.pod)?
    ))
}

fn print_problems(file: &Path, problems: &[Problem]) {
    for problem in problems {
        eprintln!("{}:{problem}", file.display());
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let mut all_valid = true;
    for file in files {
        match spec::parse_file(file) {
            Ok(workflows) => {
                let names: Vec<&str> = workflows
                    .iter()
                    .map(|parsed| parsed.workflow.metadata.name.as_str())
                    .collect();
                println!(
                    "{}: ok, {} workflow(s): {}",
                    file.display(),
                    names.len(),
                    names.join(", ")
                );
            }
            Err(problems) => {
                all_valid = false;
                print_problems(file, &problems);
                eprintln!("{}: {} problem(s)", file.display(), problems.len());
            }
        }
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

async fn run(data_dir: &Path, args: cli::RunArgs) -> Result<ExitCode> {
    let sandbox: SandboxMode = args
        .sandbox
        .parse()
        .map_err(|message: String| anyhow::anyhow!(message))?;
    let orchestrator = open_for_runs(data_dir, sandbox, &args.executor, &args.retention).await?;
    let file = Path::new(&args.target);
    let workflow_name = if file.is_file() {
        let parsed = match spec::parse_file(file) {
            Ok(parsed) => parsed,
            Err(problems) => {
                print_problems(file, &problems);
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        };
        let chosen = choose(&parsed, args.workflow.as_deref(), file)?;
        orchestrator.save_workflow(chosen)?;
        chosen.workflow.metadata.name.clone()
    } else if args.target.contains('/')
        || args.target.ends_with(".yaml")
        || args.target.ends_with(".yml")
    {
        bail!("no such file: {}", args.target);
    } else {
        args.target.clone()
    };

    let config: BTreeMap<String, String> = args.set.into_iter().collect();
    let handle = match orchestrator.start(RunRequest {
        workflow: workflow_name.clone(),
        config,
        trigger: Trigger::Cli,
        executor: None,
    }) {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("testloop: {error}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let header = format!(
        "Running {workflow_name} as execution {} (data: {})",
        handle.id,
        data_dir.display()
    );
    follow(&orchestrator, handle, &header, args.failure_lines).await
}

async fn rerun(data_dir: &Path, args: cli::RerunArgs) -> Result<ExitCode> {
    let sandbox: SandboxMode = args
        .sandbox
        .parse()
        .map_err(|message: String| anyhow::anyhow!(message))?;
    let orchestrator = open_for_runs(data_dir, sandbox, &args.executor, &args.retention).await?;
    let handle = match orchestrator.rerun(&args.execution, Trigger::Cli, args.only_failed) {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("testloop: {error}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let (previous, _) = orchestrator.execution(&args.execution)?;
    let header = format!(
        "Re-running {}{} of {} as execution {} (data: {})",
        if args.only_failed {
            "the failed steps of "
        } else {
            ""
        },
        previous.id,
        previous.workflow,
        handle.id,
        data_dir.display()
    );
    follow(&orchestrator, handle, &header, args.failure_lines).await
}

/// Shows a started execution's progress until it ends, then its verdict, its failed tests and
/// the failing step's last lines.
async fn follow(
    orchestrator: &Orchestrator,
    handle: RunHandle,
    header: &str,
    failure_lines: u64,
) -> Result<ExitCode> {
    let terminal = std::io::stdout().is_terminal();
    let mut progress = Progress::new(terminal);
    progress.header(header);

    let mut events = handle.events;
    let mut done = handle.done;
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(100));
    let mut interrupts = 0u32;
    let show = |progress: &mut Progress, event: RunEvent| match event {
        RunEvent::StepStarted(step) if step.execution_id == handle.id => {
            progress.step_started(&step)
        }
        RunEvent::StepFinished(step) if step.execution_id == handle.id => {
            progress.step_finished(&step)
        }
        _ => {}
    };
    let record = loop {
        tokio::select! {
            event = events.recv() => {
                if let Ok(event) = event {
                    show(&mut progress, event);
                }
                // Events come in bursts (the recorder announces a batch of steps at once): show
                // all that are already here, then write once.
                loop {
                    match events.try_recv() {
                        Ok(event) => show(&mut progress, event),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                        Err(_) => break,
                    }
                }
                progress.flush();
            }
            _ = ticker.tick() => progress.tick(),
            _ = tokio::signal::ctrl_c() => {
                interrupts += 1;
                if interrupts == 1 {
                    progress.flush();
                    eprintln!("\ntestloop: aborting execution {} (Ctrl-C again to quit at once)", handle.id);
                    orchestrator.abort(&handle.id);
                } else {
                    progress.flush();
                    return Ok(ExitCode::from(130));
                }
            }
            finished = &mut done => break finished.context("the execution task failed")?,
        }
    };
    // Events sent just before the end may still be queued.
    loop {
        match events.try_recv() {
            Ok(event) => show(&mut progress, event),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    let (record, steps) = orchestrator.execution(&record.id)?;
    progress.finished(&record, &steps);
    if record.status != ExecutionStatus::Passed {
        print_failed_tests(orchestrator, &record.id, FAILED_TESTS_PRINTED);
        print_failure_tail(orchestrator, &record, &steps, failure_lines);
        Ok(ExitCode::from(EXIT_FAILED))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn names(parsed: &[spec::ParsedWorkflow]) -> String {
    parsed
        .iter()
        .map(|candidate| candidate.workflow.metadata.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last lines of the first failing step that has a log, and how to read more.
fn print_failure_tail(
    orchestrator: &Orchestrator,
    record: &ExecutionRecord,
    steps: &[StepRecord],
    lines: u64,
) {
    let execution = &record.id;
    // The same step the MCP failure summary names: the first that failed on its own account,
    // non-optional ones first.
    let Some((step, _optional)) = summary::failed_step(record, steps) else {
        return;
    };
    let Ok(reader) = orchestrator.logs().reader(execution, &step.path) else {
        return;
    };
    let Ok(tail) = reader.tail(lines) else {
        return;
    };
    println!(
        "── last {} of {} line(s) of step {} ({}) ──",
        tail.len(),
        reader.line_count(),
        step.path,
        step.name
    );
    for line in &tail {
        println!("{}", line.text);
    }
    println!(
        "── full log: testloop logs {execution} --step {} --all",
        step.path
    );
}

fn executions(data_dir: &Path, args: cli::ExecutionsArgs) -> Result<ExitCode> {
    let orchestrator = open(data_dir, SandboxMode::Auto)?;
    let status = args
        .status
        .as_deref()
        .map(str::parse::<ExecutionStatus>)
        .transpose()
        .map_err(|error| anyhow::anyhow!("--status: {error}; expected queued, running, passed, failed, aborted, timed-out or interrupted"))?;
    let records = orchestrator.executions(&ExecutionFilter {
        workflow: args.workflow,
        status,
        limit: args.limit,
        before_id: None,
    })?;
    if records.is_empty() {
        println!("no executions");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<26}  {:<24}  {:<11}  {:<20}  {:>9}  {:<8}  EXECUTOR",
        "ID", "WORKFLOW", "STATUS", "STARTED", "DURATION", "TRIGGER"
    );
    for record in records {
        let started = record
            .started_at
            .map(format_timestamp)
            .unwrap_or_else(|| "-".to_owned());
        let duration = record
            .finished_at
            .zip(record.started_at)
            .map(|(end, start)| {
                format_duration(std::time::Duration::from_micros((end - start).max(0) as u64))
            })
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{:<26}  {:<24}  {:<11}  {:<20}  {:>9}  {:<8}  {}",
            record.id,
            format!("{}@v{}", record.workflow, record.workflow_version),
            record.status,
            started,
            duration,
            record.trigger,
            record.executor
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn format_timestamp(micros: i64) -> String {
    jiff::Timestamp::from_microsecond(micros)
        .map(|timestamp| timestamp.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| "-".to_owned())
}

fn print_logs(data_dir: &Path, args: cli::LogsArgs) -> Result<ExitCode> {
    let orchestrator = open(data_dir, SandboxMode::Auto)?;
    let (record, steps) = orchestrator.execution(&args.execution)?;
    let selected: Vec<&StepRecord> = match &args.step {
        Some(path) => {
            let step = steps
                .iter()
                .find(|step| &step.path == path)
                .with_context(|| {
                    format!(
                        "execution {} has no step `{path}`; its steps: {}",
                        record.id,
                        steps
                            .iter()
                            .map(|step| step.path.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            vec![step]
        }
        None => steps.iter().collect(),
    };
    let grep = args
        .grep
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("--grep is not a valid regular expression")?;
    let many = selected.len() > 1;
    let mut printed_any = false;
    for step in selected {
        let reader = match orchestrator.logs().reader(&record.id, &step.path) {
            Ok(reader) => reader,
            Err(logs::Error::NotFound { .. }) => continue,
            Err(error) => return Err(error.into()),
        };
        if many {
            println!(
                "══ step {} · {} · {} · {} line(s)",
                step.path,
                step.name,
                step.status,
                reader.line_count()
            );
        }
        printed_any = true;
        if let Some(regex) = &grep {
            let found = reader.grep(
                regex,
                logs::GrepOptions {
                    context: args.context,
                    max_matches: args.max_matches,
                    invert: false,
                },
            )?;
            let mut last: Option<u64> = None;
            for block in &found.blocks {
                if last.is_some_and(|end| {
                    block
                        .lines
                        .first()
                        .is_some_and(|line| line.number > end + 1)
                }) {
                    println!("--");
                }
                for line in &block.lines {
                    print_numbered(
                        line.number,
                        line.timestamp,
                        &line.text,
                        args.timestamps,
                        true,
                    );
                }
                last = block.lines.last().map(|line| line.number);
            }
            if found.truncated {
                println!(
                    "[testloop] stopped after {} matches: narrow the pattern or raise --max-matches",
                    args.max_matches
                );
            }
            continue;
        }
        let lines = if args.all {
            reader.lines(1..reader.line_count() + 1)?
        } else if let Some(head) = args.head {
            reader.lines(1..head + 1)?
        } else if let Some((from, to)) = args.lines {
            reader.lines(from..to + 1)?
        } else {
            let tail = args.tail.unwrap_or(100);
            let lines = reader.tail(tail)?;
            if reader.line_count() > tail {
                println!(
                    "[testloop] … {} earlier line(s); use --all, --head or --lines to read them",
                    reader.line_count() - tail
                );
            }
            lines
        };
        for line in &lines {
            print_line(line, args.timestamps, false);
        }
    }
    if !printed_any {
        match &args.step {
            Some(path) => println!("step {path} of execution {} wrote no output", record.id),
            None => println!("no step of execution {} wrote any output", record.id),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(line: &LogLine, timestamps: bool, numbered: bool) {
    print_numbered(
        line.number,
        line.timestamp,
        &line.text,
        timestamps,
        numbered,
    );
}

fn print_numbered(number: u64, timestamp: i64, text: &str, timestamps: bool, numbered: bool) {
    let mut prefix = String::new();
    if numbered {
        prefix.push_str(&format!("{number}: "));
    }
    if timestamps {
        prefix.push_str(&format!("{} ", format_timestamp(timestamp)));
    }
    println!("{prefix}{text}");
}

/// `N tests: ...` and the first `limit` failed cases of an execution, if it has test results.
fn print_failed_tests(orchestrator: &Orchestrator, execution: &str, limit: usize) {
    let store = orchestrator.store();
    let (Ok(counts), Ok(failed)) = (
        store.test_counts(execution),
        store.test_cases(
            execution,
            &TestCaseFilter {
                statuses: vec![TestStatus::Failed, TestStatus::Error],
                limit,
                ..TestCaseFilter::default()
            },
        ),
    ) else {
        return;
    };
    if counts.total == 0 {
        return;
    }
    println!("{}", testloop_tools::results::render_counts(&counts));
    for stored in failed {
        let case = &stored.case;
        let mut line = format!("  FAIL {}", testloop_tools::results::display_name(case));
        if let Some(location) = testloop_tools::results::location(case) {
            line.push_str(&format!(" ({location})"));
        }
        if let Some(message) = &case.message {
            line.push_str(": ");
            line.push_str(message.lines().next().unwrap_or_default());
        }
        println!("{line}");
    }
    let failed = counts.failed + counts.error;
    if failed > limit {
        println!(
            "  … {} more: testloop tests {execution} --failed",
            failed - limit
        );
    }
}

fn print_tests(data_dir: &Path, args: cli::TestsArgs) -> Result<ExitCode> {
    let orchestrator = open(data_dir, SandboxMode::Auto)?;
    let (record, _) = orchestrator.execution(&args.execution)?;
    let store = orchestrator.store();
    let counts = store.test_counts(&record.id)?;
    let reports = store.test_reports(&record.id)?;
    if reports.is_empty() {
        println!(
            "execution {} has no test results: no JUnit report among its artifacts and no \
             failing test recognised in its logs",
            record.id
        );
        return Ok(ExitCode::SUCCESS);
    }
    let sources: Vec<&str> = reports.iter().map(|r| r.source.as_str()).collect();
    println!(
        "execution {}: {} (from {})",
        record.id,
        testloop_tools::results::render_counts(&counts),
        sources.join(", ")
    );
    for report in &reports {
        if let Some(problem) = &report.problem {
            println!("note: {}: {problem}", report.source);
        }
    }
    let filter = TestCaseFilter {
        statuses: if args.failed {
            vec![TestStatus::Failed, TestStatus::Error]
        } else {
            Vec::new()
        },
        ..TestCaseFilter::default()
    };
    for stored in store.test_cases(&record.id, &filter)? {
        let case = &stored.case;
        let mut line = format!(
            "{:<7} {}",
            case.status.as_str(),
            testloop_tools::results::display_name(case)
        );
        if let Some(ms) = case.duration_ms {
            line.push_str(&format!(
                "  {}",
                format_duration(std::time::Duration::from_millis(ms))
            ));
        }
        if let Some(location) = testloop_tools::results::location(case) {
            line.push_str(&format!("  {location}"));
        }
        println!("{line}");
        if case.status.is_failure()
            && let Some(message) = &case.message
        {
            for text in message.lines() {
                println!("        {text}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn diff(data_dir: &Path, args: cli::DiffArgs) -> Result<ExitCode> {
    let orchestrator = open(data_dir, SandboxMode::Auto)?;
    let result = match &args.second {
        Some(head) => orchestrator.diff(head, Baseline::Execution(&args.first)),
        None => orchestrator.diff(&args.first, Baseline::LastPassed),
    };
    match result {
        Ok(diff) => {
            print!("{}", testloop_tools::diff::render_diff(&diff));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("testloop: {error}");
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

fn flaky(data_dir: &Path, args: cli::FlakyArgs) -> Result<ExitCode> {
    let orchestrator = open(data_dir, SandboxMode::Auto)?;
    let report = orchestrator.flaky_tests(&args.workflow, usize::from(args.last))?;
    if report.executions == 0 {
        eprintln!(
            "testloop: workflow `{}` has no finished executions",
            args.workflow
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    print!("{}", testloop_tools::results::render_flaky(&report));
    Ok(ExitCode::SUCCESS)
}
