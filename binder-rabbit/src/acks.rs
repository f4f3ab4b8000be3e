//! Coalesced acks: the deliveries of one consumer channel whose handlers succeeded are acked
//! together, with one `basic.ack` carrying `multiple` for the last of them, as Spring's listener
//! containers ack a batch. This saves the client a round through lapin's internal tasks and the
//! broker an ack frame per message.
//!
//! At-least-once is kept: a `multiple` ack covers only a run of the oldest open deliveries in
//! which every one is owed its ack, so a delivery still being handled, or about to be requeued
//! or dead-lettered, is never acked by it (an owed delivery behind an open one is acked on its
//! own). Owed acks go out when the consumer waits for deliveries (nothing is buffered), when
//! [`AckBatch::new`]'s bound have built up, and before the channel closes; a crash before that
//! redelivers them. Frames are queued on the channel under one lock, so they reach the broker in
//! the order they were decided (lapin's per-delivery acker settles through a task per call,
//! whose order is not kept).

use std::collections::VecDeque;
use std::sync::Mutex;

use futures::FutureExt;
use lapin::options::BasicAckOptions;
use lapin::types::DeliveryTag;
use lapin::Channel;

/// The open deliveries of one consumer channel and the acks owed to them.
pub(crate) struct AckBatch {
    channel: Channel,
    /// The most acks held back at once.
    max_owed: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Delivery tags handed out and not settled on the broker yet, oldest first (tags grow on
    /// a channel), each with whether its handler succeeded and it only waits for its ack.
    open: VecDeque<(DeliveryTag, bool)>,
    /// How many of `open` are owed their ack.
    owed: usize,
    /// The consumer is waiting for deliveries: owed acks go out at once.
    idle: bool,
}

/// Acks to send: the last tag of the run of owed deliveries at the front (one `multiple` ack
/// settles the run), then owed deliveries behind an open one, each on its own (so a slow
/// handler does not hold back the acks of the deliveries after it).
#[derive(Debug, Default, PartialEq)]
struct Due {
    run_to: Option<DeliveryTag>,
    alone: Vec<DeliveryTag>,
}

impl State {
    fn opened(&mut self, tag: DeliveryTag) {
        self.open.push_back((tag, false));
        self.idle = false;
    }

    fn closed(&mut self, tag: DeliveryTag) {
        if let Some(at) = self.open.iter().position(|(t, _)| *t == tag) {
            if let Some((_, true)) = self.open.remove(at) {
                self.owed -= 1;
            }
        }
    }

    /// Marks `tag` owed; false when it is not open.
    fn owe(&mut self, tag: DeliveryTag) -> bool {
        let Some(entry) = self.open.iter_mut().find(|(t, owed)| *t == tag && !owed) else {
            return false;
        };
        entry.1 = true;
        self.owed += 1;
        true
    }

    /// Takes every owed ack.
    fn take_owed(&mut self) -> Due {
        let mut due = Due::default();
        while let Some(&(tag, true)) = self.open.front() {
            self.open.pop_front();
            self.owed -= 1;
            due.run_to = Some(tag);
        }
        if self.owed > 0 {
            due.alone = self.open.iter().filter(|e| e.1).map(|e| e.0).collect();
            self.open.retain(|(_, owed)| !owed);
            self.owed = 0;
        }
        due
    }
}

impl AckBatch {
    /// The acks of `channel`, holding back at most `max_owed` (at least one).
    pub fn new(channel: Channel, max_owed: usize) -> Self {
        AckBatch {
            channel,
            max_owed: max_owed.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A delivery was handed out.
    pub fn opened(&self, tag: DeliveryTag) {
        self.state().opened(tag);
    }

    /// The delivery `tag` was settled on its own (requeued, dead-lettered, rejected, acked
    /// alone): it no longer holds back the acks owed after it.
    pub fn closed(&self, tag: DeliveryTag) {
        let mut state = self.state();
        state.closed(tag);
        self.send_if_due(&mut state);
    }

    /// The handler of delivery `tag` succeeded: its ack is owed, and sent now or with later ones.
    pub fn owe(&self, tag: DeliveryTag) {
        let mut state = self.state();
        if !state.owe(tag) {
            // Not open (cannot happen for this channel's deliveries): acked alone.
            return self.ack(tag, false);
        }
        self.send_if_due(&mut state);
    }

    /// The consumer is about to wait for deliveries: every owed ack goes out.
    pub fn idle(&self) {
        let mut state = self.state();
        state.idle = true;
        self.send(state.take_owed());
    }

    /// Every owed ack goes out (before the channel closes). The lock is held while the frames
    /// are queued, as everywhere: a `multiple` ack decided later must not overtake them.
    pub fn flush(&self) {
        let mut state = self.state();
        self.send(state.take_owed());
    }

    fn send_if_due(&self, state: &mut State) {
        if state.idle || state.owed >= self.max_owed {
            self.send(state.take_owed());
        }
    }

    /// Sends `due`; called under the lock, so frames are queued in the order decided.
    fn send(&self, due: Due) {
        if let Some(tag) = due.run_to {
            self.ack(tag, true);
        }
        for tag in due.alone {
            self.ack(tag, false);
        }
    }

    /// Queues the ack frame without waiting for its write: a lost ack only means a
    /// redelivery, as with a failed awaited one.
    fn ack(&self, tag: DeliveryTag, multiple: bool) {
        let _ = self
            .channel
            .basic_ack(tag, BasicAckOptions { multiple })
            .now_or_never();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(tags: std::ops::RangeInclusive<DeliveryTag>) -> State {
        let mut s = State::default();
        tags.for_each(|t| s.opened(t));
        s
    }

    #[test]
    fn a_run_of_owed_deliveries_is_one_multiple_ack() {
        let mut s = state(1..=4);
        assert!(s.owe(1) && s.owe(2) && s.owe(3));
        let due = s.take_owed();
        assert_eq!(
            due,
            Due {
                run_to: Some(3),
                alone: vec![]
            }
        );
        assert_eq!(s.open, [(4, false)]);
        assert_eq!(s.owed, 0);
    }

    #[test]
    fn an_open_delivery_is_never_covered() {
        // 2 is still being handled: 1 goes in the run, 3 and 4 alone; 2 stays open.
        let mut s = state(1..=4);
        assert!(s.owe(1) && s.owe(3) && s.owe(4));
        let due = s.take_owed();
        assert_eq!(
            due,
            Due {
                run_to: Some(1),
                alone: vec![3, 4]
            }
        );
        assert_eq!(s.open, [(2, false)]);
        assert_eq!(s.take_owed(), Due::default());
    }

    #[test]
    fn a_delivery_settled_alone_no_longer_holds_back_the_run() {
        let mut s = state(1..=3);
        assert!(s.owe(2) && s.owe(3));
        s.closed(1); // requeued or dead-lettered on its own
        assert_eq!(
            s.take_owed(),
            Due {
                run_to: Some(3),
                alone: vec![]
            }
        );
        assert!(s.open.is_empty());
    }

    #[test]
    fn owing_twice_or_an_unknown_tag_is_refused() {
        let mut s = state(1..=1);
        assert!(s.owe(1));
        assert!(!s.owe(1));
        assert!(!s.owe(9));
        assert_eq!(s.owed, 1);
    }
}
