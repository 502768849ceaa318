//! `hubwarp`: the operator's command. Why didn't this field sync, can I
//! re-send what failed, who decides this conflict, what did last night's
//! run change, and can I take that back. Works against AWS or the local
//! stack with the functions' own settings; human tables by default,
//! `--json` for scripts. Exits 2 on bad input or a missing setting, 1 when
//! a system fails.

mod context;
mod day_one;
mod render;
mod table;
mod terminal;

use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use hubwarp::operate::{self, OperateError, conflicts, dlq, events, explain, replay, runs, undo};
use hubwarp::reconcile::ReconcileRequest;
use hubwarp::settings::SettingError;
use hubwarp::startup::StartupError;

use context::Context;

/// The operator's command for the HubSpot <-> WARP sync.
///
/// Settings come from the environment under the functions' names
/// (WEBHOOK_EVENTS_TABLE, LINKS_TABLE, WARP_API_URL, ...; locally
/// HUBWARP_LOCAL_DEFAULTS fills the gaps, as for the functions). Each
/// subcommand needs only the settings it uses.
#[derive(Parser)]
#[command(name = "hubwarp", version, about, long_about)]
struct Cli {
    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates in HubSpot what the mapping needs and the portal lacks: the
    /// `warp` property group and each mapped company property, typed for
    /// its values. Never changes a property that exists; reports one of
    /// the wrong type (exit 1). Safe to run again.
    Setup {
        /// Say what would be created; create nothing.
        #[arg(long)]
        dry_run: bool,
        /// A mapping file instead of MAPPING_FILE (or the shipped default).
        #[arg(long, value_name = "FILE")]
        mapping: Option<std::path::PathBuf>,
    },
    /// Checks everything the bridge needs, one line each, ✓ or ✗ with the
    /// fix; exits 0 only when all hold.
    Doctor,
    /// Joins customers and companies that exist on both sides: exact BAN
    /// (or external id) matches linked with --apply; name and web-domain
    /// matches listed as suggestions, never linked.
    Link {
        /// Write the exact links (default: a dry run that writes nothing).
        #[arg(long)]
        apply: bool,
    },
    /// The whole story of a customer, newest first: every decision with its
    /// source, both values, the baseline and the rule; then both sides now.
    Explain {
        /// A WARP customer id, a BAN, or a HubSpot company id (digits).
        target: String,
        /// Only this field: a WARP field (credit_limit) or HubSpot property.
        field: Option<String>,
        /// How many logged decisions to read at most.
        #[arg(long, default_value_t = explain::DEFAULT_LIMIT)]
        limit: usize,
    },
    /// What the receiver recorded and what became of each event.
    Events {
        /// Only events about this HubSpot company.
        #[arg(long)]
        company: Option<String>,
        /// Received at or after: RFC 3339, a date, epoch ms, or an age (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Received at or before (same forms).
        #[arg(long)]
        until: Option<String>,
        /// Only this status (RECEIVED, QUEUED, APPLIED, FAILED, UNMATCHED, IGNORED, UNREADABLE).
        #[arg(long)]
        status: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Puts recorded events back through the normal queue; the consumer's
    /// own checks apply (an applied event is a no-op, a stale one skipped).
    Replay(ReplayArgs),
    /// The sync queue's dead-letter queue.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// MANUAL conflicts waiting for a person.
    Conflicts {
        #[command(subcommand)]
        command: ConflictsCommand,
    },
    /// Starts a reconcile run now and prints its summary and report keys.
    Reconcile {
        /// Decide everything, write nothing, still write the report.
        #[arg(long)]
        dry_run: bool,
        /// Only these customers (id or BAN); repeat for more.
        #[arg(long = "customer", value_name = "ID_OR_BAN")]
        customers: Vec<String>,
        /// Run in this process instead of invoking the function
        /// (RECONCILER_FUNCTION_NAME).
        #[arg(long)]
        local: bool,
    },
    /// Past runs with their counters and report keys.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Reverts the writes of one reconcile run where the field still holds
    /// what the run wrote; anything changed since is left alone and listed.
    Undo {
        /// The run to undo (`hubwarp runs list`).
        run_id: String,
        /// Weigh everything and write only the report.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args)]
#[group(skip)]
#[command(group(
    ArgGroup::new("selection").required(true).args(["event", "company", "since"])
))]
struct ReplayArgs {
    /// One event, by its dedup key (`hubwarp events` shows them).
    #[arg(long)]
    event: Option<String>,
    /// Every recorded event of this HubSpot company.
    #[arg(long)]
    company: Option<String>,
    /// Every event received at or after (RFC 3339, a date, epoch ms, or an age).
    #[arg(long)]
    since: Option<String>,
    /// With --since: received at or before.
    #[arg(long, requires = "since")]
    until: Option<String>,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// What sits in the dead-letter queue, and why (the last error).
    List {
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Moves the dead letters back to the sync queue.
    Redrive {
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
}

#[derive(Subcommand)]
enum ConflictsCommand {
    /// The open conflicts, with the ids `resolve` takes.
    List,
    /// Applies a choice through the normal write paths and closes the conflict.
    Resolve {
        /// The conflict's id (or a unique prefix of 4 or more digits).
        id: String,
        /// Whose value both sides take.
        #[arg(long, value_enum)]
        take: Side,
        /// Why, kept with the conflict and in the sync log.
        #[arg(long)]
        note: Option<String>,
        /// Who chose (default: the OS user).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Side {
    Warp,
    Hubspot,
}

#[derive(Subcommand)]
enum RunsCommand {
    /// Past runs, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One run: its counters, report keys and every write it made.
    Show { run_id: String },
}

/// Why the command failed, and with which exit code.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Operate(#[from] OperateError),
    /// The answer itself says something is wrong (doctor's ✗, setup's
    /// unfit property): printed as the answer, exit 1.
    #[error("{0}")]
    Findings(String),
}

impl Failure {
    /// 2: the operator's input or settings; 1: a system failed.
    fn exit_code(&self) -> u8 {
        match self {
            Self::Setting(_) | Self::Startup(StartupError::Setting(_)) => 2,
            Self::Operate(e) if e.is_input() => 2,
            _ => 1,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    match run(cli).await {
        Ok(text) => {
            print!("{}", terminal::printable(&text));
            ExitCode::SUCCESS
        }
        Err(Failure::Findings(text)) => {
            print!("{}", terminal::printable(&text));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hubwarp: {}", terminal::printable(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

/// JSON log lines on stderr (stdout is the answer), warnings and up unless
/// `RUST_LOG` says otherwise.
fn init_logs() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}

fn os_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn when(text: &Option<String>, now: i64) -> Result<Option<i64>, OperateError> {
    text.as_deref()
        .map(|t| operate::parse_when(t, now))
        .transpose()
}

async fn run(cli: Cli) -> Result<String, Failure> {
    let ctx = Context::from_process()?;
    let json = cli.json;
    let now = hubwarp::time::now_ms();
    Ok(match cli.command {
        Command::Setup { dry_run, mapping } => {
            day_one::setup(&ctx, dry_run, mapping.as_deref(), json).await?
        }
        Command::Doctor => day_one::doctor(&ctx, json).await?,
        Command::Link { apply } => day_one::link(&ctx, apply, json).await?,
        Command::Explain {
            target,
            field,
            limit,
        } => {
            let store = ctx.sync_store().await?;
            let mappings = ctx.mappings()?;
            ctx.warp_settings()?;
            ctx.hubspot_settings()?;
            let (warp, hubspot) = (ctx.warp().await?, ctx.hubspot().await?);
            let x = explain::explain(
                &warp,
                &hubspot,
                &store,
                &mappings,
                &target,
                field.as_deref(),
                limit,
            )
            .await?;
            render::explain(&x, json)
        }
        Command::Events {
            company,
            since,
            until,
            status,
            limit,
        } => {
            let log = ctx.events().await?;
            let query = hubwarp::store::records::EventQuery {
                company_id: company,
                since_ms: when(&since, now)?,
                until_ms: when(&until, now)?,
                status,
            };
            render::events(&events::list(&log, &query, limit).await?, json)
        }
        Command::Replay(args) => {
            let selection = match (args.event, args.company, args.since) {
                (Some(key), _, _) => replay::Selection::Event(key),
                (_, Some(company), _) => replay::Selection::Company(company),
                (_, _, Some(since)) => replay::Selection::Window {
                    since_ms: operate::parse_when(&since, now)?,
                    until_ms: when(&args.until, now)?,
                },
                // clap's group requires one of the three.
                _ => {
                    return Err(
                        OperateError::Invalid("name --event, --company or --since".into()).into(),
                    );
                }
            };
            let log = ctx.events().await?;
            let url = ctx.queue_url()?;
            let queue = hubwarp::queue::SqsQueue::new(ctx.sqs().await, url);
            render::replay(&replay::replay(&log, &queue, &selection, now).await?, json)
        }
        Command::Dlq { command } => {
            let source = ctx.queue_url()?;
            let log = match &command {
                DlqCommand::List { .. } => Some(ctx.events().await?),
                DlqCommand::Redrive { .. } => None,
            };
            let sqs = ctx.sqs().await;
            let dlq_url = match ctx.env.optional_url("SYNC_DLQ_URL")? {
                Some(url) => url,
                None => dlq::dlq_url(&sqs, &source).await?,
            };
            match (command, log) {
                (DlqCommand::List { max }, Some(log)) => {
                    render::dead_letters(&dlq::list(&sqs, &dlq_url, &log, max).await?, json)
                }
                (DlqCommand::Redrive { max }, _) => {
                    render::redrive(&dlq::redrive(&sqs, &dlq_url, &source, max).await?, json)
                }
                (DlqCommand::List { .. }, None) => String::new(),
            }
        }
        Command::Conflicts { command } => {
            let store = ctx.sync_store().await?;
            match command {
                ConflictsCommand::List => render::conflicts(&conflicts::list(&store).await?, json),
                ConflictsCommand::Resolve { id, take, note, by } => {
                    let mappings = ctx.mappings()?;
                    ctx.warp_settings()?;
                    ctx.hubspot_settings()?;
                    let (warp, hubspot) = (ctx.warp().await?, ctx.hubspot().await?);
                    let by = by.unwrap_or_else(os_user);
                    let choice = conflicts::Choice {
                        take: match take {
                            Side::Warp => conflicts::Take::Warp,
                            Side::Hubspot => conflicts::Take::Hubspot,
                        },
                        by: &by,
                        note: note.as_deref(),
                    };
                    let done = conflicts::resolve(&warp, &hubspot, &store, &mappings, &id, &choice)
                        .await?;
                    render::resolved(&done, json)
                }
            }
        }
        Command::Reconcile {
            dry_run,
            customers,
            local,
        } => {
            let request = ReconcileRequest {
                dry_run,
                customers: (!customers.is_empty()).then_some(customers),
                ..Default::default()
            };
            let outcome = if local {
                let config = hubwarp::reconcile::config::Config::from_env(&ctx.env)?;
                let reconciler = hubwarp::reconcile::aws::build(&config, ctx.aws().await).await?;
                operate::reconcile::run_here(&reconciler, &request).await?
            } else {
                let function = ctx.env.required("RECONCILER_FUNCTION_NAME")?.to_string();
                let endpoint = ctx.env.optional_url("AWS_ENDPOINT_URL_LAMBDA")?;
                let lambda = reconcile_lambda(ctx.aws().await, endpoint.as_deref());
                operate::reconcile::invoke(&lambda, &function, &request).await?
            };
            render::outcome(&outcome, ctx.reports_bucket().ok().as_deref(), json)
        }
        Command::Runs { command } => {
            let store = ctx.runs().await?;
            match command {
                RunsCommand::List { limit } => {
                    render::runs(&runs::list(&store, limit).await?, json)
                }
                RunsCommand::Show { run_id } => {
                    let reports = ctx.reports().await?;
                    render::run(
                        &runs::show(&store, &reports, &run_id).await?,
                        ctx.reports_bucket().ok().as_deref(),
                        json,
                    )
                }
            }
        }
        Command::Undo { run_id, dry_run } => {
            let runs = ctx.runs().await?;
            let reports = ctx.reports().await?;
            let store = ctx.sync_store().await?;
            let mappings = ctx.mappings()?;
            let settings = undo::UndoSettings {
                timezone: ctx.timezone()?,
                ..Default::default()
            };
            ctx.warp_settings()?;
            ctx.hubspot_settings()?;
            let (warp, hubspot) = (ctx.warp().await?, ctx.hubspot().await?);
            let sides = undo::Sides {
                warp: &warp,
                hubspot: &hubspot,
                store: &store,
                runs: &runs,
                reports: &reports,
                mappings: &mappings,
            };
            render::undone(
                &undo::undo(&sides, &settings, &run_id, dry_run).await?,
                ctx.reports_bucket().ok().as_deref(),
                json,
            )
        }
    })
}

/// A Lambda client whose calls may last as long as a run's invocation
/// (Lambda's 15 minutes), not the 30 s of every other call.
fn reconcile_lambda(aws: &aws_config::SdkConfig, endpoint: Option<&str>) -> aws_sdk_lambda::Client {
    let budget = std::time::Duration::from_secs(15 * 60 + 30);
    let long = aws
        .to_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .operation_attempt_timeout(budget)
                .operation_timeout(budget)
                .build(),
        )
        // A retried invoke would start a second manual run.
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    hubwarp::aws::lambda(&long, endpoint)
}
