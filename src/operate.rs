//! An operator's requests, resolved against the secret as it is.
//!
//! A request names a secret and an operation ([`Operation`]); which rotation it acts on
//! is read from the labels, like everything else: [`resolve`] turns it into an
//! [`Invocation`] that [`crate::decide`] decides like any other (so an emergency or a
//! cancel is as idempotent as an engine step, and a re-drive is the very follow-up its
//! schedule would have delivered), or into an outcome when there is nothing to do.
//!
//! Pure: no clock (`now` is an argument), no I/O.

use crate::decide::{Outcome, Rejection};
use crate::event::{Invocation, Operation, OperatorRequest, Step};
use crate::secret::{AWSPENDING, ROTATING, SecretState, VersionId};
use crate::time::Timestamp;

/// What an operator's request comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Run this invocation. For a re-drive of a rotation whose engine steps may not have
    /// finished, `test_first` names the pending version to test at the target first: a
    /// value setSecret never registered must not be swapped in.
    Run {
        /// The invocation to run.
        invocation: Invocation,
        /// The version to test before it, if any.
        test_first: Option<VersionId>,
    },
    /// Nothing to do, for this reason.
    Nothing(Outcome),
}

/// Resolves `request` against `secret` (read with
/// [`Detail::Full`](crate::ports::Detail::Full)) at `now`.
///
/// * emergency: the compromised version is the one named, else AWSCURRENT;
/// * cancel: the rotation in flight (AWSPENDING on a version other than AWSCURRENT), or
///   the one named, which must be that one when one is in flight; with none in flight
///   and a swapped rotation in its second gap, refused ([`Rejection::CancelAfterSwap`]);
/// * re-drive: `swapPending` for a rotation before its swap (tested first when its
///   pending version is the engine's own, whose steps may not have finished),
///   `removePending` for one in its second gap, due now: the core keeps every gap at T
///   or longer whatever the due time asked.
pub fn resolve(
    request: &OperatorRequest,
    secret: &SecretState,
    now: Timestamp,
) -> Result<Resolved, Rejection> {
    let s = secret;
    if s.deleted {
        return Err(Rejection::SecretDeleted);
    }
    let current = s.current().ok_or(Rejection::NoCurrentVersion)?;
    let run = |step: Step, token: &VersionId, test_first: Option<VersionId>| Resolved::Run {
        invocation: Invocation {
            step,
            secret_id: request.secret_id.clone(),
            token: token.clone(),
            rotation_token: None,
            schedule: None,
        },
        test_first,
    };
    let in_flight = s.holder(AWSPENDING).filter(|p| *p != current);
    let second_gap = s.holder(ROTATING).filter(|r| *r != current);
    match &request.operation {
        Operation::EmergencyRotate {
            compromised,
            gap,
            keep_accepting,
            ..
        } => Ok(run(
            Step::EmergencyRotate {
                gap: *gap,
                keep_accepting: *keep_accepting,
            },
            compromised.as_ref().unwrap_or(current),
            None,
        )),
        Operation::Cancel { token } => match (token, in_flight) {
            (Some(t), Some(p)) if !SecretState::in_chain(p, t) => {
                Err(Rejection::NotInFlight { token: t.clone() })
            }
            (Some(t), _) => Ok(run(Step::Cancel, t, None)),
            (None, Some(p)) => {
                let t = s
                    .token_of(p)
                    .ok_or_else(|| Rejection::UnknownVersion { version: p.clone() })?;
                Ok(run(Step::Cancel, t, None))
            }
            (None, None) if second_gap.is_some() => Err(Rejection::CancelAfterSwap { release_due: None }),
            (None, None) => Ok(Resolved::Nothing(Outcome::NothingToCancel)),
        },
        Operation::Redrive => {
            if let Some(p) = in_flight {
                if p.is_keyshift_emergency() {
                    return Err(Rejection::RedriveEmergency { version: p.clone() });
                }
                let token = s
                    .token_of(p)
                    .ok_or_else(|| Rejection::UnknownVersion { version: p.clone() })?;
                let test_first = (!p.is_keyshift_copy()).then(|| p.clone());
                return Ok(run(Step::SwapPending { due: now }, token, test_first));
            }
            if let Some(old) = second_gap {
                let token = s.token_of(current).unwrap_or(current);
                return Ok(run(
                    Step::RemovePending {
                        due: now,
                        release: old.clone(),
                    },
                    token,
                    None,
                ));
            }
            Ok(Resolved::Nothing(Outcome::NothingToRedrive))
        }
    }
}

#[cfg(test)]
mod tests;
