//! The two counters that make an OTP fresh, ordered lexicographically.

use core::fmt;

/// `(use counter, session counter)`. The use counter counts power-ups and is
/// 15 bits wide (the 16th bit is the caps-lock flag, masked off here); the
/// session counter counts OTPs since power-up. Ordering is lexicographic,
/// use counter first, exactly as yubikey-val compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Counter {
    use_counter: u16,
    session: u8,
}

impl Counter {
    /// Largest use counter a key reaches (it then sticks there).
    pub const MAX_USE: u16 = 0x7fff;

    /// Builds a counter; bit 15 of `use_counter` (the flag) is dropped.
    #[must_use]
    pub const fn new(use_counter: u16, session: u8) -> Self {
        Self {
            use_counter: use_counter & Self::MAX_USE,
            session,
        }
    }

    /// The use (power-up) counter, 0–0x7fff.
    #[must_use]
    pub const fn use_counter(self) -> u16 {
        self.use_counter
    }

    /// The session counter, 0–255.
    #[must_use]
    pub const fn session(self) -> u8 {
        self.session
    }

    /// True when `self` is strictly newer than `last`.
    #[must_use]
    pub fn is_fresh_after(self, last: Self) -> bool {
        self > last
    }

    /// The counter of the next OTP in the same power-up, as a key computes
    /// it: the session counter wraps from 255 to 0 and bumps the use counter.
    /// `None` once the key is exhausted at (0x7fff, 255).
    #[must_use]
    pub const fn next_otp(self) -> Option<Self> {
        if self.session < u8::MAX {
            Some(Self::new(self.use_counter, self.session + 1))
        } else if self.use_counter < Self::MAX_USE {
            Some(Self::new(self.use_counter + 1, 0))
        } else {
            None
        }
    }

    /// The counter after a power-up: use counter + 1, session 0. `None` once
    /// the use counter is at its ceiling.
    #[must_use]
    pub const fn next_power_up(self) -> Option<Self> {
        if self.use_counter < Self::MAX_USE {
            Some(Self::new(self.use_counter + 1, 0))
        } else {
            None
        }
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "use={} session={}", self.use_counter, self.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_use_then_session() {
        assert!(Counter::new(5, 0) > Counter::new(4, 255));
        assert!(Counter::new(5, 1) > Counter::new(5, 0));
        assert!(Counter::new(0x0100, 0) > Counter::new(0x0001, 0));
        assert_eq!(Counter::new(0x8006, 3), Counter::new(6, 3));
    }

    #[test]
    fn successors_wrap_like_a_key() {
        assert_eq!(Counter::new(5, 255).next_otp(), Some(Counter::new(6, 0)));
        assert_eq!(Counter::new(5, 3).next_otp(), Some(Counter::new(5, 4)));
        assert_eq!(Counter::new(0x7fff, 255).next_otp(), None);
        assert_eq!(Counter::new(0x7fff, 0).next_power_up(), None);
        assert_eq!(Counter::new(3, 9).next_power_up(), Some(Counter::new(4, 0)));
    }
}
