//! The consumer fleet's side of a world: scheduled refreshes, producers operating towards
//! consumers, failures recorded by Region pair, and the end-of-run sweep.

use super::*;

impl World {
    pub(super) fn refresh(&mut self, s: usize, i: usize) {
        let now = self.now();
        let sw = &mut self.secrets[s];
        let cache = sw.fleet.instances[i].cache.clone();
        cache.handle_timeout(now);
        let mut failed_refresh = None;
        if cache.refresh_due(now) {
            let lag = Duration::from_millis(sw.fleet_rng.random_range(0..=sw.sc.read_lag.as_millis() as u64));
            // A replica Region's labels trail the primary's by the replication lag.
            let replication = match sw.regions[i] {
                0 => Duration::ZERO,
                _ => sw.sc.replica_lag.unwrap_or_default(),
            };
            let read_at = now.minus(lag + replication);
            // The newest state at or before `read_at` (eventually consistent reads).
            let labels = crate::requests::read_view(&sw.views, read_at).clone();
            // Brief outages of the fleet's own reads: at most two failures in a row,
            // so that the view stays younger than T (R + two retries + the read lag).
            let failures = match cache.view().map(|v| v.health()) {
                Ok(Health::Stale { failures, .. }) => failures,
                _ => 0,
            };
            let fail =
                sw.sc.class.has(FaultClass::StoreErrors) && failures < 2 && sw.fleet_rng.random_bool(0.2);
            let source = SimSource {
                fail,
                labels: &labels,
                store: &sw.inner,
                secret: &sw.id,
            };
            if let Err(e) = run_now(cache.refresh(&source, now)) {
                failed_refresh = Some(format!("instance {i}: refresh failed: {e}"));
            }
        }
        if let Some(line) = failed_refresh {
            self.note(Some(s), line);
        }
        self.push_at(
            cache.next_wake().max(now.plus(Duration::from_millis(1))),
            Ev::Refresh { s, i },
        );
        self.update_windows(s, i);
        if self.strategy == Strategy::Keyshift {
            let sw = &self.secrets[s];
            let downstream = self.target.valid(&sw.id);
            // A pair an emergency breaks by design (until its instances refresh) is not
            // a broken contract.
            for f in sw.fleet.broken_pairs(&downstream) {
                if self.by_design(s, &f, now).is_none() {
                    let msg = format!("{now}: consumer contract broken after instance {i} refreshed: {f:?}");
                    self.secrets[s].checker.violations.push(msg);
                    break;
                }
            }
        }
    }

    pub(super) fn operate(&mut self, s: usize) {
        let n = self.secrets[s].fleet.instances.len();
        let (p, c) = (self.rng.random_range(0..n), self.rng.random_range(0..n));
        let downstream = self.target.valid(&self.secrets[s].id);
        let now = self.now();
        let (out, misses) = self.operate_pair(s, p, c, &downstream, false);
        self.secrets[s].operations += 1;
        let healed_badly = self.account_misses(s, p, &misses, now);
        if let Err(f) = out {
            self.operation_failed(s, p, c, f, false);
        } else if healed_badly > 0 {
            let sw = &mut self.secrets[s];
            sw.failed += 1;
            sw.failed_by_region[region_pair(sw.regions[p], sw.regions[c])] += 1;
        }
        let mean = (self.secrets[s].sc.refresh.as_secs_f64() / 20.0).max(0.5);
        let next = self.rand_secs(mean * 0.5, mean * 1.5);
        self.push_in(next, Ev::Operate(s));
    }

    /// One operation (or one pair of the sweep), with the secret's refresh-on-miss.
    pub(super) fn operate_pair(
        &mut self,
        s: usize,
        p: usize,
        c: usize,
        downstream: &BTreeSet<String>,
        sweep: bool,
    ) -> (Result<(), Failure>, Vec<crate::requests::Miss>) {
        let now = self.now();
        let SecretWorld {
            fleet,
            views,
            inner,
            id,
            fleet_rng,
            regions,
            sc,
            ..
        } = &mut self.secrets[s];
        let mut heal = SimHeal {
            now,
            views,
            store: inner,
            secret: id,
            rng: fleet_rng,
            read_lag: sc.read_lag,
            regions,
            replica_lag: sc.replica_lag,
            on: sc.refresh_on_miss,
            misses: Vec::new(),
        };
        let out = if sweep {
            fleet.sweep_pair(p, c, downstream, &mut heal)
        } else {
            fleet.operate(p, c, downstream, &mut heal)
        };
        (out, heal.misses)
    }

    /// A failed operation: by design (an emergency's), or a failure of the run. The
    /// producer of a refused operation refreshes, in a fleet that refreshes on a miss.
    pub(super) fn operation_failed(&mut self, s: usize, p: usize, c: usize, f: Failure, sweep: bool) {
        let now = self.now();
        let what = if sweep { " (end-of-run sweep)" } else { "" };
        match self.by_design(s, &f, now) {
            Some(design) => {
                let kid = match &f {
                    Failure::UnknownKid { kid, .. } => Some(kid.clone()),
                    Failure::NotAccepted { version, .. } => Some(version.clone()),
                    _ => None,
                };
                if self.secrets[s].by_design.iter().sum::<u64>() < 3 {
                    let line = format!(
                        "BY-DESIGN failed operation{what} ({}, emergency {}): {f:?}",
                        design.1.name(),
                        design.0
                    );
                    self.note(Some(s), line);
                }
                self.record_by_design(s, design, kid, now);
            }
            None => {
                let sw = &mut self.secrets[s];
                sw.failed += 1;
                sw.failed_by_region[region_pair(sw.regions[p], sw.regions[c])] += 1;
                let first = sw.failed <= 3;
                if let Failure::NothingToUse { .. } | Failure::UnusableKey { .. } = f {
                    sw.checker.violations.push(format!("{now}: {f:?}"));
                }
                if first {
                    self.note(Some(s), format!("FAILED consumer operation{what}: {f:?}"));
                }
            }
        }
        if !sweep {
            self.heal_refresh(s, p, false);
        }
    }

    /// The end-of-run sweep of a secret's fleet: every producer towards every consumer
    /// once (on a key secret for real, see [`crate::keys`]); a failure counts as a failed
    /// operation.
    pub(super) fn sweep(&mut self, s: usize) {
        let downstream = self.target.valid(&self.secrets[s].id);
        let n = self.secrets[s].fleet.instances.len();
        let now = self.now();
        self.secrets[s].operations += (n * n) as u64;
        for p in 0..n {
            for c in 0..n {
                let (out, misses) = self.operate_pair(s, p, c, &downstream, true);
                let healed_badly = self.account_misses(s, p, &misses, now);
                match out {
                    Err(f) => self.operation_failed(s, p, c, f, true),
                    Ok(()) if healed_badly > 0 => {
                        let sw = &mut self.secrets[s];
                        sw.failed += 1;
                        sw.failed_by_region[region_pair(sw.regions[p], sw.regions[c])] += 1;
                    }
                    Ok(()) => {}
                }
            }
        }
    }
}

/// Where a producer and a consumer run: both in the primary Region (0), both in the
/// replica Region (1), or in different Regions (2).
pub(super) fn region_pair(producer: usize, consumer: usize) -> usize {
    match (producer, consumer) {
        (0, 0) => 0,
        (a, b) if a == b => 1,
        _ => 2,
    }
}
