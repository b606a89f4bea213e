//! The running side of containers: shims, start/stop/kill/wait, attach,
//! logs, exec, restart policies.

use std::sync::Arc;

use crate::Daemon;

impl Daemon {
    /// After a (re)start: reattach to the shims that survived, record the
    /// exits that happened meanwhile, apply restart policies.
    pub async fn restore(self: Arc<Self>) {}
}
