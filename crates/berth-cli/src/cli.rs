//! The command line: clap definitions with docker's spelling.

use clap::Command;

/// Make clap read flags as Go's pflag does: a flag that takes a value
/// takes the next argument whatever it looks like (`--stop-timeout -1`).
pub fn pflag_like(cmd: Command) -> Command {
    cmd.mut_args(|a| {
        if !a.is_positional() && a.get_action().takes_values() { a.allow_hyphen_values(true) } else { a }
    })
    .mut_subcommands(pflag_like)
}
