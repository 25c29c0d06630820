//! The checks after every event (labels, views, revocation, rotations' progress), when a
//! run is over, and the results it reports.

use super::*;

impl World {
    pub(super) fn after_event(&mut self, concerned: Option<usize>) {
        let dirty = std::mem::take(&mut self.hub.state().dirty);
        let mut touched: BTreeSet<usize> = dirty
            .iter()
            .filter_map(|id| self.index.get(id).copied())
            .collect();
        touched.extend(concerned);
        for s in touched {
            self.check_secret(s);
        }
    }

    pub(super) fn check_secret(&mut self, s: usize) {
        let now = self.now();
        let state = self.snapshot(s);
        let history = self.secrets[s].inner.history(&self.secrets[s].id);
        let valid = self.target.valid(&self.secrets[s].id);
        let carried = self.carried_values(s, &state);
        let sw = &mut self.secrets[s];
        if sw.views.last().is_none_or(|(_, v)| *v != state) {
            sw.views.push((now, state.clone()));
            if sw.views.len() > 256 {
                sw.views.drain(..128);
            }
        }
        // Emergencies first: their cuts change which bound the checker holds a gap to.
        self.observe_requests(s, &state, &history);
        let sw = &mut self.secrets[s];
        let before = sw.checker.violations.len();
        sw.checker.observe(&history, &state, now);
        let late = if self.strategy == Strategy::Keyshift {
            sw.revocation.observe(now, &carried, &valid)
        } else {
            Vec::new()
        };
        for l in late {
            let what = describe_value(sw, &l.value);
            sw.checker.violations.push(format!(
                "{now}: service B still accepts {what}, which no accepted version has carried since {} (more than T + 1 h)",
                l.uncarried_since
            ));
        }
        let new: Vec<String> = sw.checker.violations[before..].to_vec();
        for v in new {
            self.note(Some(s), format!("VIOLATION {v}"));
        }
        self.track_rotations(s, &state);
        self.aim_by_state(s, &state);
    }

    /// The values of the versions that carry an accepted label.
    pub(super) fn carried_values(&mut self, s: usize, state: &SecretState) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (id, v) in &state.versions {
            if ACCEPTED_STAGES.iter().any(|st| v.has(st))
                && let Some(value) = self.value_of(s, id)
            {
                out.insert(value);
            }
        }
        out
    }

    /// Learns each rotation's value, and notices when a version holding it became
    /// AWSCURRENT (whatever its id).
    pub(super) fn track_rotations(&mut self, s: usize, state: &SecretState) {
        let now = self.now();
        let current_value = state.current().cloned().and_then(|c| self.value_of(s, &c));
        for r in 0..self.secrets[s].rotations.len() {
            if self.secrets[s].rotations[r].value.is_none() && self.secrets[s].rotations[r].started.is_some()
            {
                let token = self.secrets[s].rotations[r].token.clone();
                self.secrets[s].rotations[r].value = self.value_of(s, &token);
            }
            let rot = &self.secrets[s].rotations[r];
            if rot.became_current.is_none() && rot.value.is_some() && rot.value == current_value {
                self.secrets[s].rotations[r].became_current = Some(now);
                self.note(Some(s), format!("rotation {r}: its value is AWSCURRENT"));
                if let Some(at) = self.secrets[s].rotations[r].cancelled_at {
                    self.violation(
                        s,
                        format!("resumed-{r}"),
                        format!("{now}: rotation {r} was cancelled at {at} and resumed: its value became AWSCURRENT"),
                    );
                }
                let latest = r + 1 == self.secrets[s].rotations.len();
                if latest && self.secrets[s].planned < self.secrets[s].sc.rotations {
                    let after = self.rand_secs(0.0, 2.0 * self.policy.gap.as_secs_f64());
                    let at = now.plus(after);
                    self.new_rotation(s, at, false);
                }
            }
        }
    }

    /// Whether nothing is left to happen: no task in flight, no event but the periodic
    /// ones, and the engine done with every rotation it started.
    pub(super) fn quiescent(&self) -> bool {
        self.important == 0
            && self.tasks.is_empty()
            && self.secrets.iter().all(|sw| {
                sw.rotations
                    .iter()
                    .all(|r| r.engine_over || r.became_current.is_some())
            })
    }

    pub(super) fn finish(mut self) -> Vec<RunResult> {
        let quiet = self.quiescent();
        let now = self.now();
        let mut results = Vec::new();
        for s in 0..self.secrets.len() {
            self.sweep(s);
            self.check_secret(s);
            self.finish_requests(s);
            let state = self.snapshot(s);
            for (id, v) in &state.versions {
                let line = format!(
                    "final: version {id} labels {:?} value since {:?}",
                    v.stages, v.created
                );
                self.note(Some(s), line);
            }
            let valid = self.target.valid(&self.secrets[s].id);
            let clean = is_clean(&state);
            let sw = &mut self.secrets[s];
            let mut violations = Vec::new();
            if quiet && self.strategy == Strategy::Keyshift && sw.sc.request.is_some() {
                // At rest: AWSPENDING and ROTATING on no version.
                for stage in [AWSPENDING, ROTATING] {
                    if let Some(v) = state.holder(stage) {
                        violations.push(format!(
                            "the run is over and {stage} is still on version {v}: not at rest"
                        ));
                    }
                }
            }
            if quiet && self.strategy == Strategy::Keyshift {
                // Nothing is left that could revoke these.
                for (value, since) in sw.revocation.pending() {
                    violations.push(format!(
                        "{now}: the run is over and service B still accepts {}, which no accepted version has carried since {since}: it will never be revoked",
                        describe_value(sw, value)
                    ));
                }
            }
            let bound = sw.sc.convergence_bound();
            let started: Vec<usize> = (0..sw.rotations.len())
                .filter(|&r| sw.rotations[r].started.is_some())
                .collect();
            let completed = |r: &Rotation| {
                let from = if r.follow_on { r.accepted } else { r.started };
                match (from, r.became_current) {
                    (Some(s), Some(c)) => c.since(s) <= bound,
                    _ => false,
                }
            };
            let (mut converged, mut abandoned) = (0, 0);
            for (k, &r) in started.iter().enumerate() {
                let rot = &sw.rotations[r];
                let last = k + 1 == started.len();
                if completed(rot) {
                    if !last || clean {
                        converged += 1;
                    } else {
                        violations.push(format!(
                            "rotation {r} completed but left keyshift labels behind (current: {:?})",
                            state.current()
                        ));
                    }
                    continue;
                }
                // Another rotation completed after this one started: a later one, or an
                // earlier one that resumed once this one lost its AWSPENDING (strips and
                // retries can interleave two rotations; what matters is that the secret
                // ended rotated and clean, with this one's value revoked).
                let later_completed = started.iter().any(|&l| {
                    let other = &sw.rotations[l];
                    l != r
                        && completed(other)
                        && (started[k + 1..].contains(&l)
                            || other.became_current.zip(rot.started).is_some_and(|(c, s)| c > s))
                });
                let revoked = rot.value.as_ref().is_none_or(|v| !valid.contains(v));
                if rot.became_current.is_none() && later_completed && clean && revoked {
                    converged += 1;
                    abandoned += 1;
                    continue;
                }
                let why = if rot.became_current.is_some() {
                    "its value became current too late".to_owned()
                } else {
                    let mut why = vec!["its value never became current"];
                    if !later_completed {
                        why.push("no later rotation completed");
                    }
                    if !clean {
                        why.push("keyshift labels are left behind");
                    }
                    if !revoked {
                        why.push("its value is not revoked at service B");
                    }
                    why.join(", ")
                };
                violations.push(format!(
                    "rotation {r} did not converge within {bound:?}: {why} (current: {:?}, clean: {clean})",
                    state.current()
                ));
            }
            if sw.dead_letters > 0 {
                violations.push(format!(
                    "{} follow-ups ended in the dead-letter queue",
                    sw.dead_letters
                ));
            }
            let mut all = std::mem::take(&mut sw.checker.violations);
            all.extend(violations);
            let overshoots_ms = sw.checker.overshoots_ms().into_iter().map(|(_, o)| o).collect();
            results.push(RunResult {
                rotations: started.len(),
                converged,
                abandoned,
                operations: sw.operations,
                failed_operations: sw.failed,
                failed_by_region: sw.failed_by_region,
                violations: all,
                cross_talk: sw.cross_talk,
                overshoots_ms,
                dead_letters: sw.dead_letters,
                hits: sw.hits,
                operator_acted: sw.operator_acted,
                requests: std::mem::take(&mut sw.requests),
                request_unsent: sw.sc.request.is_some() && !sw.request_triggered,
                emergencies: std::mem::take(&mut sw.emergencies),
                by_design: sw.by_design,
                healed: sw.healed,
                keys: sw.fleet.keys.stats,
                kids: std::mem::take(&mut sw.fleet.keys.kids),
                trace: Vec::new(),
                scenario: sw.sc.clone(),
            });
        }
        if let (Some(trace), Some(first)) = (self.trace.take(), results.first_mut()) {
            first.trace = trace;
            for r in &results[1..].to_vec() {
                for v in &r.violations {
                    results[0]
                        .trace
                        .push(format!("violation of secret {}: {v}", r.scenario.secret_index));
                }
            }
        }
        results
    }
}

/// "the initial value", "rotation 2's value", or "a value" for a report line.
fn describe_value(sw: &SecretWorld, value: &str) -> String {
    if value == sw.initial {
        return "the initial value".into();
    }
    match sw
        .rotations
        .iter()
        .position(|r| r.value.as_deref() == Some(value))
    {
        Some(r) => format!("rotation {r}'s value"),
        None => "a value no rotation owns".into(),
    }
}
