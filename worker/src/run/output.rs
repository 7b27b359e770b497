//! The per-run output log: what this attempt has written, where each byte
//! sits in the execution's log, and which bytes the server has not yet
//! acknowledged.
//!
//! Offsets are absolute positions in the execution log: the attempt's first
//! byte is at `Assign.log_offset`. Three positions move forward:
//! `acked <= sent <= end`. Bytes in `[acked, end)` are kept in memory (they
//! may have to be sent again after a reconnect); `[sent, end)` have not been
//! sent on the current connection. A `LogAck` moves `acked` (and forgets the
//! bytes below it); a reconnect moves `sent` back to what the server says it
//! has stored.
//!
//! Output cap: after `cap` bytes of the child's output, one marker line
//! `[amon: output truncated at N bytes]` is appended (preceded by a newline
//! when the kept output does not end with one) and everything else the child
//! writes is counted but discarded. The marker is part of the log (and of
//! `log_byte_size`).

use std::collections::VecDeque;

/// The marker line appended when the output cap is reached.
pub fn truncation_marker(cap: u64, last_kept_byte: Option<u8>) -> Vec<u8> {
    let newline = matches!(last_kept_byte, Some(b) if b != b'\n');
    format!(
        "{}[amon: output truncated at {cap} bytes]\n",
        if newline { "\n" } else { "" }
    )
    .into_bytes()
}

/// Output of one attempt; see the module documentation.
#[derive(Debug)]
pub struct OutputLog {
    /// Most bytes of child output kept (`None`: no cap).
    cap: Option<u64>,
    /// Child bytes kept so far (≤ cap).
    kept: u64,
    /// Child bytes discarded after the cap.
    discarded: u64,
    /// Whether the marker has been appended.
    truncated: bool,
    /// Last byte kept, to decide whether the marker needs a leading newline.
    last_byte: Option<u8>,
    /// Everything below is stored by the server.
    acked: u64,
    /// Everything below has been sent on the current connection.
    sent: u64,
    /// Bytes `[acked, end)`.
    unacked: VecDeque<u8>,
}

/// What [`OutputLog::resume_from`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume {
    /// Sending resumes from the server's offset.
    FromServerOffset,
    /// The server asked for bytes we had already dropped after its own
    /// acknowledgement (it contradicts itself); sending resumes from the
    /// oldest byte we still have.
    FromOldestKept(u64),
    /// The server claims more than we ever produced; nothing is resent
    /// until new output arrives past `end`.
    BeyondEnd(u64),
}

impl OutputLog {
    /// An empty log starting at `start` with an optional cap (a cap ≤ 0 from
    /// the wire means none; pass `None`).
    pub fn new(start: u64, cap: Option<u64>) -> Self {
        Self {
            cap,
            kept: 0,
            discarded: 0,
            truncated: false,
            last_byte: None,
            acked: start,
            sent: start,
            unacked: VecDeque::new(),
        }
    }

    /// Log offset after the last byte (the `log_byte_size` to report).
    pub fn end(&self) -> u64 {
        self.acked + self.unacked.len() as u64
    }

    /// Everything below this offset is acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Whether every byte has been sent on the current connection.
    pub fn all_sent(&self) -> bool {
        self.sent == self.end()
    }

    /// Whether the server has acknowledged every byte.
    #[cfg(test)]
    pub fn fully_acked(&self) -> bool {
        self.acked == self.end()
    }

    /// Whether the cap was reached (the marker is in the log).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Child bytes discarded after the cap.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Appends child output, applying the cap.
    pub fn push(&mut self, data: &[u8]) {
        let room = match self.cap {
            None => data.len(),
            Some(cap) => usize::try_from(cap - self.kept)
                .unwrap_or(usize::MAX)
                .min(data.len()),
        };
        let (keep, rest) = data.split_at(room);
        if !keep.is_empty() {
            self.unacked.extend(keep);
            self.kept += keep.len() as u64;
            self.last_byte = keep.last().copied();
        }
        if !rest.is_empty() {
            if !self.truncated {
                let cap = self.cap.unwrap_or(self.kept);
                self.unacked.extend(truncation_marker(cap, self.last_byte));
                self.truncated = true;
            }
            self.discarded += rest.len() as u64;
        }
    }

    /// The server has stored everything below `offset`: forget it. Offsets at
    /// or below the current acknowledgement are ignored; offsets past the end
    /// count as the end. Returns whether anything was forgotten.
    pub fn ack(&mut self, offset: u64) -> bool {
        let offset = offset.min(self.end());
        if offset <= self.acked {
            return false;
        }
        let n = (offset - self.acked) as usize;
        self.unacked.drain(..n);
        self.acked = offset;
        self.sent = self.sent.max(offset);
        true
    }

    /// The connection is gone: nothing counts as sent any more.
    pub fn rewind(&mut self) {
        self.sent = self.acked;
    }

    /// A new connection resumes the run with the server's stored offset:
    /// forget what is below it and send again from there.
    pub fn resume_from(&mut self, offset: u64) -> Resume {
        let result = if offset < self.acked {
            Resume::FromOldestKept(self.acked)
        } else if offset > self.end() {
            Resume::BeyondEnd(self.end())
        } else {
            Resume::FromServerOffset
        };
        self.ack(offset);
        self.rewind();
        result
    }

    /// The next unsent chunk, at most `max` bytes: `(offset, bytes)`. Marks it
    /// sent.
    pub fn next_chunk(&mut self, max: usize) -> Option<(u64, Vec<u8>)> {
        let max = max.max(1);
        let from = (self.sent - self.acked) as usize;
        let available = self.unacked.len() - from;
        if available == 0 {
            return None;
        }
        let n = available.min(max);
        let mut data = Vec::with_capacity(n);
        let (a, b) = self.unacked.as_slices();
        let to = from + n;
        if from < a.len() {
            data.extend_from_slice(&a[from..to.min(a.len())]);
        }
        if to > a.len() {
            data.extend_from_slice(&b[from.saturating_sub(a.len())..to - a.len()]);
        }
        let offset = self.sent;
        self.sent += n as u64;
        Some((offset, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(log: &mut OutputLog, max: usize) -> Vec<(u64, Vec<u8>)> {
        std::iter::from_fn(|| log.next_chunk(max)).collect()
    }

    #[test]
    fn offsets_start_at_the_attempt_offset() {
        let mut log = OutputLog::new(100, None);
        assert_eq!(log.end(), 100);
        assert!(log.fully_acked() && log.all_sent());
        assert_eq!(log.next_chunk(10), None);
        log.push(b"hello ");
        log.push(b"world");
        assert_eq!(log.end(), 111);
        let chunks = drain(&mut log, 4);
        assert_eq!(
            chunks,
            vec![
                (100, b"hell".to_vec()),
                (104, b"o wo".to_vec()),
                (108, b"rld".to_vec()),
            ]
        );
        assert!(log.all_sent());
        assert!(!log.fully_acked());
    }

    #[test]
    fn ack_forgets_and_resume_resends_from_the_offset() {
        let mut log = OutputLog::new(10, None);
        log.push(b"abcdefghij");
        assert_eq!(drain(&mut log, 64), vec![(10, b"abcdefghij".to_vec())]);
        assert!(log.ack(13));
        assert_eq!(log.acked(), 13);
        assert!(!log.ack(12), "stale acks are ignored");
        assert_eq!(log.acked(), 13);
        // Connection lost; the server had stored up to 15.
        log.rewind();
        assert_eq!(log.resume_from(15), Resume::FromServerOffset);
        log.push(b"KL");
        assert_eq!(drain(&mut log, 64), vec![(15, b"fghijKL".to_vec())]);
        // Ack beyond the end clamps to the end.
        assert!(log.ack(1_000));
        assert_eq!(log.acked(), 22);
        assert!(log.fully_acked());
    }

    #[test]
    fn resume_below_what_was_acked_resends_what_is_kept() {
        let mut log = OutputLog::new(0, None);
        log.push(b"0123456789");
        drain(&mut log, 64);
        log.ack(6);
        assert_eq!(log.resume_from(2), Resume::FromOldestKept(6));
        assert_eq!(drain(&mut log, 64), vec![(6, b"6789".to_vec())]);
        assert_eq!(log.resume_from(50), Resume::BeyondEnd(10));
        assert!(log.fully_acked());
        assert_eq!(drain(&mut log, 64), vec![]);
    }

    #[test]
    fn resend_after_rewind_is_byte_exact_across_a_wrapped_buffer() {
        let mut log = OutputLog::new(0, None);
        let mut expected = Vec::new();
        let mut received = Vec::new();
        for round in 0..50u8 {
            let data: Vec<u8> = (0..37)
                .map(|i| round.wrapping_mul(7).wrapping_add(i))
                .collect();
            expected.extend_from_slice(&data);
            log.push(&data);
            for (offset, chunk) in drain(&mut log, 16) {
                // A receiver that stores contiguous bytes only.
                if offset as usize == received.len() {
                    received.extend_from_slice(&chunk);
                }
            }
            // Ack part of it, sometimes lose the connection.
            log.ack(received.len() as u64 - 5);
            if round % 3 == 0 {
                let stored = log.acked();
                received.truncate(stored as usize);
                log.resume_from(stored);
            }
        }
        for (offset, chunk) in drain(&mut log, 16) {
            assert_eq!(offset as usize, received.len());
            received.extend_from_slice(&chunk);
        }
        assert_eq!(received, expected);
    }

    #[test]
    fn cap_appends_one_marker_and_discards_the_rest() {
        let mut log = OutputLog::new(5, Some(8));
        log.push(b"12345");
        log.push(b"6789abc");
        log.push(b"more and more");
        let marker = b"\n[amon: output truncated at 8 bytes]\n";
        let mut expected = b"12345678".to_vec();
        expected.extend_from_slice(marker);
        let data: Vec<u8> = drain(&mut log, 1000)
            .into_iter()
            .flat_map(|(_, d)| d)
            .collect();
        assert_eq!(data, expected);
        assert!(log.truncated());
        assert_eq!(log.discarded(), 4 + 13);
        assert_eq!(log.end(), 5 + expected.len() as u64);
        log.push(b"x");
        assert_eq!(log.end(), 5 + expected.len() as u64);
    }

    #[test]
    fn marker_needs_no_extra_newline_after_a_full_line() {
        let mut log = OutputLog::new(0, Some(4));
        log.push(b"abc\nrest");
        let data: Vec<u8> = drain(&mut log, 1000)
            .into_iter()
            .flat_map(|(_, d)| d)
            .collect();
        assert_eq!(data, b"abc\n[amon: output truncated at 4 bytes]\n");
        // Output exactly at the cap is not truncated.
        let mut log = OutputLog::new(0, Some(4));
        log.push(b"abcd");
        assert!(!log.truncated());
        assert_eq!(log.end(), 4);
    }
}
