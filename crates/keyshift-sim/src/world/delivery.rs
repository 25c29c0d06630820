//! The delivery model: a scheduler job fires anywhere inside its minute and may be lost
//! and re-delivered or delivered twice; invocations are keyshift's real executor, polled
//! as tasks, and a failed asynchronous invocation is retried twice, a minute then two
//! minutes later.

use super::*;

impl World {
    pub(super) fn secret_of(&self, job: &Job) -> Option<usize> {
        self.index.get(&job.invocation.secret_id).copied()
    }

    pub(super) fn fire(&mut self, job: Job) {
        let s = self.secret_of(&job);
        // ActionAfterCompletion DELETE: a job that was deleted (cancelled) never fires; one
        // that fires is deleted.
        if self.scheduler.state().live.remove(&job.name).is_none() {
            self.note(s, format!("{} was deleted before it fired", job.name));
            return;
        }
        let class = s.map_or(FaultClass::None, |s| self.secrets[s].sc.class);
        if class.has(FaultClass::LostDelivery) && self.rng.random_bool(0.5) {
            let after = self.rand_secs(60.0, 300.0);
            self.note(
                s,
                format!("FAULT delivery of {} lost; re-delivered in {after:?}", job.name),
            );
            self.push_in(after, Ev::Deliver { job, attempt: 0 });
            return;
        }
        if class.has(FaultClass::DuplicateDelivery) && self.rng.random_bool(0.5) {
            let after = self.rand_secs(0.0, 180.0);
            self.note(
                s,
                format!("FAULT {} will be delivered twice (again in {after:?})", job.name),
            );
            self.push_in(
                after,
                Ev::Deliver {
                    job: job.clone(),
                    attempt: 0,
                },
            );
        }
        self.push_in(Duration::ZERO, Ev::Deliver { job, attempt: 0 });
    }

    pub(super) fn insert_task(&mut self, inv: Invocation, owner: Owner, s: usize) -> TaskId {
        let id = self.next_task;
        self.next_task += 1;
        self.note(
            Some(s),
            format!("invoke {} {} (task {id})", inv.step.name(), inv.token),
        );
        let task: Task<TaskOut> = match self.strategy {
            Strategy::Keyshift => {
                let ex = Arc::clone(&self.executor);
                Box::pin(async move {
                    ex.handle(&inv)
                        .await
                        .map(|r| r.outcome.to_string())
                        .map_err(|e| e.to_string())
                })
            }
            Strategy::OneStep => Box::pin(one_step(self.store.clone(), self.target.clone(), inv)),
        };
        self.tasks.insert(
            id,
            TaskEntry {
                task,
                owner,
                secret: s,
            },
        );
        id
    }

    pub(super) fn poll(&mut self, id: TaskId) {
        let Some(mut entry) = self.tasks.remove(&id) else {
            return;
        };
        let caller = self.secrets[entry.secret].id.clone();
        self.hub.set_caller(Some(caller));
        let polled = poll_once(&mut entry.task, &self.clock);
        self.hub.set_caller(None);
        // What the ports saw during this poll happened before the task returned: an
        // abandonment by the engine comes before the engine learns the step's result.
        self.drain_hub();
        match polled {
            Err(wake) => {
                self.tasks.insert(id, entry);
                self.push_at(wake, Ev::Wake(id));
            }
            Ok(out) => self.task_done(id, entry.owner, entry.secret, out),
        }
        self.drain_scheduler();
    }

    pub(super) fn task_done(&mut self, id: TaskId, owner: Owner, s: usize, out: TaskOut) {
        match &out {
            Ok(o) => self.note(Some(s), format!("task {id} ok: {o}")),
            Err(e) => self.note(Some(s), format!("task {id} failed: {e}")),
        }
        match owner {
            Owner::Engine { rotation, step } => self.engine_step_done(s, rotation, step, id, out),
            Owner::Operator { req } => self.request_done(s, req, id),
            Owner::Delivery { job, attempt } => {
                if out.is_err() {
                    if attempt < 2 {
                        let after = Duration::from_secs(60 * u64::from(attempt + 1));
                        self.push_in(
                            after,
                            Ev::Deliver {
                                job,
                                attempt: attempt + 1,
                            },
                        );
                    } else {
                        self.note(
                            Some(s),
                            format!("{} exhausted Lambda's retries: dead-letter queue", job.name),
                        );
                        self.secrets[s].dead_letters += 1;
                    }
                }
            }
        }
    }

    /// Turns newly created schedules into firing times: anywhere inside the minute of
    /// `fire_at`, plus minutes when deliveries run late.
    pub(super) fn drain_scheduler(&mut self) {
        let jobs = std::mem::take(&mut self.scheduler.state().outbox);
        let precision = self.policy.precision;
        for job in jobs {
            let s = self.secret_of(&job);
            let mut at = job.fire_at.floor_to(precision).plus(Duration::from_millis(
                self.rng.random_range(0..precision.as_millis() as u64),
            ));
            let class = s.map_or(FaultClass::None, |s| self.secrets[s].sc.class);
            if class.has(FaultClass::LateDelivery) && self.rng.random_bool(0.5) {
                let late = self.rand_secs(60.0, 900.0);
                self.note(s, format!("FAULT {} will fire {late:?} late", job.name));
                at = at.plus(late);
            }
            self.note(
                s,
                format!(
                    "scheduled {} {} for {} (fires at +{})",
                    job.invocation.step.name(),
                    job.name,
                    job.fire_at,
                    self.rel(at)
                ),
            );
            self.push_at(at.max(self.now()), Ev::Fire(job));
        }
    }
}
