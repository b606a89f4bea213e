//! `berth`: the docker-compatible command line for berthd.
//!
//! - [`cli`]: the command tree (clap) with docker's flags, help and parse
//!   errors; [`opts`]: flag values with docker's rules.
//! - [`client`]: the connection (bollard for plain calls, raw HTTP for the
//!   hijacked and streamed ones); [`app`]: what each command gets.
//! - [`container`], [`image`], [`system`], [`inspect`], [`later`]: the
//!   commands, one module per group, each with its error type.
//! - [`format`], [`units`], [`timefmt`]: docker's tables, templates, sizes
//!   and times.

pub mod app;
pub mod build;
pub mod cli;
pub mod client;
pub mod config;
pub mod container;
pub mod format;
pub mod image;
pub mod inspect;
pub mod later;
pub mod network;
pub mod opts;
pub mod registry;
pub mod system;
pub mod timefmt;
pub mod units;
pub mod volume;

use app::Ctx;
use cli::{Cmd, ContainerCmd, ImageCmd, SystemCmd};

/// Every command's error, with the exit code docker gives it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    System(#[from] system::SystemError),
    #[error(transparent)]
    Inspect(#[from] inspect::InspectError),
    #[error(transparent)]
    Later(#[from] later::LaterError),
    #[error(transparent)]
    Api(#[from] client::ApiError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Volume(#[from] volume::VolumeError),
    #[error(transparent)]
    Build(#[from] build::BuildCliError),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Container(e) => e.exit_code(),
            Error::Build(e) => e.exit_code(),
            _ => 1,
        }
    }
}

async fn dispatch(ctx: &Ctx, cmd: &Cmd) -> Result<(), Error> {
    use container as c;
    match cmd {
        Cmd::Run(a) => c::run(ctx, a).await?,
        Cmd::Exec(a) => c::exec(ctx, a).await?,
        Cmd::Ps(a) => c::ps(ctx, a).await?,
        Cmd::Build(a) => build::build(ctx, a).await?,
        Cmd::Pull(a) => registry::pull(ctx, a).await?,
        Cmd::Push(a) => registry::push(ctx, a).await?,
        Cmd::Images(a) => image::images(ctx, a).await?,
        Cmd::Login(a) => registry::login(ctx, a).await?,
        Cmd::Logout(a) => registry::logout(a)?,
        Cmd::Search(a) => registry::search(ctx, a).await?,
        Cmd::Version(a) => system::version(ctx, a).await?,
        Cmd::Info(a) => system::info(ctx, a).await?,
        Cmd::Container(m) => match &m.command {
            None => app::out(&cli::help_of(&["container"])),
            Some(sub) => container_cmd(ctx, sub).await?,
        },
        Cmd::Image(m) => match &m.command {
            None => app::out(&cli::help_of(&["image"])),
            Some(sub) => image_cmd(ctx, sub).await?,
        },
        Cmd::System(m) => match &m.command {
            None => app::out(&cli::help_of(&["system"])),
            Some(SystemCmd::Df(a)) => system::df(ctx, a).await?,
            Some(SystemCmd::Events(a)) => system::events(ctx, a).await?,
            Some(SystemCmd::Info(a)) => system::info(ctx, a).await?,
            Some(SystemCmd::Prune(a)) => system::prune(ctx, a).await?,
        },
        Cmd::Network(m) => match &m.command {
            None => app::out(&cli::help_of(&["network"])),
            Some(sub) => network::network(ctx, sub).await?,
        },
        Cmd::Manifest(m) => match &m.command {
            None => app::out(&cli::help_of(&["manifest"])),
            Some(sub) => registry::manifest(sub).await?,
        },
        Cmd::Registry(m) => match &m.command {
            None => app::out(&cli::help_of(&["registry"])),
            Some(sub) => registry::registry(sub)?,
        },
        Cmd::Volume(m) => match &m.command {
            None => app::out(&cli::help_of(&["volume"])),
            Some(sub) => volume::volume(ctx, sub).await?,
        },
        Cmd::Attach(a) => c::attach(ctx, a).await?,
        Cmd::Commit(a) => c::commit(ctx, a).await?,
        Cmd::Cp(a) => c::cp(ctx, a).await?,
        Cmd::Create(a) => c::create(ctx, a).await?,
        Cmd::Diff(a) => c::diff(ctx, a).await?,
        Cmd::Events(a) => system::events(ctx, a).await?,
        Cmd::Export(a) => c::export(ctx, a).await?,
        Cmd::History(a) => image::history(ctx, a).await?,
        Cmd::Import(a) => image::import(ctx, a).await?,
        Cmd::Inspect(a) => inspect::inspect(ctx, a).await?,
        Cmd::Kill(a) => c::kill(ctx, a).await?,
        Cmd::Load(a) => image::load(ctx, a).await?,
        Cmd::Logs(a) => c::logs(ctx, a).await?,
        Cmd::Pause(a) => c::pause(ctx, a).await?,
        Cmd::Port(a) => c::port(ctx, a).await?,
        Cmd::Rename(a) => c::rename(ctx, a).await?,
        Cmd::Restart(a) => c::restart(ctx, a).await?,
        Cmd::Rm(a) => c::rm(ctx, a).await?,
        Cmd::Rmi(a) => image::rmi(ctx, a).await?,
        Cmd::Save(a) => image::save(ctx, a).await?,
        Cmd::Start(a) => c::start(ctx, a).await?,
        Cmd::Stats(a) => c::stats(ctx, a).await?,
        Cmd::Stop(a) => c::stop(ctx, a).await?,
        Cmd::Tag(a) => image::tag(ctx, a).await?,
        Cmd::Top(a) => c::top(ctx, a).await?,
        Cmd::Unpause(a) => c::unpause(ctx, a).await?,
        Cmd::Update(a) => c::update(ctx, a).await?,
        Cmd::Wait(a) => c::wait(ctx, a).await?,
    }
    Ok(())
}

async fn container_cmd(ctx: &Ctx, cmd: &ContainerCmd) -> Result<(), Error> {
    use container as c;
    match cmd {
        ContainerCmd::Attach(a) => c::attach(ctx, a).await?,
        ContainerCmd::Commit(a) => c::commit(ctx, a).await?,
        ContainerCmd::Cp(a) => c::cp(ctx, a).await?,
        ContainerCmd::Create(a) => c::create(ctx, a).await?,
        ContainerCmd::Diff(a) => c::diff(ctx, a).await?,
        ContainerCmd::Exec(a) => c::exec(ctx, a).await?,
        ContainerCmd::Export(a) => c::export(ctx, a).await?,
        ContainerCmd::Inspect(a) => inspect::container_inspect(ctx, a).await?,
        ContainerCmd::Kill(a) => c::kill(ctx, a).await?,
        ContainerCmd::Logs(a) => c::logs(ctx, a).await?,
        ContainerCmd::Ls(a) => c::ps(ctx, a).await?,
        ContainerCmd::Pause(a) => c::pause(ctx, a).await?,
        ContainerCmd::Port(a) => c::port(ctx, a).await?,
        ContainerCmd::Prune(a) => c::prune(ctx, a).await?,
        ContainerCmd::Rename(a) => c::rename(ctx, a).await?,
        ContainerCmd::Restart(a) => c::restart(ctx, a).await?,
        ContainerCmd::Rm(a) => c::rm(ctx, a).await?,
        ContainerCmd::Run(a) => c::run(ctx, a).await?,
        ContainerCmd::Start(a) => c::start(ctx, a).await?,
        ContainerCmd::Stats(a) => c::stats(ctx, a).await?,
        ContainerCmd::Stop(a) => c::stop(ctx, a).await?,
        ContainerCmd::Top(a) => c::top(ctx, a).await?,
        ContainerCmd::Unpause(a) => c::unpause(ctx, a).await?,
        ContainerCmd::Update(a) => c::update(ctx, a).await?,
        ContainerCmd::Wait(a) => c::wait(ctx, a).await?,
    }
    Ok(())
}

async fn image_cmd(ctx: &Ctx, cmd: &ImageCmd) -> Result<(), Error> {
    match cmd {
        ImageCmd::Build(a) => build::build(ctx, a).await?,
        ImageCmd::History(a) => image::history(ctx, a).await?,
        ImageCmd::Import(a) => image::import(ctx, a).await?,
        ImageCmd::Inspect(a) => inspect::inspect_kind(ctx, "image", &a.images, false, a.format.as_deref()).await?,
        ImageCmd::Load(a) => image::load(ctx, a).await?,
        ImageCmd::Ls(a) => image::images(ctx, a).await?,
        ImageCmd::Prune(a) => image::prune(ctx, a).await?,
        ImageCmd::Pull(a) => registry::pull(ctx, a).await?,
        ImageCmd::Push(a) => registry::push(ctx, a).await?,
        ImageCmd::Rm(a) => image::rmi(ctx, a).await?,
        ImageCmd::Save(a) => image::save(ctx, a).await?,
        ImageCmd::Tag(a) => image::tag(ctx, a).await?,
    }
    Ok(())
}

/// Run the command line; returns the process exit code.
pub fn main<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> i32 {
    let parsed = match cli::parse(args) {
        Ok(p) => p,
        Err(exit) => {
            app::out(&exit.stdout);
            eprint!("{}", exit.stderr);
            return exit.code;
        }
    };
    if parsed.version {
        app::out(&cli::version_line());
        return 0;
    }
    let Some(cmd) = &parsed.command else {
        app::out(&cli::help_of(&[]));
        return 0;
    };
    let ctx = Ctx::new(parsed.host.clone(), parsed.config.clone());
    let rt = match tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => {
            app::errln(&format!("failed to start: {e}"));
            return 1;
        }
    };
    let result = rt.block_on(dispatch(&ctx, cmd));
    // A stdin read may still be parked in a blocking thread: don't wait.
    rt.shutdown_background();
    match result {
        Ok(()) => 0,
        Err(e) => {
            let msg = e.to_string();
            if !msg.is_empty() {
                app::errln(&msg);
            }
            e.exit_code()
        }
    }
}
