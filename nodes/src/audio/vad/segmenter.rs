//! Turns per-frame voice decisions into speech segments.
//!
//! A run of voiced frames opens a candidate; it becomes speech once it holds `min_speech`
//! voiced frames, and ends after `min_silence` unvoiced frames in a row (the hangover), at
//! the end of its last voiced frame. A candidate that goes silent before it has enough
//! voiced frames is dropped. A segment that reaches `max_segment` frames is cut there and a
//! new one goes on from the cut. The start of a segment moves back over the `lookback`
//! frames before it that were loud enough to be its onset ("active"), since a detector
//! decides a little after speech begins.
//!
//! [`Segmenter::push`] says what each frame changed: speech confirmed ([`Change::Started`]),
//! speech over ([`Change::Ended`]), or a segment cut at the maximum length while speech goes
//! on ([`Change::Cut`]).

use std::collections::VecDeque;

/// Lengths in frames.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) min_speech: u64,
    pub(super) min_silence: u64,
    pub(super) max_segment: u64,
    pub(super) lookback: usize,
}

/// Frames `[start, end)` of one speech segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: u64,
    pub(super) end: u64,
}

/// What one frame changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Speech was confirmed (its candidate reached `min_speech` voiced frames); it began at
    /// frame `start`.
    Started { start: u64 },
    /// Speech ended after the hangover: `segment` is the last segment of it, and the speech
    /// began at frame `speech_start` (before `segment.start` when segments were cut).
    Ended { segment: Span, speech_start: u64 },
    /// A segment reached the maximum length and was cut; the speech goes on.
    Cut(Span),
}

impl Change {
    /// The segment this change closes, if any.
    pub(super) fn segment(&self) -> Option<Span> {
        match *self {
            Change::Started { .. } => None,
            Change::Ended { segment, .. } | Change::Cut(segment) => Some(segment),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Idle,
    /// Voiced frames seen, not yet enough for speech.
    Candidate {
        start: u64,
        voiced: u64,
        silence: u64,
    },
    Speech {
        /// Start of the current segment.
        start: u64,
        /// Start of the speech (earlier than `start` once a segment was cut).
        onset: u64,
        last_voiced_end: u64,
        silence: u64,
    },
}

/// The segment state machine; frames are numbered from 0 in push order.
#[derive(Debug)]
pub(super) struct Segmenter {
    limits: Limits,
    state: State,
    /// Index of the next frame.
    frame: u64,
    /// End of the last segment: no new segment reaches back before it.
    last_end: u64,
    /// Whether each of the last `lookback` frames was active, oldest first.
    recent_active: VecDeque<bool>,
}

impl Segmenter {
    pub(super) fn new(limits: Limits) -> Segmenter {
        Segmenter {
            limits,
            state: State::Idle,
            frame: 0,
            last_end: 0,
            recent_active: VecDeque::with_capacity(limits.lookback + 1),
        }
    }

    /// Whether a candidate or a segment is open.
    pub(super) fn in_speech(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// The earliest frame a future segment may still start at.
    pub(super) fn earliest_needed(&self) -> u64 {
        match self.state {
            State::Idle => self
                .frame
                .saturating_sub(self.limits.lookback as u64)
                .max(self.last_end),
            State::Candidate { start, .. } | State::Speech { start, .. } => start,
        }
    }

    /// Adds the next frame; returns what it changed.
    pub(super) fn push(&mut self, voiced: bool, active: bool) -> Option<Change> {
        let f = self.frame;
        self.frame += 1;
        let mut change = None;
        self.state = match self.state {
            State::Idle if voiced => self.promote(self.onset(f), 1, f + 1, &mut change),
            State::Idle => State::Idle,
            State::Candidate {
                start,
                voiced: n,
                silence,
            } => {
                if voiced {
                    self.promote(start, n + 1, f + 1, &mut change)
                } else if silence + 1 >= self.limits.min_silence {
                    State::Idle
                } else {
                    State::Candidate {
                        start,
                        voiced: n,
                        silence: silence + 1,
                    }
                }
            }
            State::Speech {
                start,
                onset,
                last_voiced_end,
                silence,
            } => {
                let (last_voiced_end, silence) = if voiced {
                    (f + 1, 0)
                } else {
                    (last_voiced_end, silence + 1)
                };
                if silence >= self.limits.min_silence {
                    change = Some(Change::Ended {
                        segment: Span {
                            start,
                            end: last_voiced_end,
                        },
                        speech_start: onset,
                    });
                    State::Idle
                } else if f + 1 - start >= self.limits.max_segment {
                    change = Some(Change::Cut(Span { start, end: f + 1 }));
                    State::Speech {
                        start: f + 1,
                        onset,
                        last_voiced_end: f + 1,
                        silence: 0,
                    }
                } else {
                    State::Speech {
                        start,
                        onset,
                        last_voiced_end,
                        silence,
                    }
                }
            }
        };
        if let Some(span) = change.as_ref().and_then(Change::segment) {
            self.last_end = span.end;
        }
        if self.limits.lookback > 0 {
            if self.recent_active.len() == self.limits.lookback {
                self.recent_active.pop_front();
            }
            self.recent_active.push_back(active);
        }
        change
    }

    /// End of stream: the open segment, if it is speech, as [`Change::Ended`].
    pub(super) fn finish(&mut self) -> Option<Change> {
        let state = std::mem::replace(&mut self.state, State::Idle);
        match state {
            State::Speech {
                start,
                onset,
                last_voiced_end,
                ..
            } => {
                self.last_end = last_voiced_end;
                Some(Change::Ended {
                    segment: Span {
                        start,
                        end: last_voiced_end,
                    },
                    speech_start: onset,
                })
            }
            _ => None,
        }
    }

    /// Candidate or speech, by how many voiced frames it has; reaching speech is a
    /// [`Change::Started`].
    fn promote(
        &self,
        start: u64,
        voiced: u64,
        last_voiced_end: u64,
        change: &mut Option<Change>,
    ) -> State {
        if voiced >= self.limits.min_speech {
            *change = Some(Change::Started { start });
            State::Speech {
                start,
                onset: start,
                last_voiced_end,
                silence: 0,
            }
        } else {
            State::Candidate {
                start,
                voiced,
                silence: 0,
            }
        }
    }

    /// Where a segment first voiced at frame `f` starts: back over the active frames
    /// right before it.
    fn onset(&self, f: u64) -> u64 {
        let back = self
            .recent_active
            .iter()
            .rev()
            .take_while(|active| **active)
            .count() as u64;
        f.saturating_sub(back).max(self.last_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            min_speech: 3,
            min_silence: 4,
            max_segment: 1000,
            lookback: 2,
        }
    }

    /// Runs `pattern` ('v' voiced and active, 'a' active only, '.' neither) and finishes.
    fn run(limits: Limits, pattern: &str) -> Vec<Span> {
        changes(limits, pattern)
            .iter()
            .filter_map(|(_, change)| change.segment())
            .collect()
    }

    /// Every change with the frame that made it (`None` for the one `finish` makes).
    fn changes(limits: Limits, pattern: &str) -> Vec<(Option<usize>, Change)> {
        let mut s = Segmenter::new(limits);
        let mut changes: Vec<(Option<usize>, Change)> = pattern
            .chars()
            .enumerate()
            .filter_map(|(i, c)| s.push(c == 'v', c != '.').map(|change| (Some(i), change)))
            .collect();
        changes.extend(s.finish().map(|change| (None, change)));
        changes
    }

    #[test]
    fn segments_need_min_speech_and_end_after_min_silence() {
        // A 2-frame blip is dropped; 5 voiced frames make a segment that ends at its last
        // voiced frame once 4 silent frames have passed.
        assert_eq!(
            run(limits(), "..vv......vvvvv......"),
            vec![Span { start: 10, end: 15 }]
        );
        // Short gaps are bridged by the hangover.
        assert_eq!(
            run(limits(), "vvv...vvv....."),
            vec![Span { start: 0, end: 9 }]
        );
    }

    #[test]
    fn onset_moves_back_over_active_frames_and_flush_closes() {
        assert_eq!(
            run(limits(), "....aaavvvv"),
            vec![Span { start: 5, end: 11 }]
        );
        // A candidate still too short at the end of the stream is dropped.
        assert_eq!(run(limits(), "....vv"), vec![]);
    }

    #[test]
    fn long_segments_are_cut() {
        let limits = Limits {
            max_segment: 5,
            ..limits()
        };
        assert_eq!(
            run(limits, "vvvvvvvv"),
            vec![Span { start: 0, end: 5 }, Span { start: 5, end: 8 }]
        );
    }

    #[test]
    fn speech_starts_when_confirmed_and_ends_after_the_hangover() {
        // Confirmed on its third voiced frame (frame 6), starting at the onset (frame 2, two
        // active frames back); over on the fourth silent frame after frame 9.
        assert_eq!(
            changes(limits(), "..aavvvvvv....vv"),
            vec![
                (Some(6), Change::Started { start: 2 }),
                (
                    Some(13),
                    Change::Ended {
                        segment: Span { start: 2, end: 10 },
                        speech_start: 2
                    }
                ),
            ]
        );
        // A cut segment keeps the speech going: one start, one end that knows the onset;
        // the end of the stream ends it too.
        let limits = Limits {
            max_segment: 5,
            ..limits()
        };
        assert_eq!(
            changes(limits, "vvvvvvv"),
            vec![
                (Some(2), Change::Started { start: 0 }),
                (Some(4), Change::Cut(Span { start: 0, end: 5 })),
                (
                    None,
                    Change::Ended {
                        segment: Span { start: 5, end: 7 },
                        speech_start: 0
                    }
                ),
            ]
        );
    }
}
