//! berth-shim: one process per container, the container's parent.
//!
//! The daemon never is a container's parent. It calls [`spawn()`], which
//! starts `berth-shim` detached (own session, not the daemon's child); the
//! shim creates the container through `berth_runtime::Runtime::create` with
//! its own pipes (or a pty), holds them, writes the container's log, reaps
//! it, records its exit, and outlives a daemon crash. A new daemon finds the
//! shim again by its state directory and reattaches ([`client::ShimClient`]).
//!
//! # Lifecycle
//!
//! 1. **Spawn** ([`spawn()`], blocking): writes `<state_dir>/shim.json`,
//!    execs the shim, which forks away from the caller, creates the
//!    container (init waits for start), listens on `<state_dir>/shim.sock`,
//!    writes `shim.pid`, and only then answers on a pipe: the pids, or the
//!    runtime's error verbatim ([`ShimError::Create`], with docker's
//!    126/127 mapping in [`ShimError::exit_code`]). On failure nothing is
//!    left behind.
//! 2. **Attach** (optional), then **start**: attaching first loses no
//!    output.
//! 3. **Running**: attach, resize, exec, exec_state, status at any time.
//!    Kill, pause and state go straight to `berth_runtime::Runtime` (the
//!    runtime root is shared); the shim notices the exit however it came.
//! 4. **Exit**: the shim reaps init, deletes the container
//!    (`Runtime::delete`: stragglers killed, cgroup and runtime state gone),
//!    reads the output to its end, flushes the log, writes
//!    `<state_dir>/exit.json` ([`ExitStatus`]: code or 128+signal, time,
//!    OOM), answers `wait`, closes attached streams.
//! 5. **Shutdown**: the shim exits on `shutdown` from the daemon, or once
//!    no client has been connected for `exit_grace_ms`, removing its socket.
//!    A daemon finding the socket gone reads `exit.json` ([`read_exit`]).
//!
//! The daemon's part: it never deletes the container from the runtime (the
//! shim does, at exit); to run the container again (restart policies) it
//! says `shutdown` to the old shim and spawns a new one on the same state
//! directory (spawn refuses while a shim still serves it); at start-up it
//! reconnects to every state directory ([`client::ShimClient::connect`]),
//! and where the shim is gone ([`client::ClientError::shim_gone`]) reads
//! `exit.json`; no `exit.json` there means the shim itself was killed.
//!
//! # Files in the state directory
//!
//! | file | written by | content |
//! |---|---|---|
//! | `shim.json` | spawn | [`SpawnOptions`] |
//! | `shim.log` | the shim's stderr | its diagnostics |
//! | `shim.pid` | shim, when ready | its pid |
//! | `shim.sock` | shim | the control socket, while it runs |
//! | `exit.json` | shim, at the end | [`ExitStatus`], written atomically |
//!
//! # Control protocol
//!
//! Unix stream socket `shim.sock`, mode 0600. One request per connection:
//! the client writes one JSON object and `\n`; the shim answers with one
//! JSON line, `{"ok":true,...}` or
//! `{"ok":false,"error":{"kind":"Conflict","message":"..."}}` (`kind` is a
//! [`berth_api::ErrorKind`]). Then, for `attach` and a non-detached `exec`,
//! the connection carries the streams; otherwise the shim closes it.
//!
//! | request | answer |
//! |---|---|
//! | `{"op":"status"}` | `"status":{id, shim_pid, pid, phase, tty, open_stdin, exit?}` |
//! | `{"op":"start"}` | ok, once `Runtime::start` returned |
//! | `{"op":"attach","stdin":b,"stdout":b,"stderr":b,"stdin_once":b,"detach_keys":[16,17]?}` | ok, then streams |
//! | `{"op":"resize","exec_id":s?,"rows":n,"cols":n}` | ok |
//! | `{"op":"wait"}` | `"exit":{code, signal?, time, oom_killed, pid}` once exited and flushed |
//! | `{"op":"exec","exec_id":s,"process":{OCI process},"tty":b,"stdin":b,"detach":b,"detach_keys":[..]?}` | `"pid":n`, then streams unless detached |
//! | `{"op":"exec_state","exec_id":s}` | `"exec":{exec_id, pid, running, exit_code?, error?}` |
//! | `{"op":"shutdown"}` | ok, then the shim exits (refused while the container runs) |
//!
//! **Streams** are already in the Engine API's wire format, so the daemon
//! splices a hijacked HTTP connection onto the socket unchanged: without a
//! tty, docker's multiplexed frames (8-byte header: stream 1 stdout or 2
//! stderr, three zero bytes, big-endian u32 length; then the payload), with
//! a tty the raw bytes. Any number of attachers; each gets the streams it
//! asked for. Bytes the client writes go to the process's stdin (when the
//! attach asked for stdin and the container has one); the client shutting
//! down its write side closes that stdin when `stdin_once` is set and there
//! is no tty (docker's rule; an exec's attach always has `stdin_once`). The
//! detach keys end the attach without reaching the process. The stream ends
//! (the shim shuts the connection down) when the process's output ends. A
//! slow attacher holds the output back (the container blocks on its
//! pipe), as docker's attach does; the log is written as output is read.
//!
//! # Logs
//!
//! [`logs`]: the drivers (json-file exactly as docker writes it, local,
//! syslog, none) with rotation, and [`logs::LogReader`] for the daemon's
//! `logs` endpoint (tail, since, until, streams, follow across rotation).
//!
//! # The shim process
//!
//! Single-threaded, one poll(2) loop, no async runtime (the client is
//! behind the `client` feature). Runtime calls run in short-lived forks
//! ([`helper`]) so the shim's heap stays small and its loop never blocks on
//! the runtime. A second after control activity, the shim gives back what
//! the idle loop does not need (freed heap, the clean code pages start-up
//! touched).
//!
//! Memory of a release-built shim holding an idle `sleep` container
//! (after an attach, a start and an exec; `shim_memory` in the root tests
//! prints it): VmRSS 1.0–1.06 MB, Pss 0.64–0.70 MB, private dirty 476 kB (264 kB of it
//! the relocated read-only data of a position-independent binary). During
//! control activity, before the trim, about 1.7 MB VmRSS.

pub mod helper;
pub mod logs;
pub mod protocol;
pub mod server;
pub mod spawn;
pub mod timefmt;

#[cfg(feature = "client")]
pub mod client;

pub use protocol::{AttachOptions, ExecRequest, ExecState, ExitStatus, Phase, ShimStatus, Stream};
pub use spawn::{ShimError, ShimHandle, SpawnOptions, read_exit, shim_pid, spawn};

#[cfg(feature = "client")]
pub use client::{ClientError, ExecStarted, ShimClient};
