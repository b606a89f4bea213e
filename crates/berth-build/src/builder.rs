//! The builder: a planned Dockerfile run stage by stage into images, as
//! docker's classic builder does: every step commits an image (RUN, COPY,
//! ADD and a WORKDIR that creates its directory commit a layer; the other
//! instructions only a config and an `empty_layer` history entry), and a
//! step whose cache key (parent image + instruction as expanded + content
//! checksums + the build args it sees) was built before is reused.
//!
//! Stages the target does not need are skipped; the needed ones run in
//! parallel threads as soon as the stages they use are built, and their
//! output is streamed in stage order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

use berth_image::digest::Digest;
use berth_image::model::{ContainerConfig, Descriptor, History, ImageConfig, RootFs, media};
use berth_image::reference::Reference;
use serde_json::json;

use crate::exec::{ExecError, Host, RunSpec, View, Workspace};
use crate::expand;
use crate::fsops::{self, Attrs, FsError};
use crate::instruction::{CmdForm, CopySpec, HealthSpec, Instruction, Plan, Stage, Step};
use crate::parser::ParseError;

/// Build args docker passes to RUN without an ARG declaring them.
pub const PROXY_ARGS: &[&str] =
    &["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"];

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What `docker build` (and `POST /build`) asks for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Dockerfile path inside the context.
    pub dockerfile: String,
    pub tags: Vec<String>,
    /// `--build-arg k=v` (None: `--build-arg k` with no value, from env).
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub cache_from: Vec<String>,
    pub network: Option<String>,
    pub platform: Option<String>,
    /// `--rm=false` keeps nothing here (RUN containers are not daemon
    /// containers); recorded for the output docker prints.
    pub rm: bool,
    pub force_rm: bool,
    pub quiet: bool,
}

/// What a build streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Text for the `stream` field.
    Stream(String),
    /// The built image's ID (the `aux` message).
    Aux(String),
}

/// Why a build failed. Messages follow docker's classic builder.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("Dockerfile parse error line {line}: {source}")]
    Expand { line: usize, source: expand::ExpandError },
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
    #[error("failed to reach build target {0} in Dockerfile")]
    Target(String),
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("{keyword} failed: {message}")]
    Copy { keyword: String, message: String },
    #[error("Dockerfile line {line}: {message}")]
    Step { line: usize, message: String },
    #[error("{0}")]
    Image(String),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Fs(#[from] FsError),
}

impl BuildError {
    /// Bad input from the user (a 400 before the stream starts) rather than
    /// a failure while building.
    pub fn is_input(&self) -> bool {
        matches!(self, BuildError::Parse(_) | BuildError::NoDockerfile(_) | BuildError::Target(_))
    }
}

fn image_err(e: impl std::fmt::Display) -> BuildError {
    BuildError::Image(e.to_string())
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: Digest,
    pub tags: Vec<String>,
}

/// A stage's state between steps.
#[derive(Clone)]
struct State {
    image: Option<Digest>,
    config: ImageConfig,
    layers: Vec<Descriptor>,
    /// ARGs in scope, with values.
    args: Vec<(String, String)>,
    cmd_set: bool,
}

impl State {
    fn run_config(&mut self) -> &mut ContainerConfig {
        self.config.config.get_or_insert_with(ContainerConfig::default)
    }
    fn env(&self) -> Vec<String> {
        self.config.config.as_ref().and_then(|c| c.env.clone()).unwrap_or_default()
    }
    /// Variables for substitution: args, then env (env wins).
    fn vars(&self) -> Vec<(String, String)> {
        let mut v = self.args.clone();
        for e in self.env() {
            let (k, val) = e.split_once('=').unwrap_or((&e, ""));
            v.push((k.to_owned(), val.to_owned()));
        }
        v
    }
    fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }
    fn top_layer(&self) -> Option<Digest> {
        berth_image::layer::chain_ids_of(&self.config.rootfs.diff_ids).pop()
    }
    fn workdir(&self) -> String {
        self.config.config.as_ref().map(|c| c.working_dir.clone()).filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into())
    }
    fn user(&self) -> String {
        self.config.config.as_ref().map(|c| c.user.clone()).unwrap_or_default()
    }
}

/// Stage results other stages wait on.
#[derive(Default)]
struct Results {
    done: Mutex<HashMap<usize, Option<Digest>>>,
    cv: Condvar,
}

impl Results {
    fn set(&self, i: usize, v: Option<Digest>) {
        self.done.lock().unwrap().insert(i, v);
        self.cv.notify_all();
    }
    fn wait(&self, i: usize) -> Option<Digest> {
        let mut g = self.done.lock().unwrap();
        loop {
            if let Some(v) = g.get(&i) {
                return v.clone();
            }
            g = self.cv.wait(g).unwrap();
        }
    }
}

/// One build over a context directory.
pub struct Build<'a> {
    host: &'a Host,
    context: &'a Path,
    opts: &'a BuildOptions,
    plan: Plan,
    meta: Vec<(String, String)>,
    results: Results,
    errors: Mutex<HashMap<usize, BuildError>>,
    consumed: Mutex<HashSet<String>>,
}

fn short(d: &Digest) -> &str {
    d.short()
}

fn parse_duration(s: &str) -> Option<i64> {
    // Go's time.ParseDuration for the units HEALTHCHECK takes.
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest == "0" {
        return Some(0);
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * mult;
    }
    Some(total as i64)
}

impl<'a> Build<'a> {
    /// Read and plan the Dockerfile in the context.
    pub fn new(host: &'a Host, context: &'a Path, opts: &'a BuildOptions, dockerfile_text: Option<String>) -> Result<Build<'a>, BuildError> {
        let name = if opts.dockerfile.is_empty() { "Dockerfile" } else { &opts.dockerfile };
        let text = match dockerfile_text {
            Some(t) => t,
            None => {
                let rel = fsops::clean_rel(name).ok_or_else(|| BuildError::NoDockerfile(name.to_owned()))?;
                // docker also takes a lower-case `dockerfile` by default.
                std::fs::read_to_string(context.join(&rel))
                    .or_else(|e| if rel == "Dockerfile" { std::fs::read_to_string(context.join("dockerfile")) } else { Err(e) })
                    .map_err(|_| BuildError::NoDockerfile(name.to_owned()))?
            }
        };
        let plan = crate::instruction::parse_plan(&text)?;
        let mut meta = Vec::new();
        for (k, default) in &plan.meta_args {
            let v = match opts.build_args.get(k) {
                Some(Some(v)) => Some(v.clone()),
                _ => match default {
                    Some(d) => Some(expand::word(d, plan.escape, &meta).map_err(|source| BuildError::Expand { line: 1, source })?),
                    None => None,
                },
            };
            if let Some(v) = v {
                meta.push((k.clone(), v));
            }
        }
        let mut consumed = HashSet::new();
        consumed.extend(plan.meta_args.iter().map(|(k, _)| k.clone()));
        Ok(Build { host, context, opts, plan, meta, results: Results::default(), errors: Mutex::default(), consumed: Mutex::new(consumed) })
    }

    fn stage_by_name(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.plan.stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str())).or_else(|| {
            name.parse::<usize>().ok().filter(|i| *i < self.plan.stages.len())
        })
    }

    fn base_name(&self, stage: &Stage) -> Result<String, BuildError> {
        match &stage.from.inst {
            Instruction::From { image, .. } => {
                expand::word(image, self.plan.escape, &self.meta).map_err(|source| BuildError::Expand { line: stage.from.node.line, source })
            }
            _ => unreachable!("a stage starts with FROM"),
        }
    }

    /// Stages a stage uses (its base, COPY --from).
    fn deps(&self, stage: &Stage) -> Result<Vec<usize>, BuildError> {
        let mut out = Vec::new();
        let base = self.base_name(stage)?;
        if let Some(i) = self.stage_by_name(&base).filter(|i| *i < stage.index && !base.chars().all(|c| c.is_ascii_digit())) {
            out.push(i);
        }
        for s in &stage.steps {
            if let Instruction::Copy(c) = &s.inst
                && let Some(f) = &c.from {
                    let f = expand::word(f, self.plan.escape, &self.meta).unwrap_or_else(|_| f.clone());
                    match self.stage_by_name(&f) {
                        Some(i) if i == stage.index => {
                            return Err(BuildError::Step { line: s.node.line, message: format!("circular dependency detected on stage: {f}") });
                        }
                        Some(i) => out.push(i),
                        None => {}
                    }
                }
        }
        Ok(out)
    }

    /// The target stage and every stage it needs, in order.
    fn needed(&self) -> Result<Vec<usize>, BuildError> {
        let target = match &self.opts.target {
            Some(t) if !t.is_empty() => self.stage_by_name(t).ok_or_else(|| BuildError::Target(t.clone()))?,
            _ => self.plan.stages.len() - 1,
        };
        let mut need = HashSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if need.insert(i) {
                todo.extend(self.deps(&self.plan.stages[i])?);
            }
        }
        let mut v: Vec<usize> = need.into_iter().collect();
        v.sort();
        Ok(v)
    }

    /// What can be checked before any step runs: the target exists, the
    /// tags are valid references, every FROM expands.
    pub fn check(&self) -> Result<(), BuildError> {
        for s in &self.plan.stages {
            self.base_name(s)?;
        }
        self.needed()?;
        for t in &self.opts.tags {
            tag_reference(t)?;
        }
        Ok(())
    }

    /// Run the build; events go to `out` in order. Tags are set only when
    /// every step succeeded.
    pub fn run(&self, out: &(dyn Fn(Event) + Sync)) -> Result<Built, BuildError> {
        let needed = self.needed()?;
        let target = *needed.last().expect("the target is needed");
        let label_step = !self.opts.labels.is_empty();
        let total: usize = needed.iter().map(|i| 1 + self.plan.stages[*i].steps.len()).sum::<usize>() + usize::from(label_step);
        // Step numbers of each stage's FROM.
        let mut offsets = HashMap::new();
        let mut n = 1;
        for i in &needed {
            offsets.insert(*i, n);
            n += 1 + self.plan.stages[*i].steps.len();
        }
        let tags: Vec<Reference> = self
            .opts
            .tags
            .iter()
            .map(|t| tag_reference(t))
            .collect::<Result<_, _>>()?;
        std::thread::scope(|scope| {
            let mut receivers = Vec::new();
            for &i in &needed {
                let (tx, rx) = mpsc::channel::<Event>();
                receivers.push(rx);
                let offset = offsets[&i];
                let labels = i == target && label_step;
                scope.spawn(move || {
                    let emit = |e: Event| {
                        let _ = tx.send(e);
                    };
                    match self.build_stage(i, offset, total, labels, &emit) {
                        Ok(id) => self.results.set(i, Some(id)),
                        Err(e) => {
                            self.errors.lock().unwrap().insert(i, e);
                            self.results.set(i, None);
                        }
                    }
                });
            }
            // Stream each stage's output in order; a stage's output ends
            // when its thread drops the sender.
            for rx in receivers {
                for e in rx {
                    out(e);
                }
            }
        });
        let mut last = None;
        for &i in &needed {
            last = self.results.done.lock().unwrap().get(&i).cloned().flatten();
            if last.is_none() {
                return Err(self.take_error(i));
            }
        }
        let id = last.ok_or_else(|| BuildError::Image("No image was generated. Is your Dockerfile empty?".into()))?;
        let unused: Vec<String> = {
            let consumed = self.consumed.lock().unwrap();
            self.opts.build_args.keys().filter(|k| !consumed.contains(*k) && !PROXY_ARGS.contains(&k.as_str())).cloned().collect()
        };
        if !unused.is_empty() {
            out(Event::Stream(format!("[Warning] One or more build-args [{}] were not consumed\n", unused.join(" "))));
        }
        out(Event::Aux(id.to_string()));
        out(Event::Stream(format!("Successfully built {}\n", short(&id))));
        for t in &tags {
            self.host.images.set_reference(t, &id).map_err(image_err)?;
            out(Event::Stream(format!("Successfully tagged {}\n", t.familiar())));
        }
        Ok(Built { id, tags: tags.iter().map(|t| t.to_string()).collect() })
    }

    fn take_error(&self, i: usize) -> BuildError {
        self.errors.lock().unwrap().remove(&i).unwrap_or_else(|| BuildError::Image(format!("stage {i} failed")))
    }

    fn cache_path(&self, key: &str) -> PathBuf {
        self.host.images.root().join("build-cache").join(key)
    }

    fn key(&self, st: &State, text: &str) -> String {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(st.image.as_ref().map(|d| d.to_string()).unwrap_or_else(|| "scratch".into()).as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        format!("{:x}", h.finalize())
    }

    /// Images `--cache-from` trusts: the named images and their parents.
    fn trusted(&self, id: &Digest) -> bool {
        self.opts.cache_from.iter().any(|name| {
            let mut cur = self.host.images.resolve(name).ok();
            while let Some(c) = cur {
                if &c == id {
                    return true;
                }
                cur = self.host.images.image(&c).ok().and_then(|i| i.record.parent);
            }
            false
        })
    }

    /// A cached result for `key`, adopted into the state.
    fn cached(&self, st: &mut State, key: &str, emit: &dyn Fn(Event)) -> bool {
        if self.opts.no_cache {
            return false;
        }
        let Some(id) = std::fs::read_to_string(self.cache_path(key)).ok().and_then(|s| s.trim().parse::<Digest>().ok()) else {
            return false;
        };
        let Ok(img) = self.host.images.image(&id) else { return false };
        if !self.opts.cache_from.is_empty() && !self.trusted(&id) {
            return false;
        }
        emit(Event::Stream(format!(" ---> Using cache\n ---> {}\n", short(&id))));
        st.image = Some(id);
        st.config = img.config;
        st.layers = img.manifest.layers;
        true
    }

    /// Commit the state (plus a layer) as the step's image.
    fn commit(&self, st: &mut State, created_by: String, layer: Option<(Digest, u64)>, key: &str, emit: &dyn Fn(Event)) -> Result<(), BuildError> {
        let now = berth_image::model::now_rfc3339();
        let mut cfg = st.config.clone();
        cfg.created = Some(now.clone());
        cfg.container = None;
        cfg.container_config = None;
        cfg.docker_version = None;
        if cfg.rootfs.kind.is_empty() {
            cfg.rootfs.kind = "layers".into();
        }
        cfg.history.push(History { created: Some(now), created_by, author: cfg.author.clone(), comment: String::new(), empty_layer: layer.is_none() });
        let mut layers = st.layers.clone();
        if let Some((d, size)) = layer {
            cfg.rootfs.diff_ids.push(d.clone());
            layers.push(Descriptor::new(media::OCI_LAYER, d, size));
        }
        let id = self.host.images.add_image(&cfg.to_bytes(), &layers, None, st.image.clone()).map_err(image_err)?;
        let p = self.cache_path(key);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| BuildError::Image(format!("build cache {}: {e}", dir.display())))?;
        }
        berth_sys::fs::write_replace(&p, id.to_string().as_bytes()).map_err(|e| BuildError::Image(format!("build cache {}: {e}", p.display())))?;
        emit(Event::Stream(format!(" ---> {}\n", short(&id))));
        st.image = Some(id);
        st.config = cfg;
        st.layers = layers;
        Ok(())
    }

    /// A metadata-only step: config already changed in `st`.
    fn meta(&self, st: &mut State, before: &State, comment: &str, emit: &dyn Fn(Event)) -> Result<(), BuildError> {
        let key = self.key(before, &format!("nop {comment}"));
        let mut probe = before.clone();
        if self.cached(&mut probe, &key, emit) {
            probe.args = st.args.clone();
            probe.cmd_set = st.cmd_set;
            *st = probe;
            return Ok(());
        }
        let created_by = format!("{} #(nop)  {comment}", st.shell().join(" "));
        self.commit(st, created_by, None, &key, emit)
    }

    /// A FROM's `--platform`, or the build's.
    fn from_platform(&self, stage: &Stage) -> Result<Option<String>, BuildError> {
        let line = stage.from.node.line;
        Ok(match &stage.from.inst {
            Instruction::From { platform: Some(p), .. } => {
                Some(expand::word(p, self.plan.escape, &self.meta).map_err(|source| BuildError::Expand { line, source })?)
            }
            _ => self.opts.platform.clone().filter(|p| !p.is_empty()),
        })
    }

    /// An image by name: the local one, or pulled when it is missing or
    /// `pull` asks for a fresh copy (`--pull`), as docker's classic builder
    /// does. Without a puller only local images are found.
    fn image(&self, name: &str, platform: Option<&str>, pull: bool, line: usize, context: &str, emit: &dyn Fn(Event)) -> Result<Digest, BuildError> {
        let local = self.host.images.resolve(name).ok();
        if let Some(id) = &local
            && !pull
        {
            return Ok(id.clone());
        }
        let Some(puller) = &self.host.puller else {
            return local.ok_or_else(|| BuildError::Step { line, message: format!("{context}No such image: {name}") });
        };
        puller.pull(name, platform, &|l| emit(Event::Stream(l))).map_err(|m| BuildError::Step { line, message: format!("{context}{m}") })?;
        self.host.images.resolve(name).map_err(|_| BuildError::Step { line, message: format!("{context}No such image: {name}") })
    }

    fn base_state(&self, stage: &Stage, emit: &dyn Fn(Event)) -> Result<State, BuildError> {
        let line = stage.from.node.line;
        let name = self.base_name(stage)?;
        // RUN steps execute here, so a stage can only be of this host's
        // platform.
        let platform = self.from_platform(stage)?;
        if let Some(p) = &platform {
            let host = berth_image::model::host_platform();
            let want = format!("{}/{}", host.os, host.architecture);
            if !(*p == want || p.starts_with(&format!("{want}/"))) {
                return Err(BuildError::Step { line, message: format!("platform {p} is not supported here (this host is {want})") });
            }
        }
        let id = if let Some(j) = self.stage_by_name(&name).filter(|j| *j < stage.index && !name.chars().all(|c| c.is_ascii_digit())) {
            Some(self.results.wait(j).ok_or_else(|| BuildError::Step { line, message: format!("stage {name} failed") })?)
        } else if name.eq_ignore_ascii_case("scratch") {
            None
        } else {
            Some(self.image(&name, platform.as_deref(), self.opts.pull, line, "", emit)?)
        };
        match id {
            Some(id) => {
                let img = self.host.images.image(&id).map_err(image_err)?;
                Ok(State { image: Some(id), config: img.config, layers: img.manifest.layers, args: Vec::new(), cmd_set: false })
            }
            None => {
                let p = berth_image::model::host_platform();
                let config = ImageConfig {
                    architecture: p.architecture,
                    os: p.os,
                    variant: p.variant,
                    config: Some(ContainerConfig { env: Some(vec![format!("PATH={DEFAULT_PATH}")]), ..Default::default() }),
                    rootfs: RootFs { kind: "layers".into(), diff_ids: Vec::new() },
                    ..Default::default()
                };
                Ok(State { image: None, config, layers: Vec::new(), args: Vec::new(), cmd_set: false })
            }
        }
    }

    fn build_stage(&self, i: usize, offset: usize, total: usize, labels: bool, emit: &dyn Fn(Event)) -> Result<Digest, BuildError> {
        let stage = &self.plan.stages[i];
        emit(Event::Stream(format!("Step {offset}/{total} : {}\n", stage.from.node.original)));
        let mut st = self.base_state(stage, emit)?;
        if let Some(id) = &st.image {
            emit(Event::Stream(format!(" ---> {}\n", short(id))));
        }
        let triggers = st.config.config.as_mut().and_then(|c| c.on_build.take()).unwrap_or_default();
        if !triggers.is_empty() {
            emit(Event::Stream(format!("# Executing {} build trigger{}\n", triggers.len(), if triggers.len() == 1 { "" } else { "s" })));
            for t in &triggers {
                let df = crate::parser::parse(t).map_err(|e| BuildError::Step { line: stage.from.node.line, message: format!("ONBUILD trigger {t:?}: {}", e.message) })?;
                let node = df.nodes[0].clone();
                let inst = crate::instruction::instruction(&node, self.plan.escape)?;
                self.step(&mut st, &Step { node, inst }, emit)?;
            }
        }
        let mut n = offset + 1;
        for step in &stage.steps {
            emit(Event::Stream(format!("Step {n}/{total} : {}\n", step.node.original)));
            self.step(&mut st, step, emit)?;
            n += 1;
        }
        if labels {
            let text = format!(
                "LABEL {}",
                self.opts.labels.iter().map(|(k, v)| format!("{}={}", quote(k), quote(v))).collect::<Vec<_>>().join(" ")
            );
            emit(Event::Stream(format!("Step {n}/{total} : {text}\n")));
            let before = st.clone();
            let labels = st.run_config().labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in &self.opts.labels {
                labels.insert(k.clone(), v.clone());
            }
            self.meta(&mut st, &before, &text, emit)?;
        }
        st.image.ok_or_else(|| BuildError::Image("No image was generated. Is your Dockerfile empty?".into()))
    }

    fn step(&self, st: &mut State, step: &Step, emit: &dyn Fn(Event)) -> Result<(), BuildError> {
        let line = step.node.line;
        let esc = self.plan.escape;
        let vars = st.vars();
        let ex = |s: &str| expand::word(s, esc, &vars).map_err(|source| BuildError::Expand { line, source });
        let before = st.clone();
        match &step.inst {
            Instruction::From { .. } => unreachable!("FROM starts a stage"),
            Instruction::Run { cmd, heredocs, network } => self.run_step(st, step, cmd, heredocs, network.as_deref(), emit),
            Instruction::Copy(c) => self.copy_step(st, step, c, emit),
            Instruction::Env(kvs) => {
                let mut parts = Vec::new();
                for (k, v) in kvs {
                    let k = ex(k)?;
                    let v = ex(v)?;
                    let env = st.run_config().env.get_or_insert_with(Vec::new);
                    let entry = format!("{k}={v}");
                    match env.iter_mut().find(|e| e.split('=').next() == Some(k.as_str())) {
                        Some(e) => *e = entry.clone(),
                        None => env.push(entry.clone()),
                    }
                    parts.push(entry);
                }
                self.meta(st, &before, &format!("ENV {}", parts.join(" ")), emit)
            }
            Instruction::Arg(args) => {
                let mut parts = Vec::new();
                for (k, default) in args {
                    self.consumed.lock().unwrap().insert(k.clone());
                    let value = match self.opts.build_args.get(k) {
                        Some(Some(v)) => Some(v.clone()),
                        _ => match default {
                            Some(d) => Some(ex(d)?),
                            None => self.meta.iter().find(|(m, _)| m == k).map(|(_, v)| v.clone()),
                        },
                    };
                    st.args.retain(|(a, _)| a != k);
                    if let Some(v) = value {
                        st.args.push((k.clone(), v));
                    }
                    parts.push(match default {
                        Some(d) => format!("{k}={d}"),
                        None => k.clone(),
                    });
                }
                self.meta(st, &before, &format!("ARG {}", parts.join(" ")), emit)
            }
            Instruction::Cmd(form) => {
                let v = self.argv(st, form);
                let text = format!("CMD {}", go_list(&v));
                st.run_config().cmd = Some(v);
                st.cmd_set = true;
                self.meta(st, &before, &text, emit)
            }
            Instruction::Entrypoint(form) => {
                let v = self.argv(st, form);
                let text = format!("ENTRYPOINT {}", go_list(&v));
                let cmd_set = st.cmd_set;
                let rc = st.run_config();
                rc.entrypoint = Some(v);
                if !cmd_set {
                    rc.cmd = None;
                }
                self.meta(st, &before, &text, emit)
            }
            Instruction::Label(kvs) => {
                let mut parts = Vec::new();
                for (k, v) in kvs {
                    let (k, v) = (ex(k)?, ex(v)?);
                    parts.push(format!("{}={}", quote(&k), quote(&v)));
                    st.run_config().labels.get_or_insert_with(BTreeMap::new).insert(k, v);
                }
                self.meta(st, &before, &format!("LABEL {}", parts.join(" ")), emit)
            }
            Instruction::Expose(ports) => {
                let mut list = Vec::new();
                for p in ports {
                    for w in expand::words(p, esc, &vars).map_err(|source| BuildError::Expand { line, source })? {
                        list.extend(expand_ports(&w).map_err(|message| BuildError::Step { line, message })?);
                    }
                }
                let map = st.run_config().exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in &list {
                    map.insert(p.clone(), json!({}));
                }
                self.meta(st, &before, &format!("EXPOSE {}", list.join(" ")), emit)
            }
            Instruction::Volume(vols) => {
                let mut list = Vec::new();
                for v in vols {
                    let v = ex(v)?;
                    if v.trim().is_empty() {
                        return Err(BuildError::Step { line, message: "VOLUME specified can not be an empty string".into() });
                    }
                    list.push(v);
                }
                let map = st.run_config().volumes.get_or_insert_with(BTreeMap::new);
                for v in &list {
                    map.insert(v.clone(), json!({}));
                }
                self.meta(st, &before, &format!("VOLUME [{}]", list.join(" ")), emit)
            }
            Instruction::User(u) => {
                let u = ex(u)?;
                st.run_config().user = u.clone();
                self.meta(st, &before, &format!("USER {u}"), emit)
            }
            Instruction::Workdir(w) => {
                let w = ex(w)?;
                let abs = if w.starts_with('/') { w.clone() } else { format!("{}/{w}", st.workdir()) };
                let abs = format!("/{}", crate::ignore::clean(&abs));
                st.run_config().working_dir = abs.clone();
                let comment = format!("WORKDIR {abs}");
                let key = self.key(&before, &comment);
                let mut probe = before.clone();
                if self.cached(&mut probe, &key, emit) {
                    probe.args = st.args.clone();
                    probe.cmd_set = st.cmd_set;
                    *st = probe;
                    return Ok(());
                }
                let ws = Workspace::open(self.host, st.top_layer().as_ref())?;
                // Created for the current USER, as BuildKit does.
                let (uid, gid, _) = self.user_ids(ws.rootfs(), &st.user()).map_err(|e| BuildError::Step { line, message: e.to_string() })?;
                fsops::mkdir_all(ws.rootfs(), &abs, Some((uid, gid)))?;
                let created_by = format!("{} #(nop)  {comment}", st.shell().join(" "));
                if ws.changed()? {
                    let layer = ws.commit()?;
                    self.commit(st, created_by, Some(layer), &key, emit)
                } else {
                    drop(ws);
                    self.commit(st, created_by, None, &key, emit)
                }
            }
            Instruction::Shell(v) => {
                st.run_config().shell = Some(v.clone());
                self.meta(st, &before, &format!("SHELL {}", go_list(v)), emit)
            }
            Instruction::StopSignal(s) => {
                let s = ex(s)?;
                if !valid_signal(&s) {
                    return Err(BuildError::Step { line, message: format!("Invalid signal: {s}") });
                }
                st.run_config().stop_signal = Some(s.clone());
                self.meta(st, &before, &format!("STOPSIGNAL {s}"), emit)
            }
            Instruction::Onbuild(t) => {
                let (kw, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
                let trigger = format!("{} {}", kw.to_ascii_uppercase(), rest.trim());
                st.run_config().on_build.get_or_insert_with(Vec::new).push(trigger.clone());
                self.meta(st, &before, &format!("ONBUILD {trigger}"), emit)
            }
            Instruction::Maintainer(m) => {
                st.config.author = ex(m)?;
                self.meta(st, &before, &format!("MAINTAINER {}", st.config.author), emit)
            }
            Instruction::Healthcheck(h) => {
                let v = self.health(st, h).map_err(|message| BuildError::Step { line, message })?;
                st.run_config().healthcheck = Some(v);
                self.meta(st, &before, &step.node.original, emit)
            }
        }
    }

    fn health(&self, st: &State, h: &HealthSpec) -> Result<serde_json::Value, String> {
        let Some(cmd) = &h.cmd else { return Ok(json!({"Test": ["NONE"]})) };
        let test: Vec<String> = match cmd {
            CmdForm::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
            CmdForm::Exec(v) => std::iter::once("CMD".to_owned()).chain(v.iter().cloned()).collect(),
        };
        let _ = st;
        let mut v = json!({"Test": test});
        for (field, val, name) in [
            ("Interval", &h.interval, "interval"),
            ("Timeout", &h.timeout, "timeout"),
            ("StartPeriod", &h.start_period, "start-period"),
            ("StartInterval", &h.start_interval, "start-interval"),
        ] {
            if let Some(s) = val {
                let d = parse_duration(s).ok_or_else(|| format!("time: invalid duration \"{s}\""))?;
                if d != 0 && d < 1_000_000 {
                    return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
                }
                v[field] = json!(d);
            }
        }
        if let Some(r) = &h.retries {
            let n: i64 = r.parse().map_err(|_| format!("invalid value for retries: {r}"))?;
            if n < 0 {
                return Err("--retries cannot be negative".into());
            }
            v["Retries"] = json!(n);
        }
        Ok(v)
    }

    fn argv(&self, st: &State, form: &CmdForm) -> Vec<String> {
        match form {
            CmdForm::Exec(v) => v.clone(),
            CmdForm::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    fn user_ids(&self, rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>), BuildError> {
        if user.is_empty() {
            return Ok((0, 0, Vec::new()));
        }
        Ok(fsops::resolve_user(rootfs, user)?)
    }

    fn run_step(
        &self,
        st: &mut State,
        step: &Step,
        cmd: &CmdForm,
        heredocs: &[crate::parser::Heredoc],
        network: Option<&str>,
        emit: &dyn Fn(Event),
    ) -> Result<(), BuildError> {
        let argv = match cmd {
            CmdForm::Shell(s) if !heredocs.is_empty() => {
                let mut v = st.shell();
                if heredocs.len() == 1 && s.trim().trim_start_matches("<<-").trim_start_matches("<<").trim_matches(['"', '\'']) == heredocs[0].name {
                    v.push(heredocs[0].content.clone());
                } else {
                    let mut script = s.clone();
                    for h in heredocs {
                        script.push('\n');
                        script.push_str(&h.content);
                        script.push_str(&h.name);
                    }
                    v.push(script);
                }
                v
            }
            other => self.argv(st, other),
        };
        let env = st.env();
        let env_keys: HashSet<String> = env.iter().map(|e| e.split('=').next().unwrap_or("").to_owned()).collect();
        let arg_env: Vec<String> = st.args.iter().filter(|(k, _)| !env_keys.contains(k)).map(|(k, v)| format!("{k}={v}")).collect();
        let declared: HashSet<&str> = st.args.iter().map(|(k, _)| k.as_str()).collect();
        let proxies: Vec<String> = self
            .opts
            .build_args
            .iter()
            .filter(|(k, v)| PROXY_ARGS.contains(&k.as_str()) && !declared.contains(k.as_str()) && v.is_some())
            .map(|(k, v)| format!("{k}={}", v.clone().unwrap_or_default()))
            .collect();
        let created_by = if arg_env.is_empty() {
            argv.join(" ")
        } else {
            format!("|{} {} {}", arg_env.len(), arg_env.join(" "), argv.join(" "))
        };
        let key = self.key(st, &format!("run {created_by}"));
        if self.cached(st, &key, emit) {
            return Ok(());
        }
        let ws = Workspace::open(self.host, st.top_layer().as_ref())?;
        emit(Event::Stream(format!(" ---> Running in {}\n", &ws.id[..12])));
        let (uid, gid, additional_gids) = self.user_ids(ws.rootfs(), &st.user()).map_err(|e| BuildError::Step { line: step.node.line, message: e.to_string() })?;
        let mut full_env = env.clone();
        if !env_keys.contains("PATH") {
            full_env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        full_env.extend(arg_env.iter().cloned());
        full_env.extend(proxies);
        let spec = RunSpec {
            args: argv.clone(),
            env: full_env,
            cwd: st.workdir(),
            uid,
            gid,
            additional_gids,
            // RUN --network=default: the build's own network mode.
            network: network.filter(|n| *n != "default").map(str::to_owned).or_else(|| self.opts.network.clone()),
        };
        let mut pending = Vec::new();
        let code = ws.run(&spec, &mut |chunk: &[u8]| {
            pending.extend_from_slice(chunk);
            // Send whole UTF-8 text; keep a split character for the next chunk.
            let valid = match std::str::from_utf8(&pending) {
                Ok(_) => pending.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => pending.len(),
            };
            if valid > 0 {
                let text: Vec<u8> = pending.drain(..valid).collect();
                emit(Event::Stream(String::from_utf8_lossy(&text).into_owned()));
            }
        })?;
        if !pending.is_empty() {
            emit(Event::Stream(String::from_utf8_lossy(&pending).into_owned()));
        }
        if code != 0 {
            // docker keeps a failed step's container unless --force-rm.
            if self.opts.force_rm {
                emit(Event::Stream(format!("Removing intermediate container {}\n", &ws.id[..12])));
            }
            return Err(BuildError::RunFailed { command: argv.join(" "), code });
        }
        let id = ws.id[..12].to_owned();
        let layer = ws.commit()?;
        if self.opts.rm || self.opts.force_rm {
            emit(Event::Stream(format!("Removing intermediate container {id}\n")));
        }
        self.commit(st, created_by, Some(layer), &key, emit)
    }

    fn copy_step(&self, st: &mut State, step: &Step, c: &CopySpec, emit: &dyn Fn(Event)) -> Result<(), BuildError> {
        let line = step.node.line;
        let keyword = if c.add { "ADD" } else { "COPY" };
        let fail = |message: String| BuildError::Copy { keyword: keyword.to_owned(), message };
        let vars = st.vars();
        let esc = self.plan.escape;
        let ex = |s: &str| expand::word(s, esc, &vars).map_err(|source| BuildError::Expand { line, source });
        let dest = ex(&c.dest)?;
        let chmod = match &c.chmod {
            Some(m) => Some(u32::from_str_radix(&ex(m)?, 8).map_err(|_| BuildError::Step { line, message: format!("invalid chmod format: {m}") })?),
            None => None,
        };
        // Where sources come from: another stage, an image or the context.
        let view;
        let from_root: PathBuf = match &c.from {
            Some(f) => {
                let f = ex(f)?;
                let id = match self.stage_by_name(&f) {
                    Some(j) => self.results.wait(j).ok_or_else(|| BuildError::Step { line, message: format!("stage {f} failed") })?,
                    None => self.image(&f, self.opts.platform.as_deref().filter(|p| !p.is_empty()), false, line, &format!("invalid from flag value {f}: "), emit)?,
                };
                let img = self.host.images.image(&id).map_err(image_err)?;
                view = View::open(self.host, img.top_layer().as_ref())?;
                view.path().to_owned()
            }
            None => self.context.to_owned(),
        };
        let mut sources: Vec<(String, PathBuf, bool)> = Vec::new(); // (rel, path, extract)
        let mut downloads = Vec::new();
        let mut glob = false;
        for raw in &c.srcs {
            let src = ex(raw)?;
            if c.add && (src.starts_with("http://") || src.starts_with("https://")) {
                let (name, data) = crate::fetch::get(&src).map_err(|e| fail(e.to_string()))?;
                downloads.push((name, data));
                continue;
            }
            let rel = fsops::clean_rel(&src).ok_or_else(|| fail(format!("forbidden path outside the build context: {src} ()")))?;
            if rel.contains(['*', '?', '[']) {
                glob = true;
                let matches = glob_walk(&from_root, &rel);
                for m in matches {
                    let p = fsops::scoped(&from_root, &m, false)?;
                    sources.push((m, p, c.add && c.from.is_none()));
                }
                continue;
            }
            let p = fsops::scoped(&from_root, &rel, true)?;
            if std::fs::symlink_metadata(&p).is_err() {
                return Err(fail(format!("file not found in build context or excluded by .dockerignore: stat {rel}: file does not exist")));
            }
            sources.push((rel, p, c.add && c.from.is_none()));
        }
        if sources.is_empty() && downloads.is_empty() && c.heredocs.is_empty() {
            return Err(fail("no source files were specified".into()));
        }
        let count = sources.len() + downloads.len() + c.heredocs.len();
        let dest_dir = dest.ends_with('/') || dest == "." || count > 1 || glob;
        if count > 1 && !dest.ends_with('/') {
            return Err(BuildError::Step {
                line,
                message: format!("When using {keyword} with more than one source file, the destination must be a directory and end with a /"),
            });
        }
        let sum_inputs: Vec<(String, PathBuf)> = sources.iter().map(|(r, p, _)| (r.clone(), p.clone())).collect();
        let mut checksum = fsops::checksum(&sum_inputs)?;
        {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            h.update(checksum.as_bytes());
            for (n, d) in &downloads {
                h.update(n.as_bytes());
                h.update(d);
            }
            for hd in &c.heredocs {
                h.update(hd.name.as_bytes());
                h.update(hd.content.as_bytes());
            }
            checksum = format!("{:x}", h.finalize());
        }
        let kind = if count == 1 && sources.len() == 1 && sources[0].1.is_dir() { "dir" } else if count == 1 { "file" } else { "multi" };
        let abs_dest = if dest.starts_with('/') { dest.clone() } else { format!("{}/{}", st.workdir().trim_end_matches('/'), dest) };
        let created_by = format!("{} #(nop) {keyword} {kind}:{checksum} in {abs_dest} ", st.shell().join(" "));
        let flags = format!("{:?} {:?} {:?}", c.chown.as_deref().map(ex).transpose()?, chmod, c.from);
        let key = self.key(st, &format!("copy {flags} {created_by}"));
        if self.cached(st, &key, emit) {
            return Ok(());
        }
        let ws = Workspace::open(self.host, st.top_layer().as_ref())?;
        let root = ws.rootfs().to_owned();
        let (uid, gid) = match &c.chown {
            Some(ch) => {
                let (u, g, _) = fsops::resolve_user(&root, &ex(ch)?)?;
                (u, g)
            }
            None => (0, 0),
        };
        let attrs = Attrs { uid, gid, chmod };
        let owner = c.chown.as_ref().map(|_| (uid, gid));
        let dest_is_dir = dest_dir || fsops::scoped(&root, &abs_dest, true).map(|p| p.is_dir()).unwrap_or(false);
        for (rel, path, may_extract) in &sources {
            let meta = std::fs::symlink_metadata(path).map_err(|e| fail(format!("stat {rel}: {e}")))?;
            if meta.is_dir() {
                let d = fsops::mkdir_all(&root, &abs_dest, owner)?;
                fsops::copy_tree(path, &d, &attrs)?;
                continue;
            }
            if *may_extract && meta.is_file()
                && let Some(kind) = fsops::archive_kind(path) {
                    let d = fsops::mkdir_all(&root, &abs_dest, owner)?;
                    fsops::extract(path, kind, &d)?;
                    continue;
                }
            let target = if dest_is_dir {
                let d = fsops::mkdir_all(&root, &abs_dest, owner)?;
                d.join(Path::new(rel).file_name().unwrap_or_default())
            } else {
                let parent = Path::new(&abs_dest).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
                fsops::mkdir_all(&root, &parent, owner)?;
                fsops::scoped(&root, &abs_dest, false)?
            };
            fsops::copy_tree(path, &target, &attrs)?;
        }
        for (name, data) in &downloads {
            let target = if dest_is_dir {
                fsops::mkdir_all(&root, &abs_dest, owner)?.join(name)
            } else {
                let parent = Path::new(&abs_dest).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
                fsops::mkdir_all(&root, &parent, owner)?;
                fsops::scoped(&root, &abs_dest, false)?
            };
            fsops::write_file(&target, data, &attrs, 0o600)?;
        }
        for h in &c.heredocs {
            let content = if h.quoted { h.content.clone() } else { ex(&h.content)? };
            let target = if dest_is_dir {
                fsops::mkdir_all(&root, &abs_dest, owner)?.join(&h.name)
            } else {
                let parent = Path::new(&abs_dest).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
                fsops::mkdir_all(&root, &parent, owner)?;
                fsops::scoped(&root, &abs_dest, false)?
            };
            fsops::write_file(&target, content.as_bytes(), &attrs, 0o644)?;
        }
        let layer = ws.commit()?;
        self.commit(st, created_by, Some(layer), &key, emit)
    }
}

/// A `-t` value as the reference it sets: `:latest` when no tag is given.
fn tag_reference(t: &str) -> Result<Reference, BuildError> {
    let r = Reference::parse_named(t).map_err(|e| BuildError::Image(format!("invalid reference format: {t}: {e}")))?;
    if r.digest().is_some() {
        return Err(BuildError::Image(format!("invalid reference format: {t}: a build cannot be tagged with a digest")));
    }
    Ok(if r.tag().is_none() { r.with_tag("latest") } else { r })
}

/// Paths under `root` matching a glob (Go's `path.Match` per path).
fn glob_walk(root: &Path, pattern: &str) -> Vec<String> {
    let depth = pattern.split('/').count();
    let mut out = Vec::new();
    fn walk(root: &Path, rel: &str, depth: usize, pattern: &str, out: &mut Vec<String>) {
        let dir = if rel.is_empty() { root.to_owned() } else { root.join(rel) };
        let Ok(rd) = std::fs::read_dir(&dir) else { return };
        let mut names: Vec<String> = rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for n in names {
            let r = if rel.is_empty() { n.clone() } else { format!("{rel}/{n}") };
            let d = r.split('/').count();
            if d == depth {
                if berth_image::store::glob_match(pattern, &r) {
                    out.push(r);
                }
            } else if d < depth && root.join(&r).is_dir() {
                walk(root, &r, depth, pattern, out);
            }
        }
    }
    walk(root, "", depth, pattern, &mut out);
    out
}

/// Go's `%q` of each string, space separated, in brackets (docker's
/// history text for CMD and friends).
fn go_list(v: &[String]) -> String {
    format!("[{}]", v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" "))
}

fn quote(s: &str) -> String {
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"') { format!("{s:?}") } else { s.to_owned() }
}

fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<i32>() {
        return n > 0 && n < 65;
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") { name } else { format!("SIG{name}") };
    name.parse::<nix::sys::signal::Signal>().is_ok() || name.starts_with("SIGRTMIN") || name.starts_with("SIGRTMAX")
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`...
fn expand_ports(s: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let bad = || format!("invalid containerPort: {ports}");
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().map_err(|_| bad())?, b.parse::<u16>().map_err(|_| bad())?),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if b < a {
        return Err(bad());
    }
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_default_to_latest() {
        assert_eq!(tag_reference("app").unwrap().familiar(), "app:latest");
        assert_eq!(tag_reference("reg.example:5000/team/app:v2").unwrap().familiar(), "reg.example:5000/team/app:v2");
        assert!(tag_reference("Bad Name").is_err());
        assert!(tag_reference(&format!("app@sha256:{}", "a".repeat(64))).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("5x"), None);
    }

    #[test]
    fn ports() {
        assert_eq!(expand_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expand_ports("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(expand_ports("8000-8002").unwrap().len(), 3);
        assert!(expand_ports("http").is_err());
        assert!(expand_ports("80/icmp").is_err());
    }

    #[test]
    fn signals_and_lists() {
        assert!(valid_signal("SIGTERM"));
        assert!(valid_signal("kill"));
        assert!(valid_signal("9"));
        assert!(!valid_signal("SIGNOPE"));
        assert_eq!(go_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"".into()]), r#"["/bin/sh" "-c" "echo \"hi\""]"#);
    }
}
