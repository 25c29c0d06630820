//! Optional rotation lifecycle events on an EventBridge bus.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use keyshift::decide::Outcome;
use keyshift::secret::{SecretId, VersionId};
use serde_json::json;

use keyshift::ports::short_error;

/// The `source` of every lifecycle event.
pub const SOURCE: &str = "keyshift";
/// The `detail-type` of every lifecycle event.
pub const DETAIL_TYPE: &str = "keyshift rotation phase";

/// The phase change an outcome is, if it is one.
pub fn phase(outcome: &Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Created => Some("pending-created"),
        Outcome::Copied { .. } => Some("pending-copied"),
        Outcome::Superseded { .. } => Some("rotation-superseded"),
        Outcome::Swapped => Some("swapped"),
        Outcome::Released => Some("released"),
        Outcome::Abandoned | Outcome::Cancelled { .. } => Some("rotation-cancelled"),
        Outcome::EmergencyCut { .. } => Some("emergency-cut"),
        // Every other outcome listed, no wildcard: a new outcome must be placed here
        // (phase change or not) before this compiles.
        Outcome::KeptExisting
        | Outcome::TargetSet
        | Outcome::Tested
        | Outcome::AlreadyCurrent
        | Outcome::SwapScheduled { .. }
        | Outcome::Rescheduled { .. }
        | Outcome::Marked
        | Outcome::Tidied
        | Outcome::AcceptedEverywhere
        | Outcome::Moved
        | Outcome::AlreadyReleased
        | Outcome::Vanished { .. }
        | Outcome::SecretGone
        | Outcome::EmergencyWritten { .. }
        | Outcome::EmergencyDone { .. }
        | Outcome::CancelMarked { .. }
        | Outcome::NothingToCancel
        | Outcome::NothingToRedrive => None,
    }
}

/// Publishes lifecycle events to one bus. Failures are logged by the caller and never
/// fail a step: the labels are the truth, the events only tell about them.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    client: Client,
    bus: String,
}

impl Lifecycle {
    /// Events to `bus` (a name or ARN).
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Lifecycle {
            client,
            bus: bus.into(),
        }
    }

    /// One event per phase change in `outcomes`. The detail names the secret, the
    /// rotation's token and the phase: ids only, never a value.
    pub async fn publish(
        &self,
        secret: &SecretId,
        token: &VersionId,
        outcomes: &[Outcome],
    ) -> Result<usize, String> {
        let entries: Vec<PutEventsRequestEntry> = outcomes
            .iter()
            .filter_map(|o| phase(o).map(|p| (o, p)))
            .map(|(o, p)| {
                let version = match o {
                    Outcome::Copied { new_version } => Some(new_version.as_str()),
                    _ => None,
                };
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(SOURCE)
                    .detail_type(DETAIL_TYPE)
                    .resources(secret.as_str())
                    .detail(
                        json!({
                            "secretId": secret.as_str(),
                            "token": token.as_str(),
                            "phase": p,
                            "version": version,
                        })
                        .to_string(),
                    )
                    .build()
            })
            .collect();
        if entries.is_empty() {
            return Ok(0);
        }
        let n = entries.len();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| format!("PutEvents: {}", short_error(&e)))?;
        match out.failed_entry_count() {
            0 => Ok(n),
            failed => Err(format!("PutEvents: {failed} of {n} entries failed")),
        }
    }
}
