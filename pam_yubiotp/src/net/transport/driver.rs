//! The loop over all connections: resolver lookups, one `poll(2)` with the
//! one deadline, each ready connection advanced, each finished exchange
//! reported to the caller, who may stop the rest.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::super::resolve::Lookups;
use super::connection::{Conn, State, Step};
use super::{Control, End, Exchange, Failure, Options, Phase};

/// Upper bound on loop iterations (each one either waits in `poll` or
/// makes progress); a safety net on top of the deadline.
const MAX_ITERATIONS: u32 = 1_000_000;
/// How often the loop looks for resolver results while one is pending.
const RESOLVER_TICK: Duration = Duration::from_millis(5);

type Outcome = Result<Vec<u8>, Failure>;

fn literal_addrs(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    host.parse::<IpAddr>()
        .ok()
        .map(|ip| vec![SocketAddr::new(ip, port)])
}

/// Runs every exchange until `on_done` says stop, all are finished, or the
/// deadline passes. `on_done(i, result)` is called once per finished
/// exchange `i`, with the complete 200 body or the failure.
pub fn run(
    exchanges: &[Exchange<'_>],
    opts: &Options<'_>,
    on_done: &mut dyn FnMut(usize, Outcome) -> Control,
) -> End {
    {
        // Dropped at the end of this block: kills and reaps every helper.
        let mut lookups = Lookups::new(opts.resolver);
        let mut conns: Vec<Conn<'_>> = Vec::with_capacity(exchanges.len());
        let mut early: Vec<(usize, Outcome)> = Vec::new();
        let mut asked: Vec<String> = Vec::new();
        for (i, ex) in exchanges.iter().enumerate() {
            let (host, port) = match opts.proxy {
                Some(p) => (p.host.as_str(), p.port),
                None => (ex.url.host.as_str(), ex.url.port),
            };
            let absolute = opts.proxy.is_some() && !ex.url.https;
            let request = ex.request(absolute);
            // One resolver per distinct name; the port is applied afterwards.
            let mut conn = Conn::new(
                ex.url,
                host,
                port,
                request,
                opts.proxy.is_some(),
                opts.body_cap,
                opts.deadline,
            );
            if let Some(addrs) = literal_addrs(host, port) {
                if let Some(r) = conn.resolved(Ok(addrs), opts.deadline).outcome() {
                    early.push((i, r));
                }
            } else if !asked.iter().any(|a| a == host) {
                asked.push(host.to_string());
                lookups.start(host);
            }
            conns.push(conn);
        }
        let end = drive(&mut conns, &mut lookups, early, opts, on_done);
        drop(conns);
        drop(lookups);
        end
    }
}

fn pending(conns: &[Conn<'_>]) -> Vec<(usize, Phase)> {
    conns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.state != State::Done)
        .map(|(i, c)| (i, c.phase()))
        .collect()
}

fn poll_timeout(until: Instant, now: Instant) -> PollTimeout {
    let d = until.saturating_duration_since(now);
    // Round up so the loop does not spin just before a timer.
    let ms = d
        .as_millis()
        .saturating_add(u128::from(!d.subsec_nanos().is_multiple_of(1_000_000)));
    PollTimeout::try_from(ms.min(60_000)).unwrap_or(PollTimeout::MAX)
}

/// Waits in `poll` until `until` for the connections' interests; the
/// ready ones with their events. A `poll` failure fails every waiting
/// connection (pushed to `finished`).
fn wait(
    conns: &[Conn<'_>],
    until: Instant,
    now: Instant,
    finished: &mut Vec<(usize, Outcome)>,
) -> Vec<(usize, PollFlags)> {
    let mut index = Vec::new();
    let mut fds = Vec::new();
    for (i, c) in conns.iter().enumerate() {
        let interest = c.interest();
        if let (Some(s), false) = (&c.sock, interest.is_empty()) {
            fds.push(PollFd::new(s.as_fd(), interest));
            index.push(i);
        }
    }
    match poll(&mut fds, poll_timeout(until, now)) {
        Ok(0) | Err(Errno::EINTR) => Vec::new(),
        Ok(_) => fds
            .iter()
            .zip(index.iter())
            .filter_map(|(fd, i)| fd.revents().filter(|r| !r.is_empty()).map(|r| (*i, r)))
            .collect(),
        Err(e) => {
            // Not expected (EINVAL/ENOMEM): fail what is open.
            for i in index {
                finished.push((i, Err(Failure::Internal(format!("poll: {e}")))));
            }
            Vec::new()
        }
    }
}

fn push(finished: &mut Vec<(usize, Outcome)>, i: usize, step: Step) {
    if let Some(r) = step.outcome() {
        finished.push((i, r));
    }
}

fn drive(
    conns: &mut [Conn<'_>],
    lookups: &mut Lookups,
    mut finished: Vec<(usize, Outcome)>,
    opts: &Options<'_>,
    on_done: &mut dyn FnMut(usize, Outcome) -> Control,
) -> End {
    let tls = opts.tls.as_ref();
    let deadline = opts.deadline;
    for _ in 0..MAX_ITERATIONS {
        // Report what finished since the last pass.
        for (i, res) in finished.drain(..) {
            if let Some(c) = conns.get_mut(i) {
                c.close();
            }
            if on_done(i, res) == Control::Stop {
                return End::Stopped {
                    pending: pending(conns),
                };
            }
        }
        if conns.iter().all(|c| c.state == State::Done) {
            return End::AllDone;
        }
        let now = Instant::now();
        if now >= deadline {
            return End::Deadline {
                pending: pending(conns),
            };
        }
        // Resolver results.
        while let Some((key, res)) = lookups.try_next() {
            for (i, c) in conns.iter_mut().enumerate() {
                if c.state == State::Resolving && c.resolver_key == key {
                    let step = c.resolved(res.clone(), deadline);
                    push(&mut finished, i, step);
                }
            }
        }
        // Connect attempts whose time slice is over.
        for (i, c) in conns.iter_mut().enumerate() {
            if c.state == State::Connecting && now >= c.attempt_until {
                let step = c.connect_timed_out(now, deadline);
                push(&mut finished, i, step);
            }
        }
        if !finished.is_empty() {
            continue;
        }
        let mut until = deadline;
        for c in conns.iter() {
            match c.state {
                State::Resolving => until = until.min(now + RESOLVER_TICK),
                State::Connecting => until = until.min(c.attempt_until),
                _ => {}
            }
        }
        let ready = wait(conns, until, now, &mut finished);
        let now = Instant::now();
        for (i, revents) in ready {
            if let Some(c) = conns.get_mut(i) {
                let step = c.on_event(revents, tls, now, deadline);
                push(&mut finished, i, step);
            }
        }
    }
    End::Deadline {
        pending: pending(conns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_timeout_rounds_up_and_caps() {
        let now = Instant::now();
        assert_eq!(i32::from(poll_timeout(now, now)), 0);
        assert_eq!(
            i32::from(poll_timeout(now + Duration::from_micros(1500), now)),
            2
        );
        assert_eq!(
            i32::from(poll_timeout(now + Duration::from_secs(3600), now)),
            60_000
        );
    }
}
