//! The fault injector: every 5 to 60 s of virtual time, while a secret still has a rotation
//! to complete and faults to spend, the faults its class allows ([`FaultClass`]): a store
//! call that fails or whose response is lost, throttling, a failing CreateSchedule, a
//! strip of AWSPENDING behind everyone's back, or service B refusing the next step. The
//! delivery faults (a job lost, or delivered twice) are drawn where a job fires
//! ([`crate::world`]'s delivery model).

use std::time::Duration;

use keyshift::memory::{Fault, Op};
use keyshift::ports::StoreErrorKind;
use rand::Rng;

use crate::scenario::FaultClass;
use crate::world::{Ev, World};

impl World {
    /// Injects the next faults into secret `s` and queues the next draw.
    pub(crate) fn inject_fault(&mut self, s: usize) {
        let sw = &self.secrets[s];
        if sw.faults >= sw.sc.max_faults || sw.rotations.iter().all(|r| r.became_current.is_some()) {
            return;
        }
        let class = sw.sc.class;
        let (id, inner) = (sw.id.clone(), sw.inner.clone());
        let ops = [Op::Describe, Op::GetValue, Op::PutPending, Op::UpdateStage];
        let mut injected = Vec::new();
        if class.has(FaultClass::StoreErrors) && self.rng.random_bool(0.5) {
            let op = ops[self.rng.random_range(0..ops.len())];
            inner.inject(Fault::FailNext {
                op,
                kind: StoreErrorKind::Transient,
            });
            injected.push(format!("{op:?} fails next"));
        }
        if class.has(FaultClass::LostResponses) && self.rng.random_bool(0.5) {
            let op = [Op::PutPending, Op::UpdateStage][self.rng.random_range(0..2)];
            inner.inject(Fault::LoseResponse { op });
            injected.push(format!("{op:?} response lost next"));
        }
        if class.has(FaultClass::Throttling) && self.rng.random_bool(0.5) {
            let calls = self.rng.random_range(1..=3);
            inner.inject(Fault::Throttle { op: None, calls });
            injected.push(format!("{calls} calls throttled"));
        }
        if class.has(FaultClass::SchedulerErrors) && self.rng.random_bool(0.5) {
            *self
                .scheduler
                .state()
                .fail_next_creates
                .entry(id.clone())
                .or_default() += 1;
            injected.push("CreateSchedule fails next".into());
        }
        if class.has(FaultClass::EngineStrip) && self.rng.random_bool(0.2) {
            // A strip at any moment, behind everyone's back.
            self.push_in(
                Duration::ZERO,
                Ev::Strip {
                    s,
                    after_finish: false,
                },
            );
            injected.push("AWSPENDING stripped at a random moment".into());
        }
        if class.has(FaultClass::EngineStepFailures) && self.rng.random_bool(0.3) {
            self.target.with_service(&id, |d| d.fail_next += 1);
            injected.push("service B refuses next set/test".into());
        }
        if !injected.is_empty() {
            self.secrets[s].faults += injected.len() as u32;
            self.note(Some(s), format!("FAULT {}", injected.join(", ")));
        }
        let next = self.rand_secs(5.0, 60.0);
        self.push_in(next, Ev::Fault(s));
    }
}
