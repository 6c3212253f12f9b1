//! Energy-based voice activity detection over 24 kHz PCM16, on the input-audio clock.
//!
//! OpenAI's `server_vad` is a model, but what clients depend on is its contract: speech starts
//! a little before it is detected (`prefix_padding_ms`), stops once `silence_duration_ms` of
//! silence has passed (and `audio_end_ms` includes that silence), and the milliseconds count the
//! audio appended to the session, not wall-clock time. An RMS threshold per 10 ms frame keeps that
//! contract and is predictable in tests: a loud tone is speech, zeros are silence.

/// Samples per millisecond at 24 kHz.
pub(crate) const SAMPLES_PER_MS: u64 = 24;
/// Analysis frame: 10 ms.
const FRAME: usize = 240;
/// Consecutive speech frames before speech counts as started (filters clicks).
const ONSET_FRAMES: u32 = 3;

/// The VAD's tuning, from the session's `turn_detection`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct VadParams {
    /// 0..1, mapped to -60..-20 dBFS RMS.
    pub threshold: f64,
    pub prefix_padding_ms: u64,
    pub silence_duration_ms: u64,
}

impl Default for VadParams {
    fn default() -> Self {
        Self { threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 200 }
    }
}

/// What the VAD saw, in input-audio milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VadEvent {
    Started { audio_start_ms: u64 },
    Stopped { audio_end_ms: u64 },
}

/// Streaming detector: feed samples as they arrive, get events.
#[derive(Debug)]
pub(crate) struct Vad {
    params: VadParams,
    /// RMS (in sample units) at or above which a frame is speech.
    level: f64,
    frame: Vec<i16>,
    /// Samples analysed so far (whole frames), i.e. the input clock.
    clock: u64,
    speaking: bool,
    speech_run: u32,
    /// Start sample of the current run of speech frames.
    run_start: u64,
    silence_samples: u64,
    /// Speech may not start before this sample (the end of the last committed turn).
    floor: u64,
}

impl Vad {
    pub(crate) fn new(params: VadParams, clock_samples: u64) -> Self {
        let dbfs = -60.0 + 40.0 * params.threshold.clamp(0.0, 1.0);
        Self {
            params,
            level: 32768.0 * 10f64.powf(dbfs / 20.0),
            frame: Vec::with_capacity(FRAME),
            clock: clock_samples,
            speaking: false,
            speech_run: 0,
            run_start: clock_samples,
            silence_samples: 0,
            floor: clock_samples,
        }
    }

    /// Forget speech in progress (the buffer was cleared or committed by hand).
    pub(crate) fn reset(&mut self) {
        self.speaking = false;
        self.speech_run = 0;
        self.silence_samples = 0;
        self.floor = self.clock + self.frame.len() as u64;
    }

    pub(crate) fn push(&mut self, samples: &[i16], events: &mut Vec<VadEvent>) {
        for &sample in samples {
            self.frame.push(sample);
            if self.frame.len() == FRAME {
                self.analyse(events);
                self.frame.clear();
            }
        }
    }

    fn analyse(&mut self, events: &mut Vec<VadEvent>) {
        let energy: f64 = self.frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let loud = (energy / FRAME as f64).sqrt() >= self.level;
        let frame_start = self.clock;
        self.clock += FRAME as u64;
        if loud {
            if self.speech_run == 0 {
                self.run_start = frame_start;
            }
            self.speech_run += 1;
            self.silence_samples = 0;
            if !self.speaking && self.speech_run >= ONSET_FRAMES {
                self.speaking = true;
                let padded = self.run_start.saturating_sub(self.params.prefix_padding_ms * SAMPLES_PER_MS);
                events.push(VadEvent::Started { audio_start_ms: padded.max(self.floor) / SAMPLES_PER_MS });
            }
        } else {
            self.speech_run = 0;
            if self.speaking {
                self.silence_samples += FRAME as u64;
                if self.silence_samples >= self.params.silence_duration_ms * SAMPLES_PER_MS {
                    self.speaking = false;
                    self.silence_samples = 0;
                    self.floor = self.clock;
                    events.push(VadEvent::Stopped { audio_end_ms: self.clock / SAMPLES_PER_MS });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u64) -> Vec<i16> {
        (0..ms * SAMPLES_PER_MS).map(|i| ((i as f64 * 0.07).sin() * 8000.0) as i16).collect()
    }

    #[test]
    fn a_tone_between_silences_starts_and_stops_on_the_input_clock() {
        let mut vad = Vad::new(VadParams::default(), 0);
        let mut events = Vec::new();
        vad.push(&vec![0; 24 * 1000], &mut events);
        assert!(events.is_empty());
        vad.push(&tone(800), &mut events);
        assert_eq!(events, [VadEvent::Started { audio_start_ms: 700 }]);
        vad.push(&vec![0; 24 * 1000], &mut events);
        assert_eq!(events[1], VadEvent::Stopped { audio_end_ms: 2000 });
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn padding_never_reaches_before_the_previous_turn_and_quiet_noise_is_silence() {
        let params = VadParams { threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 };
        let mut vad = Vad::new(params, 0);
        let mut events = Vec::new();
        vad.push(&tone(500), &mut events);
        vad.push(&vec![0; 24 * 500], &mut events);
        vad.push(&vec![0; 24 * 100], &mut events);
        vad.push(&tone(300), &mut events);
        assert_eq!(
            events,
            [
                VadEvent::Started { audio_start_ms: 0 },
                VadEvent::Stopped { audio_end_ms: 1000 },
                VadEvent::Started { audio_start_ms: 1000 }
            ]
        );
        let mut quiet = Vad::new(params, 0);
        let mut none = Vec::new();
        quiet.push(&(0..24_000).map(|i| if i % 2 == 0 { 20 } else { -20 }).collect::<Vec<i16>>(), &mut none);
        assert!(none.is_empty());
    }
}
