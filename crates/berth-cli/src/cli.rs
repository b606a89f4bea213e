//! The command line: clap definitions with docker's spelling, docker's help
//! layout (Usage / Aliases / Options; the top level in Common, Management
//! and other commands), and docker's messages and exit codes for bad input.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Command, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::container::{
    AttachArgs, CommitArgs, CpArgs, CreateArgs, DiffArgs, ExecArgs, ExportArgs, KillArgs, LogsArgs, PauseArgs, PortArgs, PruneArgs,
    PsArgs, RenameArgs, RmArgs, RunArgs, StartArgs, StatsArgs, StopArgs, TopArgs, UpdateArgs, WaitArgs,
};
use crate::image::{HistoryArgs, ImageInspectArgs, ImagePruneArgs, ImagesArgs, ImportArgs, LoadArgs, RmiArgs, SaveArgs, TagArgs};
use crate::inspect::{ContainerInspectArgs, InspectArgs};
use crate::build::BuildArgs;
use crate::later::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use crate::network::NetworkCommand;
use crate::registry::{ManifestCmd, RegistryCmd, SearchArgs};
use crate::volume::VolumeCommand;
use crate::system::{DfArgs, EventsArgs, InfoArgs, SystemPruneArgs, VersionArgs};

/// A self-sufficient runtime for containers
#[derive(Debug, Parser)]
#[command(name = "berth", disable_version_flag = true, disable_help_subcommand = true)]
pub struct Cli {
    /// Location of client config files
    #[arg(long = "config", value_name = "string", env = "BERTH_CONFIG", hide_env = true)]
    pub config: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", value_name = "list")]
    pub host: Option<String>,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(short = 'l', long = "log-level", value_name = "string", default_value = "info")]
    pub log_level: String,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    // Common commands
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// List containers
    Ps(PsArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Authenticate to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Search Docker Hub for images
    Search(SearchArgs),
    /// Show the berth version information
    Version(VersionArgs),
    /// Display system-wide information
    Info(InfoArgs),
    // Management commands
    /// Manage containers
    Container(MgmtContainer),
    /// Manage images
    Image(MgmtImage),
    /// Manage Docker image manifests and manifest lists
    Manifest(MgmtManifest),
    /// Manage networks
    Network(MgmtNetwork),
    /// Run a registry, collect its garbage
    Registry(MgmtRegistry),
    /// Manage berth
    System(MgmtSystem),
    /// Manage volumes
    Volume(MgmtVolume),
    // Other commands
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Return low-level information on berth objects
    Inspect(InspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
}

#[derive(Debug, Args)]
pub struct MgmtContainer {
    #[command(subcommand)]
    pub command: Option<ContainerCmd>,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCmd {
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
}

#[derive(Debug, Args)]
pub struct MgmtImage {
    #[command(subcommand)]
    pub command: Option<ImageCmd>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
}

#[derive(Debug, Args)]
pub struct MgmtSystem {
    #[command(subcommand)]
    pub command: Option<SystemCmd>,
}

#[derive(Debug, Subcommand)]
pub enum SystemCmd {
    /// Show berth disk usage
    Df(DfArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
}

#[derive(Debug, Args)]
pub struct MgmtManifest {
    #[command(subcommand)]
    pub command: Option<ManifestCmd>,
}

#[derive(Debug, Args)]
pub struct MgmtRegistry {
    #[command(subcommand)]
    pub command: Option<RegistryCmd>,
}

#[derive(Debug, Args)]
pub struct MgmtNetwork {
    #[command(subcommand)]
    pub command: Option<NetworkCommand>,
}

#[derive(Debug, Args)]
pub struct MgmtVolume {
    #[command(subcommand)]
    pub command: Option<VolumeCommand>,
}

const COMMON: &[&str] = &["run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search", "version", "info"];
const MANAGEMENT: &[&str] = &["container", "image", "manifest", "network", "registry", "system", "volume"];

/// docker's usage line after the command path.
fn usage_suffix(name: &str, parent: &str) -> &'static str {
    match (parent, name) {
        ("manifest", "create") => "[OPTIONS] MANIFEST_LIST MANIFEST [MANIFEST...]",
        ("manifest", "annotate") => "[OPTIONS] MANIFEST_LIST MANIFEST",
        ("manifest", "inspect") => "[OPTIONS] [MANIFEST_LIST] MANIFEST",
        ("manifest", "push") => "[OPTIONS] MANIFEST_LIST",
        ("manifest", "rm") => "MANIFEST_LIST [MANIFEST_LIST...]",
        ("registry", _) => "[OPTIONS]",
        (_, "run") | (_, "create") => "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        (_, "exec") => "[OPTIONS] CONTAINER COMMAND [ARG...]",
        (_, "ps") | (_, "ls") | (_, "images") | (_, "info") | (_, "version") | (_, "events") | (_, "df") | (_, "prune") => {
            if parent == "image" && name == "ls" || name == "images" { "[OPTIONS] [REPOSITORY[:TAG]]" } else { "[OPTIONS]" }
        }
        (_, "attach") | (_, "diff") => "[OPTIONS] CONTAINER",
        (_, "commit") => "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
        (_, "cp") => "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
        (_, "export") => "[OPTIONS] CONTAINER",
        (_, "logs") => "[OPTIONS] CONTAINER",
        (_, "port") => "CONTAINER [PRIVATE_PORT[/PROTO]]",
        (_, "rename") => "CONTAINER NEW_NAME",
        (_, "top") => "CONTAINER [ps OPTIONS]",
        (_, "stats") => "[OPTIONS] [CONTAINER...]",
        (_, "pause") | (_, "unpause") | (_, "wait") => "CONTAINER [CONTAINER...]",
        (_, "history") => "[OPTIONS] IMAGE",
        (_, "import") => "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
        (_, "load") => "[OPTIONS]",
        (_, "save") => "[OPTIONS] IMAGE [IMAGE...]",
        (_, "tag") => "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        (_, "rmi") => "[OPTIONS] IMAGE [IMAGE...]",
        ("image", "rm") | ("image", "inspect") => "[OPTIONS] IMAGE [IMAGE...]",
        (_, "inspect") => "[OPTIONS] NAME|ID [NAME|ID...]",
        (_, "pull") | (_, "push") => "[OPTIONS] NAME[:TAG|@DIGEST]",
        (_, "build") => "[OPTIONS] PATH | URL | -",
        (_, "login") | (_, "logout") => "[OPTIONS] [SERVER]",
        (_, "search") => "[OPTIONS] TERM",
        _ => "[OPTIONS] CONTAINER [CONTAINER...]",
    }
}

/// The other spellings of a command, as docker's help lists them.
fn aliases(path: &str) -> Option<&'static str> {
    let leaf = path.trim_start_matches("berth ").trim_start_matches("container ").trim_start_matches("image ");
    Some(match (path.starts_with("berth image "), leaf) {
        (true, "ls") | (false, "images") => "berth image ls, berth image list, berth images",
        (true, "rm") | (false, "rmi") => "berth image rm, berth image remove, berth rmi",
        (false, "ps") | (false, "ls") => "berth container ls, berth container list, berth container ps, berth ps",
        (false, "rm") => "berth container rm, berth container remove, berth rm",
        (true, l @ ("history" | "import" | "load" | "pull" | "push" | "save" | "tag" | "build")) => match l {
            "history" => "berth image history, berth history",
            "import" => "berth image import, berth import",
            "load" => "berth image load, berth load",
            "pull" => "berth image pull, berth pull",
            "push" => "berth image push, berth push",
            "save" => "berth image save, berth save",
            "tag" => "berth image tag, berth tag",
            _ => "berth image build, berth build",
        },
        (false, l) => match l {
            "attach" => "berth container attach, berth attach",
            "commit" => "berth container commit, berth commit",
            "cp" => "berth container cp, berth cp",
            "create" => "berth container create, berth create",
            "diff" => "berth container diff, berth diff",
            "exec" => "berth container exec, berth exec",
            "export" => "berth container export, berth export",
            "kill" => "berth container kill, berth kill",
            "logs" => "berth container logs, berth logs",
            "pause" => "berth container pause, berth pause",
            "port" => "berth container port, berth port",
            "rename" => "berth container rename, berth rename",
            "restart" => "berth container restart, berth restart",
            "run" => "berth container run, berth run",
            "start" => "berth container start, berth start",
            "stats" => "berth container stats, berth stats",
            "stop" => "berth container stop, berth stop",
            "top" => "berth container top, berth top",
            "unpause" => "berth container unpause, berth unpause",
            "update" => "berth container update, berth update",
            "wait" => "berth container wait, berth wait",
            "events" => "berth system events, berth events",
            "info" => "berth system info, berth info",
            _ => return None,
        },
        _ => return None,
    })
}

/// Make clap read flags as Go's pflag does: a flag that takes a value
/// takes the next argument whatever it looks like (`--stop-timeout -1`).
pub fn pflag_like(cmd: Command) -> Command {
    cmd.mut_args(|a| if !a.is_positional() && a.get_action().takes_values() { a.allow_hyphen_values(true) } else { a })
        .mut_subcommands(pflag_like)
}

fn list(cmd: &Command, names: &dyn Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for s in cmd.get_subcommands().filter(|s| names(s.get_name())) {
        out.push_str(&format!("  {:<11} {}\n", s.get_name(), s.get_about().map(|a| a.to_string()).unwrap_or_default()));
    }
    out
}

fn decorate(cmd: Command, path: &str, parent: &str) -> Command {
    let name = cmd.get_name().to_owned();
    let full = if path.is_empty() { "berth".to_owned() } else { format!("{path} {name}") };
    let has_subs = cmd.get_subcommands().next().is_some();
    let cmd = if has_subs && !path.is_empty() {
        let t = format!(
            "Usage:  {full} COMMAND\n\n{{about}}\n\nCommands:\n{}\nRun '{full} COMMAND --help' for more information on a command.\n",
            list(&cmd, &|_| true)
        );
        cmd.help_template(t).override_usage(format!("{full} COMMAND"))
    } else if !has_subs {
        let usage = format!("{full} {}", usage_suffix(&name, parent)).replace("berth cp [OPTIONS] SRC", &format!("{full} [OPTIONS] SRC"));
        let aliases = aliases(&full).map(|a| format!("\nAliases:\n  {a}\n")).unwrap_or_default();
        let t = format!("Usage:  {usage}\n\n{{about}}\n{aliases}\nOptions:\n{{options}}\n");
        cmd.help_template(t).override_usage(usage)
    } else {
        cmd
    };
    // docker lists flags by name
    let mut longs: Vec<String> = cmd.get_arguments().filter(|a| !a.is_positional()).map(|a| a.get_id().to_string()).collect();
    longs.sort_by_key(|id| {
        cmd.get_arguments().find(|a| a.get_id() == id.as_str()).and_then(|a| a.get_long().map(str::to_owned)).unwrap_or_else(|| id.clone())
    });
    let cmd = cmd.mut_args(|a| {
        let i = longs.iter().position(|l| l == a.get_id().as_str()).unwrap_or(usize::MAX);
        a.display_order(i)
    });
    let child_path = full.clone();
    cmd.term_width(200).mut_subcommands(|s| decorate(s, &child_path, &name))
}

/// The whole command tree, decorated.
pub fn command() -> Command {
    let cmd = pflag_like(Cli::command());
    let root_help = format!(
        "Usage:  berth [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n\nCommon Commands:\n{}\nManagement Commands:\n{}\nCommands:\n{}\nGlobal Options:\n{{options}}\n\nRun 'berth COMMAND --help' for more information on a command.\n",
        list(&cmd, &|n| COMMON.contains(&n)),
        list(&cmd, &|n| MANAGEMENT.contains(&n)),
        list(&cmd, &|n| !COMMON.contains(&n) && !MANAGEMENT.contains(&n)),
    );
    let cmd = cmd.help_template(root_help).override_usage("berth [OPTIONS] COMMAND");
    decorate(cmd, "", "")
}

/// What parsing decided when it did not give a command line to run.
#[derive(Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn parse<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> Result<Cli, Exit> {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    // The help layout costs a millisecond to build: parse without it, and
    // build it only to print help or an error.
    let plain = pflag_like(Cli::command());
    if let Ok(m) = plain.try_get_matches_from(args.clone())
        && let Ok(cli) = Cli::from_arg_matches(&m)
    {
        return Ok(cli);
    }
    let mut cmd = command();
    let m = cmd.try_get_matches_from_mut(args.clone()).map_err(|e| clap_exit(&cmd, &args, e))?;
    Cli::from_arg_matches(&m).map_err(|e| clap_exit(&cmd, &args, e))
}

/// The subcommand path the arguments name (`berth container run`): the
/// leading words that are subcommands, skipping the global flags.
fn path_from_args(root: &Command, args: &[std::ffi::OsString]) -> String {
    let mut path = vec!["berth".to_owned()];
    let mut c = root;
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        if a.starts_with('-') {
            let takes_value = !a.contains('=')
                && c.get_arguments().any(|x| {
                    x.get_action().takes_values()
                        && (x.get_long().is_some_and(|l| a == format!("--{l}")) || x.get_short().is_some_and(|s| a == format!("-{s}")))
                });
            if takes_value {
                it.next();
            }
            continue;
        }
        match c.find_subcommand(&a) {
            Some(s) => {
                path.push(s.get_name().to_owned());
                c = s;
            }
            None => break,
        }
    }
    path.join(" ")
}

/// The help text of a subcommand path (`["container"]`).
pub fn help_of(path: &[&str]) -> String {
    let mut cmd = command();
    cmd.build();
    let mut c = &cmd;
    for p in path {
        match c.find_subcommand(p) {
            Some(s) => c = s,
            None => break,
        }
    }
    docker_help(&c.clone().render_help().to_string())
}

/// clap's help in docker's dress: `--format string` (no angle brackets),
/// bool flags without their optional `[=<VALUE>]` and `[default: ...]`.
pub fn docker_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        let mut l = line.to_owned();
        while let Some(i) = l.find("[=<") {
            match l[i..].find(">]") {
                Some(j) => {
                    let pad = if l[i + j + 2..].starts_with(' ') { " ".repeat(j + 2) } else { String::new() };
                    l.replace_range(i..i + j + 2, &pad)
                }
                None => break,
            }
        }
        for d in [" [default: false]", " [default: true]"] {
            l = l.replace(d, "");
        }
        // `<string>` → `string` where the value name is docker's lower-case type
        let mut fixed = String::with_capacity(l.len());
        let mut rest = l.as_str();
        while let Some(i) = rest.find('<') {
            let Some(j) = rest[i..].find('>') else { break };
            let inner = &rest[i + 1..i + j];
            fixed.push_str(&rest[..i]);
            if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                fixed.push_str(inner);
                if rest[i + j + 1..].starts_with(' ') {
                    fixed.push_str("  ");
                }
            } else {
                fixed.push_str(&rest[i..=i + j]);
            }
            rest = &rest[i + j + 1..];
        }
        fixed.push_str(rest);
        out.push_str(fixed.trim_end());
        out.push('\n');
    }
    out
}

fn ctx_str(e: &clap::Error, k: ContextKind) -> Option<String> {
    match e.get(k)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        ContextValue::Strings(v) => v.first().cloned(),
        _ => None,
    }
}

fn find<'a>(cmd: &'a Command, path: &str) -> &'a Command {
    let mut c = cmd;
    for w in path.split_whitespace().skip(1) {
        if let Some(s) = c.find_subcommand(w) {
            c = s;
        }
    }
    c
}

/// `-m, --memory` for a flag clap names as `--memory <bytes>`.
fn flag_display(cmd: &Command, raw: &str) -> String {
    let long = raw.split_whitespace().next().unwrap_or(raw);
    let long = long.trim_start_matches('-').split('=').next().unwrap_or("");
    let long = long.split(',').next_back().unwrap_or(long).trim().trim_start_matches('-');
    match cmd.get_arguments().find(|a| a.get_long() == Some(long)) {
        Some(a) => match a.get_short() {
            Some(s) => format!("-{s}, --{long}"),
            None => format!("--{long}"),
        },
        None => raw.to_owned(),
    }
}

fn usage_line(cmd: &Command) -> String {
    format!("Usage:  {}", cmd.get_overridden_usage().map(|u| u.to_string()).unwrap_or_else(|| cmd.get_name().to_owned()))
}

fn clap_exit(root: &Command, args: &[std::ffi::OsString], e: clap::Error) -> Exit {
    let path = path_from_args(root, args);
    let cmd = find(root, &path);
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            Exit { code: 0, stdout: docker_help(&e.render().to_string()), stderr: String::new() }
        }
        ErrorKind::DisplayVersion => Exit { code: 0, stdout: version_line(), stderr: String::new() },
        ErrorKind::InvalidSubcommand => {
            let bad = ctx_str(&e, ContextKind::InvalidSubcommand).unwrap_or_default();
            let msg = if path == "berth" {
                format!("berth: unknown command: berth {bad}\n\nRun 'berth --help' for more information\n")
            } else {
                format!("berth: unknown command: {path} {bad}\n\nRun '{path} --help' for more information\n")
            };
            Exit { code: 1, stdout: String::new(), stderr: msg }
        }
        ErrorKind::MissingRequiredArgument | ErrorKind::TooFewValues => {
            let n = cmd.get_arguments().filter(|a| a.is_positional() && a.is_required_set()).count().max(1);
            let what = if n == 1 { "1 argument".to_owned() } else { format!("{n} arguments") };
            let exact = matches!(cmd.get_name(), "rename" | "tag" | "attach" | "diff" | "export" | "history" | "logs" | "cp");
            let verb = if exact { "requires" } else { "requires at least" };
            Exit {
                code: 1,
                stdout: String::new(),
                stderr: format!("berth: '{path}' {verb} {what}\n\n{}\n\nSee '{path} --help' for more information\n", usage_line(cmd)),
            }
        }
        ErrorKind::UnknownArgument => {
            let arg = ctx_str(&e, ContextKind::InvalidArg).unwrap_or_default();
            let msg = if let Some(long) = arg.strip_prefix("--") {
                format!("unknown flag: --{}", long.split('=').next().unwrap_or(long))
            } else if arg.starts_with('-') && arg.len() >= 2 {
                let c = arg.chars().nth(1).unwrap_or('-');
                format!("unknown shorthand flag: '{c}' in {arg}")
            } else {
                // A stray positional where none is taken.
                let n = cmd.get_arguments().filter(|a| a.is_positional()).count();
                return Exit {
                    code: 1,
                    stdout: String::new(),
                    stderr: format!(
                        "berth: '{path}' accepts no arguments\n\n{}\n\nSee '{path} --help' for more information\n",
                        usage_line(cmd)
                    )
                    .replace("accepts no arguments", if n == 0 { "accepts no arguments" } else { "requires fewer arguments" }),
                };
            };
            Exit { code: 125, stdout: String::new(), stderr: format!("{msg}\n\n{}\n\nRun '{path} --help' for more information\n", usage_line(cmd)) }
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue | ErrorKind::NoEquals => {
            let arg = ctx_str(&e, ContextKind::InvalidArg).unwrap_or_default();
            let val = ctx_str(&e, ContextKind::InvalidValue).unwrap_or_default();
            let reason = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| "invalid value".into());
            Exit {
                code: 125,
                stdout: String::new(),
                stderr: format!(
                    "invalid argument \"{val}\" for \"{}\" flag: {reason}\n\n{}\n\nRun '{path} --help' for more information\n",
                    flag_display(cmd, &arg),
                    usage_line(cmd)
                ),
            }
        }
        ErrorKind::ArgumentConflict | ErrorKind::TooManyValues | ErrorKind::WrongNumberOfValues => {
            let arg = ctx_str(&e, ContextKind::InvalidArg).unwrap_or_default();
            Exit {
                code: 125,
                stdout: String::new(),
                stderr: format!("flag needs an argument: {arg}\n\n{}\n\nRun '{path} --help' for more information\n", usage_line(cmd)),
            }
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("").trim_start_matches("error: ").to_owned();
            let msg = if first.contains("a value is required") {
                let arg = ctx_str(&e, ContextKind::InvalidArg).unwrap_or_default();
                format!("flag needs an argument: {}", arg.split_whitespace().next().unwrap_or(&arg))
            } else {
                first
            };
            Exit { code: 125, stdout: String::new(), stderr: format!("{msg}\n\n{}\n\nRun '{path} --help' for more information\n", usage_line(cmd)) }
        }
    }
}

pub fn version_line() -> String {
    format!("berth version {}, build {}\n", env!("CARGO_PKG_VERSION"), option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, Exit> {
        parse(std::iter::once("berth").chain(args.iter().copied()).map(Into::into))
    }

    #[test]
    fn the_tree_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn unknown_flags_exit_125_with_usage() {
        let e = p(&["run", "--foo", "busybox"]).unwrap_err();
        assert_eq!(e.code, 125);
        assert_eq!(
            e.stderr,
            "unknown flag: --foo\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n"
        );
        let e = p(&["ps", "-z"]).unwrap_err();
        assert_eq!(e.code, 125);
        assert!(e.stderr.starts_with("unknown shorthand flag: 'z' in -z\n\nUsage:  berth ps [OPTIONS]\n"), "{}", e.stderr);
    }

    #[test]
    fn bad_values_name_the_flag_like_pflag() {
        let e = p(&["run", "-m", "12x", "busybox"]).unwrap_err();
        assert_eq!(e.code, 125);
        assert!(e.stderr.starts_with("invalid argument \"12x\" for \"-m, --memory\" flag: invalid suffix: 'x'\n"), "{}", e.stderr);
        let e = p(&["container", "run", "--ulimit", "bogus=1", "busybox"]).unwrap_err();
        assert!(e.stderr.starts_with("invalid argument \"bogus=1\" for \"--ulimit\" flag: invalid ulimit type: bogus\n"), "{}", e.stderr);
        assert!(e.stderr.ends_with("Run 'berth container run --help' for more information\n"), "{}", e.stderr);
    }

    #[test]
    fn missing_arguments_and_unknown_commands_exit_1() {
        let e = p(&["rm"]).unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(
            e.stderr,
            "berth: 'berth rm' requires at least 1 argument\n\nUsage:  berth rm [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'berth rm --help' for more information\n"
        );
        let e = p(&["bogus"]).unwrap_err();
        assert_eq!((e.code, e.stderr.as_str()), (1, "berth: unknown command: berth bogus\n\nRun 'berth --help' for more information\n"));
    }

    #[test]
    fn help_reads_like_docker() {
        let e = p(&["--help"]).unwrap_err();
        assert_eq!(e.code, 0);
        assert!(e.stdout.starts_with("Usage:  berth [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n\nCommon Commands:\n  run         Create and run a new container from an image\n"), "{}", e.stdout);
        assert!(e.stdout.contains("\nManagement Commands:\n  container   Manage containers\n"));
        let e = p(&["ps", "--help"]).unwrap_err();
        assert!(e.stdout.starts_with("Usage:  berth ps [OPTIONS]\n\nList containers\n\nAliases:\n  berth container ls, berth container list, berth container ps, berth ps\n\nOptions:\n"), "{}", e.stdout);
        let e = p(&["run", "--help"]).unwrap_err();
        assert!(e.stdout.contains("-h, --hostname"), "{}", e.stdout);
    }

    #[test]
    fn go_style_flags() {
        let c = p(&["run", "-it", "--rm=false", "--sig-proxy=false", "-e", "-x", "busybox", "sh", "-c", "true"]).unwrap();
        let Some(Cmd::Run(r)) = c.command else { panic!() };
        assert!(r.flags.tty && r.flags.interactive && !r.flags.rm && !r.sig_proxy);
        assert_eq!(r.flags.env, vec!["-x"]);
        assert_eq!(r.cmdline, vec!["busybox", "sh", "-c", "true"]);
        let c = p(&["stop", "-t", "-1", "a"]).unwrap();
        assert!(matches!(c.command, Some(Cmd::Stop(_))));
    }
}
