//! The control: what a plain rotation function does (AWS's template), with no gaps.
//! createSecret stores the value under AWSPENDING, finishSecret moves AWSCURRENT to it
//! at once. Run against the same fleet, it must produce failed consumer operations, or
//! the simulation could not tell a safe rotation from an unsafe one.

use keyshift::Invocation;
use keyshift::event::Step;
use keyshift::ports::{LabelMove, SecretStore, Target, TargetContext};
use keyshift::secret::AWSCURRENT;

use crate::ports::{SimStore, SimTarget};

/// One engine step of the one-step rotation.
pub async fn one_step(store: SimStore, target: SimTarget, inv: Invocation) -> Result<String, String> {
    let secret = &inv.secret_id;
    let state = store
        .describe(secret, keyshift::ports::Detail::Full)
        .await
        .map_err(|e| e.to_string())?;
    let current = state.current().cloned().ok_or("no AWSCURRENT version")?;
    if current == inv.token {
        return Ok("already current".into());
    }
    match inv.step {
        Step::CreateSecret => {
            if store
                .get_value(secret, &inv.token)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                let ctx = TargetContext {
                    secret,
                    tags: &state.tags,
                };
                let value = target.generate(&ctx, None).await.map_err(|e| e.to_string())?;
                store
                    .put_pending(secret, &inv.token, &value, None)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok("created".into())
        }
        Step::SetSecret => {
            let value = store
                .get_value(secret, &inv.token)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no value")?;
            target
                .set(
                    &TargetContext {
                        secret,
                        tags: &state.tags,
                    },
                    &inv.token,
                    &value,
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok("set".into())
        }
        Step::FinishSecret => {
            let change = LabelMove {
                stage: AWSCURRENT.into(),
                move_to: Some(inv.token.clone()),
                remove_from: Some(current),
            };
            store
                .update_stage(secret, &change)
                .await
                .map_err(|e| e.to_string())?;
            Ok("AWSCURRENT moved at once".into())
        }
        _ => Ok("nothing to do".into()),
    }
}
