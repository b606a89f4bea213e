//! `berth-init -- CMD [ARG...]`: what `docker run --init` puts in front of a
//! container's command. As pid 1 it starts CMD in its own process group,
//! forwards every signal it gets to it, reaps every zombie that is handed to
//! it, and exits with CMD's status (128 + signal when CMD was killed).
//!
//! It is copied into containers whose images have no libc, so it is built
//! as a static binary (`scripts/build-init.sh`).

use std::ffi::CString;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, execvp, fork, getpgrp, isatty, setpgid, tcsetpgrp};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("berth-init: usage: berth-init -- COMMAND [ARG...]");
        std::process::exit(2);
    }
    let argv: Vec<CString> = match args.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => {
            eprintln!("berth-init: argument contains a NUL byte");
            std::process::exit(2);
        }
    };
    let all = SigSet::all();
    let mut old = SigSet::empty();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old)) {
        eprintln!("berth-init: block signals: {e}");
        std::process::exit(1);
    }
    // SAFETY: single-threaded; the child only sets up and execs.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            // Own process group, in the foreground of the terminal if any,
            // so ^C reaches the command, not us.
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let stdin = std::io::stdin();
            if isatty(&stdin).unwrap_or(false) {
                // SAFETY: ignoring SIGTTOU while taking the terminal.
                unsafe { libc_ignore_ttou() };
                let _ = tcsetpgrp(&stdin, getpgrp());
            }
            let e = execvp(&argv[0], &argv).unwrap_err();
            eprintln!("berth-init: exec {}: {e}", args[0]);
            std::process::exit(if e == nix::Error::ENOENT { 127 } else { 126 });
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("berth-init: fork: {e}");
            std::process::exit(1);
        }
    };
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        // Reap everything that exited: the command, and orphans handed to us.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(p, s, _)) if p == child => std::process::exit(128 + s as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}

/// Ignore SIGTTOU so tcsetpgrp works from a background group.
unsafe fn libc_ignore_ttou() {
    // SAFETY: setting a signal to SIG_IGN has no handler to race with.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGTTOU, nix::sys::signal::SigHandler::SigIgn);
    }
}
